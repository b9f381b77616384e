"""Scenarios with a known ground truth: reproducible part values from a seed.

A `ValueGenerator` draws one value per characteristic per part, nominal + sigma * z with
z from numpy ``default_rng(seed)`` (drawn in characteristic order), so the same seed and
the same characteristics always give the same sequence, and a faulty run shares its base
noise with the in-control run of the same seed. The scenario's fault (see
`simulators.faults`) then acts on the characteristics it names (all by default) from its
start part on. Part indices start at 0.

The ground truth (`ValueGenerator.ground_truth`) is the contract with the detection
scorer (``simulators.scorer``): format ``spcmon-ground-truth/1``, one fault entry per
affected characteristic, with the wall-clock times of its first and last-plus-one parts,
and the ``run_id`` in the serials of a `Production` run (null for a generator alone).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from simulators.faults import FAULT_KINDS, FaultKind, FaultSpec, apply_fault
from simulators.plant import SimCharacteristic

_log = logging.getLogger(__name__)

ScenarioName = FaultKind
SCENARIO_NAMES: tuple[str, ...] = FAULT_KINDS
TRUTH_FORMAT = "spcmon-ground-truth/1"


@dataclass(frozen=True)
class Scenario:
    """What the simulated process does: one fault (or none), where and from when.

    `size` is the fault's magnitude in the kind's unit (see `simulators.faults`; None:
    its default); `affected` lists characteristic ids (empty: all of them).
    """

    name: ScenarioName
    seed: int
    start_part: int = 100
    size: float | None = None
    affected: tuple[str, ...] = ()
    end_part: int | None = None
    tool_change_every: int | None = None
    period_parts: int = 40
    rate: float = 0.02

    def __post_init__(self) -> None:
        self.fault  # noqa: B018 -- validates the parameters now, with a clear message

    @property
    def fault(self) -> FaultSpec:
        """The fault this scenario injects."""
        return FaultSpec(
            kind=self.name,
            start=self.start_part,
            size=self.size,
            end=self.end_part,
            tool_change_every=self.tool_change_every,
            period_parts=self.period_parts,
            rate=self.rate,
        )

    def affects(self, characteristic_id: str) -> bool:
        """Return True when the fault acts on `characteristic_id`."""
        if self.name == "in-control":
            return False
        return not self.affected or characteristic_id in self.affected


@dataclass(frozen=True)
class PartReadings:
    """One part: its values by characteristic id, and which are bad or never delivered."""

    index: int
    at: datetime
    values: dict[str, float]
    bad: frozenset[str] = frozenset()
    lost: frozenset[str] = frozenset()

    def delivered(self) -> dict[str, float]:
        """The values a publisher sends (the lost ones left out)."""
        return {k: v for k, v in self.values.items() if k not in self.lost}


def utc_iso(moment: datetime) -> str:
    """Format an aware datetime as ISO 8601 UTC with microseconds and a ``Z`` suffix."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ValueGenerator:
    """Produces one value per characteristic per part, reproducibly from the scenario seed."""

    def __init__(
        self,
        scenario: Scenario,
        characteristics: Sequence[SimCharacteristic],
        *,
        plant_id: str | None = None,
        takt_s: float | None = None,
        run_id: str | None = None,
    ) -> None:
        self.scenario = scenario
        self.run_id = run_id
        self.characteristics = tuple(characteristics)
        self._spec = scenario.fault
        self._rng = np.random.default_rng(scenario.seed)
        self._extra = np.random.default_rng([scenario.seed, 1])
        self._nominal = np.array([c.nominal for c in self.characteristics], dtype=np.float64)
        self._sigma = np.array([c.sigma for c in self.characteristics], dtype=np.float64)
        self._mask = np.array([scenario.affects(c.id) for c in self.characteristics])
        self._ids = [c.id for c in self.characteristics]
        self._affected_ids = frozenset(i for i, m in zip(self._ids, self._mask, strict=True) if m)
        self._frozen = self._nominal.copy()
        self._plant_id = plant_id
        self._takt_s = takt_s
        self._parts = 0
        self._first_at: datetime | None = None
        self._fault_started_at: datetime | None = None
        self._fault_ended_at: datetime | None = None
        ignored = sorted(set(scenario.affected) - set(self._ids))
        if ignored:
            _log.info("affected ids not served by this generator, ignored: %s", ignored)

    @property
    def parts_generated(self) -> int:
        """How many parts have been produced so far."""
        return self._parts

    @property
    def fault_started_at(self) -> datetime | None:
        """Wall-clock UTC time of the first faulty part, once it has been generated."""
        return self._fault_started_at

    def next_part(
        self, at: datetime | None = None, overrides: Mapping[str, float] | None = None
    ) -> dict[str, float]:
        """Return the next part's values by characteristic id (see `next_readings`)."""
        return self.next_readings(at, overrides).values

    def next_readings(
        self, at: datetime | None = None, overrides: Mapping[str, float] | None = None
    ) -> PartReadings:
        """Return the next part: values, and the ids sent with bad quality or lost.

        `at` is the part's wall-clock time (default: now, UTC); faster-than-real-time runs
        pass simulated times. `overrides` replaces generated values (tests force exact
        values this way); the random streams advance either way, so forcing a value does
        not change the parts that follow. Unknown ids raise ValueError.
        """
        unknown = sorted(set(overrides or {}) - set(self._ids))
        if unknown:
            raise ValueError(
                f"unknown characteristic ids {unknown}: this generator serves {self._ids}"
            )
        at = at or datetime.now(UTC)
        index = self._parts
        z = self._rng.standard_normal(len(self._ids))
        values = self._nominal + self._sigma * z
        faulty = self._spec.active(index)
        self._note_times(index, at, faulty)
        if faulty:
            apply_fault(
                self._spec,
                index,
                values,
                self._nominal,
                self._sigma,
                self._mask,
                self._frozen,
                self._extra,
            )
        else:
            self._frozen = values  # what a sensor that sticks at the next part keeps showing
        self._parts += 1
        part = dict(zip(self._ids, values.tolist(), strict=True))
        part.update({key: float(value) for key, value in (overrides or {}).items()})
        kind = self._spec.kind
        marked = self._affected_ids if faulty else frozenset()
        return PartReadings(
            index=index,
            at=at,
            values=part,
            bad=marked if kind == "bad-quality" else frozenset(),
            lost=marked if kind == "lost-connection" else frozenset(),
        )

    def _note_times(self, index: int, at: datetime, faulty: bool) -> None:
        if self._first_at is None:
            self._first_at = at
        if faulty and self._fault_started_at is None:
            self._fault_started_at = at
            _log.info("fault started at part %d: %s", index, self._spec.describe())
        end = self._spec.last_part
        if end is not None and index == end and self._fault_ended_at is None:
            self._fault_ended_at = at

    def ground_truth(self) -> dict[str, Any]:
        """Return what the scenario really did, as a JSON-able dict (``TRUTH_FORMAT``)."""
        spec, scenario = self._spec, self.scenario
        started = self._fault_started_at
        ended = self._fault_ended_at
        faults = [
            {
                "id": f"{spec.kind}:{c.id}",
                "kind": spec.kind,
                "characteristic": c.id,
                "start_part": spec.start,
                "end_part": spec.last_part,
                "started_at": utc_iso(started) if started is not None else None,
                "ended_at": utc_iso(ended) if ended is not None else None,
                "params": spec.params(),
                "description": spec.describe(),
            }
            for c in self.characteristics
            if scenario.affects(c.id)
        ]
        return {
            "format": TRUTH_FORMAT,
            "scenario": scenario.name,
            "seed": scenario.seed,
            "run_id": self.run_id,
            "plant": self._plant_id,
            "takt_s": self._takt_s,
            "started_at": utc_iso(self._first_at) if self._first_at is not None else None,
            "parts_generated": self._parts,
            "characteristics": {
                c.id: {"nominal": c.nominal, "sigma": c.sigma, "lsl": c.lsl, "usl": c.usl}
                for c in self.characteristics
            },
            "faults": faults,
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
