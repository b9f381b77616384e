"""The out-of-control action plan catalogue: causes and actions offered per incident.

An acknowledgement asks for an assignable cause and a corrective action. The plant file
offers lists per characteristic, process and plant (``ocap: {causes: [...], actions:
[...]}``); an incident is offered the union, most specific first, or a generic 5M1E list
(man, machine, material, method, measurement, environment) when nothing is configured.
Free text stays allowed: a plant learns its causes from the ones people type.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ingest.plant import OcapCatalogue, PlantConfig

DEFAULT_CAUSES = (
    "tool wear or breakage",
    "machine setting drifted",
    "material lot changed",
    "method or program changed",
    "measurement system error",
    "environment (temperature, humidity)",
    "operator error",
)
DEFAULT_ACTIONS = (
    "tool changed",
    "machine adjusted, process re-centred",
    "material lot quarantined",
    "program or method corrected",
    "gauge checked or recalibrated",
    "parts since the last good check sorted",
    "none: false alarm",
)


@dataclass(frozen=True)
class Catalogue:
    """What an acknowledgement offers; ``configured`` False means the generic defaults."""

    causes: tuple[str, ...]
    actions: tuple[str, ...]
    configured: bool


def catalogue_for(plant: PlantConfig, characteristics: Iterable[str]) -> Catalogue:
    """The causes and actions offered for an incident on these characteristics."""
    wanted = set(characteristics)
    found: list[OcapCatalogue] = []
    for line in plant.lines:
        for process in line.processes:
            chars = [c for c in process.characteristics if c.id in wanted]
            found += [c.ocap for c in chars if c.ocap is not None]
            if chars and process.ocap is not None:
                found.append(process.ocap)
    if plant.plant.ocap is not None:
        found.append(plant.plant.ocap)
    causes = _union(c.causes for c in found)
    actions = _union(c.actions for c in found)
    if not causes and not actions:
        return Catalogue(DEFAULT_CAUSES, DEFAULT_ACTIONS, configured=False)
    return Catalogue(causes or DEFAULT_CAUSES, actions or DEFAULT_ACTIONS, configured=True)


def _union(lists: Iterable[tuple[str, ...]]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(entry for entries in lists for entry in entries))


def pareto_key(text: str) -> str:
    """Causes typed differently but meaning the same group together: case, spaces."""
    return " ".join(text.split()).casefold()
