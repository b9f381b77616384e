"""The simulated plant's production: parts flowing through stations, verdicts, rework, costs.

Every line makes one part per takt (all lines in step, part index i on each); part i of
line ``line1`` has serial ``line1-<run id>-<i, 6 digits>`` (``line1-3f9a2c-000123``): the
run id (6 random hex digits unless given) keeps a second run's parts apart from the first's
where the service deduplicates by serial. It passes the line's stations (processes with
characteristics) in file order. Each station measures its characteristics (the scenario's
values for part i) and inspects them against their spec limits:

- OK: first-pass OK, the part goes on;
- NOK: reworked with probability ``Economics.rework_share`` (a rework cost event), then
  measured again with the process in control and re-inspected (a verdict with
  ``first_pass = False``); if still NOK, or not reworked, the part is scrapped (a scrap
  cost event worth the part's value) and leaves the line.

A part that passes every station adds ``unit_value`` to the line's output value, reported
as an ``output_value`` cost event every ``value_every`` good parts (the grading's loss
rates divide losses by output value). Values that a scenario marks lost are not
delivered; bad-quality values are delivered flagged bad and are not inspected, since a
station cannot judge a reading it does not trust.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from simulators.plant import SimCharacteristic, SimPlant
from simulators.scenario import PartReadings, Scenario, ValueGenerator

_RUN_ID = re.compile(r"[0-9A-Za-z]{1,16}")


@dataclass(frozen=True)
class Economics:
    """Money per part, in ``currency``; the defaults suit a small machined part."""

    unit_value: float = 200.0
    rework_cost: float = 15.0
    rework_share: float = 0.7
    value_every: int = 100
    currency: str = "CNY"

    def __post_init__(self) -> None:
        if min(self.unit_value, self.rework_cost) < 0:
            raise ValueError("unit_value and rework_cost must be >= 0")
        if not 0.0 <= self.rework_share <= 1.0:
            raise ValueError(f"rework_share must be in [0, 1], got {self.rework_share}")
        if self.value_every < 1:
            raise ValueError(f"value_every must be >= 1, got {self.value_every}")


@dataclass(frozen=True)
class Inspection:
    """One station's verdict on one part; ``first_pass`` False for the re-inspection."""

    ok: bool
    first_pass: bool
    defects: tuple[str, ...]
    values: dict[str, float]  # what was judged (the re-inspection measures the part again)


@dataclass(frozen=True)
class StationPart:
    """What one station saw of one part."""

    line: str
    process: str
    serial: str
    at: datetime
    values: dict[str, float]  # delivered values by characteristic id
    bad: frozenset[str]
    inspections: tuple[Inspection, ...]  # empty when the station could not inspect

    @property
    def station(self) -> str:
        """The qualified process id, e.g. ``line2.vision``."""
        return f"{self.line}.{self.process}"


@dataclass(frozen=True)
class CostEvent:
    """A cost (or output value) event for a line, in the economics' currency."""

    scope: str
    category: str  # scrap, rework, output_value
    amount: float
    currency: str
    at: datetime
    note: str


@dataclass
class LineTotals:
    """Running counts of one line, for logs and tests."""

    started: int = 0
    inspected: int = 0  # first inspections, summed over the line's stations
    first_pass_ok: int = 0
    reworked: int = 0
    scrapped: int = 0
    good: int = 0
    output_value: float = 0.0
    losses: dict[str, float] = field(default_factory=lambda: {"scrap": 0.0, "rework": 0.0})


@dataclass(frozen=True)
class PartRun:
    """Everything that happened to part `index` on every line."""

    index: int
    at: datetime
    readings: PartReadings
    stations: tuple[StationPart, ...]
    costs: tuple[CostEvent, ...]


class Production:
    """Drives the plant part by part from a scenario; see the module docstring."""

    def __init__(
        self,
        plant: SimPlant,
        scenario: Scenario,
        economics: Economics | None = None,
        *,
        takt_s: float | None = None,
        run_id: str | None = None,
    ) -> None:
        run_id = uuid.uuid4().hex[:6] if run_id is None else run_id
        if not _RUN_ID.fullmatch(run_id):
            raise ValueError(f"run_id must be 1 to 16 letters or digits, got {run_id!r}")
        self.plant = plant
        self.economics = economics or Economics()
        self.run_id = run_id
        self.generator = ValueGenerator(
            scenario, plant.characteristics, plant_id=plant.plant_id, takt_s=takt_s, run_id=run_id
        )
        self._stations = _stations(plant.characteristics)
        self._rework_rng = np.random.default_rng([scenario.seed, 2])
        self.totals = {
            line: LineTotals() for line in dict.fromkeys(c.line for c in plant.characteristics)
        }
        self._pending_value = dict.fromkeys(self.totals, 0)

    def next_part(self, at: datetime | None = None) -> PartRun:
        """Make part number `parts_made` on every line at time `at` (default now)."""
        readings = self.generator.next_readings(at)
        seen: list[StationPart] = []
        costs: list[CostEvent] = []
        for line, stations in self._stations.items():
            serial = f"{line}-{self.run_id}-{readings.index:06d}"
            self.totals[line].started += 1
            alive = True
            for process, chars in stations:
                if not alive:
                    break
                station, alive = self._visit(line, process, chars, serial, readings, costs)
                seen.append(station)
            if alive:
                self._count_good(line, readings.at, costs)
        return PartRun(readings.index, readings.at, readings, tuple(seen), tuple(costs))

    def flush_costs(self, at: datetime) -> list[CostEvent]:
        """Output value accrued since the last report, as events (call when stopping)."""
        events = [
            self._value_event(line, count, at)
            for line, count in self._pending_value.items()
            if count > 0
        ]
        self._pending_value = dict.fromkeys(self._pending_value, 0)
        return events

    def _visit(
        self,
        line: str,
        process: str,
        chars: Sequence[SimCharacteristic],
        serial: str,
        readings: PartReadings,
        costs: list[CostEvent],
    ) -> tuple[StationPart, bool]:
        ids = [c.id for c in chars]
        values = {i: readings.values[i] for i in ids if i not in readings.lost}
        bad = frozenset(i for i in ids if i in readings.bad)
        judged = [c for c in chars if c.id in values and c.id not in bad]
        if not judged:
            return StationPart(line, process, serial, readings.at, values, bad, ()), True
        first = _inspect(judged, values, first_pass=True)
        inspections = [first]
        alive = first.ok
        totals, money = self.totals[line], self.economics
        totals.inspected += 1
        if first.ok:
            totals.first_pass_ok += 1
        elif self._rework_rng.random() < money.rework_share:
            totals.reworked += 1
            totals.losses["rework"] += money.rework_cost
            note = f"{serial} at {line}.{process}"
            costs.append(self._cost(line, "rework", money.rework_cost, readings.at, note))
            again = {
                c.id: c.nominal + c.sigma * float(self._rework_rng.standard_normal())
                for c in judged
            }
            second = _inspect(judged, again, first_pass=False)
            inspections.append(second)
            alive = second.ok
        if not alive:
            totals.scrapped += 1
            totals.losses["scrap"] += money.unit_value
            note = f"{serial} scrapped at {line}.{process}"
            costs.append(self._cost(line, "scrap", money.unit_value, readings.at, note))
        station = StationPart(line, process, serial, readings.at, values, bad, tuple(inspections))
        return station, alive

    def _count_good(self, line: str, at: datetime, costs: list[CostEvent]) -> None:
        totals = self.totals[line]
        totals.good += 1
        totals.output_value += self.economics.unit_value
        self._pending_value[line] += 1
        if self._pending_value[line] >= self.economics.value_every:
            costs.append(self._value_event(line, self._pending_value[line], at))
            self._pending_value[line] = 0

    def _value_event(self, line: str, parts: int, at: datetime) -> CostEvent:
        amount = parts * self.economics.unit_value
        return self._cost(line, "output_value", amount, at, f"{parts} good parts")

    def _cost(self, line: str, category: str, amount: float, at: datetime, note: str) -> CostEvent:
        return CostEvent(line, category, amount, self.economics.currency, at, note)


def _inspect(
    chars: Sequence[SimCharacteristic], values: dict[str, float], *, first_pass: bool
) -> Inspection:
    judged = {c.id: values[c.id] for c in chars}
    defects = tuple(c.id.rsplit(".", 1)[-1] for c in chars if c.is_out_of_spec(judged[c.id]))
    return Inspection(ok=not defects, first_pass=first_pass, defects=defects, values=judged)


def _stations(
    characteristics: Sequence[SimCharacteristic],
) -> dict[str, list[tuple[str, list[SimCharacteristic]]]]:
    """Lines -> their stations in file order -> the station's characteristics."""
    lines: dict[str, dict[str, list[SimCharacteristic]]] = {}
    for char in characteristics:
        lines.setdefault(char.line, {}).setdefault(char.process, []).append(char)
    return {line: list(stations.items()) for line, stations in lines.items()}
