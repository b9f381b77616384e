"""Scenarios with a known ground truth: reproducible part values from a seed.

A `ValueGenerator` draws one value per characteristic per part from independent normal
distributions (numpy ``default_rng(seed)``, drawn in characteristic order), so the same
seed and the same characteristics always give the same sequence. In the ``mean-shift``
scenario the shifted characteristics move to ``nominal + shift_sigma * sigma`` from part
index ``shift_after_parts`` on (part indices start at 0).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from simulators.plant import SimCharacteristic

_log = logging.getLogger(__name__)

ScenarioName = Literal["in-control", "mean-shift"]
SCENARIO_NAMES: tuple[str, ...] = get_args(ScenarioName)


@dataclass(frozen=True)
class Scenario:
    """What the simulated process does: stay in control, or shift its mean after a while."""

    name: ScenarioName
    seed: int
    shift_sigma: float = 2.0
    shift_after_parts: int = 100
    shifted: tuple[str, ...] = ()  # characteristic ids; empty = all

    def __post_init__(self) -> None:
        if self.name not in SCENARIO_NAMES:
            raise ValueError(f"scenario must be one of {SCENARIO_NAMES}, got {self.name!r}")
        if self.shift_after_parts < 0:
            raise ValueError(f"shift_after_parts must be >= 0, got {self.shift_after_parts}")
        if not np.isfinite(self.shift_sigma):
            raise ValueError(f"shift_sigma must be a finite number, got {self.shift_sigma}")

    def shifts(self, characteristic_id: str) -> bool:
        """Return True when this scenario shifts the mean of `characteristic_id`."""
        if self.name != "mean-shift":
            return False
        return not self.shifted or characteristic_id in self.shifted


def utc_iso(moment: datetime) -> str:
    """Format an aware datetime as ISO 8601 UTC with microseconds and a ``Z`` suffix."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ValueGenerator:
    """Produces one value per characteristic per part, reproducibly from the scenario seed."""

    def __init__(self, scenario: Scenario, characteristics: Sequence[SimCharacteristic]) -> None:
        self.scenario = scenario
        self.characteristics = tuple(characteristics)
        self._rng = np.random.default_rng(scenario.seed)
        self._nominal = np.array([c.nominal for c in self.characteristics], dtype=np.float64)
        self._sigma = np.array([c.sigma for c in self.characteristics], dtype=np.float64)
        shift = [
            scenario.shift_sigma * c.sigma if scenario.shifts(c.id) else 0.0
            for c in self.characteristics
        ]
        self._shift = np.array(shift, dtype=np.float64)
        self._parts = 0
        self._shift_started_at: datetime | None = None
        served = {c.id for c in self.characteristics}
        ignored = sorted(set(scenario.shifted) - served)
        if ignored:
            _log.info("shifted ids not served by this generator, ignored: %s", ignored)

    @property
    def parts_generated(self) -> int:
        """How many parts `next_part` has produced so far."""
        return self._parts

    @property
    def shift_started_at(self) -> datetime | None:
        """Wall-clock UTC time of the first shifted part, once it has been generated."""
        return self._shift_started_at

    def shift_active(self, part_index: int | None = None) -> bool:
        """Return True when part `part_index` (default: the next one) is shifted."""
        index = self._parts if part_index is None else part_index
        return self.scenario.name == "mean-shift" and index >= self.scenario.shift_after_parts

    def next_part(
        self, at: datetime | None = None, overrides: Mapping[str, float] | None = None
    ) -> dict[str, float]:
        """Return the next part's values by characteristic id.

        `at` is the part's wall-clock time (default: now, UTC); it is recorded as the shift
        start when this is the first shifted part. `overrides` replaces generated values
        (tests use it to force exact values); the random stream advances either way, so
        forcing a value does not change the parts that follow. Unknown ids raise ValueError.
        """
        unknown = sorted(set(overrides or {}) - {c.id for c in self.characteristics})
        if unknown:
            raise ValueError(
                f"unknown characteristic ids {unknown}: this generator serves "
                f"{[c.id for c in self.characteristics]}"
            )
        noise = self._rng.standard_normal(len(self.characteristics))
        values = self._nominal + self._sigma * noise
        if self.shift_active():
            values = values + self._shift
            if self._shift_started_at is None:
                self._shift_started_at = at or datetime.now(UTC)
                _log.info(
                    "mean shift of %s sigma started at part %d (%s)",
                    self.scenario.shift_sigma,
                    self._parts,
                    utc_iso(self._shift_started_at),
                )
        self._parts += 1
        part = {c.id: float(v) for c, v in zip(self.characteristics, values, strict=True)}
        part.update({key: float(value) for key, value in (overrides or {}).items()})
        return part

    def ground_truth(self) -> dict[str, Any]:
        """Return what the scenario really did, as a JSON-able dict."""
        scenario = self.scenario
        shift: dict[str, Any] | None = None
        if scenario.name == "mean-shift":
            started = self._shift_started_at
            shift = {
                "start_part_index": scenario.shift_after_parts,
                "started_at": utc_iso(started) if started is not None else None,
                "size_sigma": scenario.shift_sigma,
            }
        return {
            "scenario": scenario.name,
            "seed": scenario.seed,
            "parts_generated": self._parts,
            "shift": shift,
            "characteristics": {
                c.id: _char_truth(c, scenario.shifts(c.id), float(delta))
                for c, delta in zip(self.characteristics, self._shift, strict=True)
            },
        }

    def write_ground_truth(self, path: Path | str) -> None:
        """Write `ground_truth()` to `path` as JSON (atomically: temp file, then rename)."""
        write_json(path, self.ground_truth())


def write_json(path: Path | str, document: Mapping[str, Any]) -> None:
    """Write `document` as indented JSON, replacing `path` atomically."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _char_truth(char: SimCharacteristic, shifted: bool, shift: float) -> dict[str, Any]:
    return {
        "nominal": char.nominal,
        "sigma": char.sigma,
        "shifted": shifted,
        "shifted_mean": char.nominal + shift,
    }
