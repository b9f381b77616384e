"""Status summaries of the plant hierarchy: pure functions over per-characteristic facts.

A characteristic is *in control* when it has control limits and no unresolved alarm,
*out of control* when it has limits and at least one unresolved (open or acknowledged)
alarm, and in *baseline* while its Phase I limits are not frozen yet. A level's worst
Cpk is the lowest rolling Cpk among its characteristics that have enough data for one
(the grades' convention: at least ``MIN_SUBGROUPS`` subgroups in the window).

Processes are identified as ``<line>.<process>`` (e.g. ``line1.turning``), as in the
grades and the verdicts of the MES push. Lines and processes come from the plant file,
in its order; those known only from characteristics created through the API follow,
sorted by id, with ``origin`` "api".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from ingest.plant import PlantConfig
from spc.grades import MIN_SUBGROUPS

IN_CONTROL = "in_control"
OUT_OF_CONTROL = "out_of_control"
BASELINE = "baseline"


@dataclass(frozen=True)
class CharacteristicStatus:
    """What a summary needs to know about one characteristic, read at one instant."""

    id: str
    name: str
    unit: str
    line: str
    process: str
    origin: str
    state: str  # IN_CONTROL | OUT_OF_CONTROL | BASELINE
    open_alarms: int  # not yet acknowledged
    acknowledged_alarms: int
    cpk: float | None
    last_time: datetime | None
    last_value: float | None


@dataclass(frozen=True)
class Summary:
    characteristics: int
    in_control: int
    out_of_control: int
    baseline: int
    open_alarms: int
    acknowledged_alarms: int
    worst_cpk: float | None
    worst_cpk_characteristic: str | None
    last_data_at: datetime | None


def control_state(has_limits: bool, unresolved_alarms: int) -> str:
    """in_control, out_of_control or baseline (see the module docstring)."""
    if not has_limits:
        return BASELINE
    return OUT_OF_CONTROL if unresolved_alarms else IN_CONTROL


def rolling_cpk(cpk: float | None, n: int, subgroup_size: int) -> float | None:
    """The rolling Cpk when the window holds at least ``MIN_SUBGROUPS`` subgroups."""
    if cpk is None or n // max(subgroup_size, 1) < MIN_SUBGROUPS:
        return None
    return cpk


def summarise(statuses: Iterable[CharacteristicStatus]) -> Summary:
    """Counts, alarm totals, the worst Cpk (first one on a tie) and the newest data time."""
    items = list(statuses)
    rated = [s for s in items if s.cpk is not None]
    worst = min(rated, key=lambda s: s.cpk or 0.0) if rated else None
    times = [s.last_time for s in items if s.last_time is not None]
    return Summary(
        characteristics=len(items),
        in_control=sum(s.state == IN_CONTROL for s in items),
        out_of_control=sum(s.state == OUT_OF_CONTROL for s in items),
        baseline=sum(s.state == BASELINE for s in items),
        open_alarms=sum(s.open_alarms for s in items),
        acknowledged_alarms=sum(s.acknowledged_alarms for s in items),
        worst_cpk=worst.cpk if worst else None,
        worst_cpk_characteristic=worst.id if worst else None,
        last_data_at=max(times, default=None),
    )


def process_id(line: str, process: str) -> str:
    """The qualified process id, ``<line>.<process>``."""
    return f"{line}.{process}"


@dataclass(frozen=True)
class ProcessNode:
    id: str  # <line>.<process>
    line: str
    process: str
    name: str
    origin: str
    characteristics: tuple[CharacteristicStatus, ...]

    @property
    def summary(self) -> Summary:
        return summarise(self.characteristics)


@dataclass(frozen=True)
class LineNode:
    id: str
    name: str
    origin: str
    processes: tuple[ProcessNode, ...]

    @property
    def summary(self) -> Summary:
        return summarise(c for p in self.processes for c in p.characteristics)


@dataclass(frozen=True)
class PlantNode:
    id: str
    name: str
    lines: tuple[LineNode, ...]

    @property
    def summary(self) -> Summary:
        return summarise(
            c for line in self.lines for p in line.processes for c in p.characteristics
        )

    @property
    def processes(self) -> list[ProcessNode]:
        return [p for line in self.lines for p in line.processes]


def build_hierarchy(plant: PlantConfig, statuses: Sequence[CharacteristicStatus]) -> PlantNode:
    """The plant's lines and processes with their characteristics' statuses.

    Configured lines and processes come first, in file order (also when they have no
    characteristic); those seen only on API-created characteristics follow, sorted.
    """
    grouped: dict[str, dict[str, list[CharacteristicStatus]]] = defaultdict(dict)
    for s in statuses:
        grouped[s.line].setdefault(s.process, []).append(s)
    lines = []
    for line in plant.lines:
        seen = grouped.pop(line.id, {})
        nodes = [
            _process(line.id, p.id, p.name or p.id, "config", seen.pop(p.id, []))
            for p in line.processes
        ]
        nodes += [_process(line.id, p, p, "api", seen[p]) for p in sorted(seen)]
        lines.append(LineNode(line.id, line.name or line.id, "config", tuple(nodes)))
    for line_id in sorted(grouped):
        extra = grouped[line_id]
        nodes = [_process(line_id, p, p, "api", extra[p]) for p in sorted(extra)]
        lines.append(LineNode(line_id, line_id, "api", tuple(nodes)))
    return PlantNode(plant.plant.id, plant.plant.name or plant.plant.id, tuple(lines))


def _process(
    line: str, process: str, name: str, origin: str, chars: list[CharacteristicStatus]
) -> ProcessNode:
    return ProcessNode(process_id(line, process), line, process, name, origin, tuple(chars))
