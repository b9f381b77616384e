"""Live quality grades: the metrics of every characteristic, process, line and the plant,
from the hourly capability sums and the store's verdicts and cost events, graded by
``spc.grades`` (the weakest link, rolled up characteristic -> process -> line -> plant).

Conventions (see README, *Quality grades*): a characteristic's Cpk is its Cpk over the
period (the hours of the period: ``app.capability_ledger``), with its 95 % Bissell
interval; a process's Cpk the lowest of its characteristics'. The sigma level is graded
on the observed defect rate: a process that inspects counts its first-submission
defectives per unit inspected, one that does not counts its characteristics' values
beyond a specification limit per value measured (one opportunity each); a line and the
plant add up their processes' defects and opportunities. First-pass yield comes from
first-submission verdicts; a line's rolled yield is the product over its inspecting
processes; loss rates are the cost events of the line (scope = line id) or, for the
plant, of every scope, over the output value of the same scope and period, in the
currency of that output value. The plant's Cpk and rolled yield are its weakest line's.
Every entity with a Cpk also shows the sigma level capability implies (3 Cpk), ungraded.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import anyio.to_thread

from app.capability_ledger import dispersion_of, hour_of
from app.monitor import Monitor
from app.periods import Period
from ingest import CharacteristicRecord
from ingest.model import CostCategory
from ingest.store import CostTotal, FirstPassCount, Store
from spc.capability_sums import CapabilitySums, period_capability
from spc.grades import (
    MIN_SUBGROUPS,
    EntityGrade,
    Metric,
    MetricGrade,
    MetricValue,
    grade_defect_rate,
    grade_entity,
    grade_metric,
    loss_rate,
    lowest_cpk,
    rolled_yield,
)
from spc.sigma_level import sigma_level_from_cpk


@dataclass(frozen=True)
class Defects:
    """Defects and the opportunities they came from, and what was counted."""

    defects: int = 0
    opportunities: int = 0
    counted: frozenset[str] = frozenset()

    def __add__(self, other: Defects) -> Defects:
        return Defects(
            self.defects + other.defects,
            self.opportunities + other.opportunities,
            self.counted | other.counted,
        )

    def graded(self) -> MetricGrade:
        counted = " or ".join(sorted(self.counted)) or "defective"
        return grade_defect_rate(self.defects, self.opportunities, counted=counted)


@dataclass(frozen=True)
class Graded:
    """One entity's grade with the ids of the entities it rolls up.

    ``capability_sigma`` is the sigma level its Cpk implies (3 Cpk; None without a Cpk).
    """

    level: str  # characteristic | process | line | plant
    id: str
    result: EntityGrade
    children: tuple[str, ...] = ()
    capability_sigma: float | None = None


@dataclass
class PlantGrades:
    """Every entity's grade for one period, computed at ``computed_at``."""

    period: Period
    computed_at: datetime
    entities: dict[tuple[str, str], Graded] = field(default_factory=dict)
    cpk_from: datetime | None = None  # the first hour the Cpk sums cover

    def get(self, level: str, entity: str) -> Graded | None:
        return self.entities.get((level, entity))

    def of_level(self, level: str) -> list[Graded]:
        return [g for (lvl, _), g in sorted(self.entities.items()) if lvl == level]


async def grade_plant(
    monitor: Monitor, store: Store, plant_id: str, period: Period, now: datetime
) -> PlantGrades:
    """Grade every characteristic, process, line and the plant for ``period``.

    The store is read here; the grading itself runs on a worker thread, so a large
    plant never stalls the event loop. The Cpk covers the whole UTC hours that the
    period touches (a ``24h`` period starts at the top of its first hour).
    """
    verdicts = {c.process: c for c in await store.first_pass_counts(period.start, period.end)}
    costs = await store.cost_totals(period.start, period.end)
    first_hour = hour_of(period.start)
    sums = await monitor.ledger.totals(first_hour, period.end)
    grades = await anyio.to_thread.run_sync(
        _grade_all, monitor.characteristics, sums, verdicts, costs, plant_id, period, now
    )
    grades.cpk_from = first_hour
    return grades


def _grade_all(
    records: Sequence[CharacteristicRecord],
    sums: Mapping[str, CapabilitySums],
    verdicts: dict[str, FirstPassCount],
    costs: list[CostTotal],
    plant_id: str,
    period: Period,
    now: datetime,
) -> PlantGrades:
    out = PlantGrades(period, now)

    def add(level: str, key: str, metrics: list[MetricGrade], children: Sequence[str] = ()) -> None:
        cpk = next((m.value for m in metrics if m.metric is Metric.CPK), None)
        implied = sigma_level_from_cpk(cpk) if cpk is not None else None
        out.entities[(level, key)] = Graded(
            level, key, grade_entity(metrics), tuple(children), implied
        )

    processes: dict[tuple[str, str], list[str]] = defaultdict(list)
    cpk_of: dict[str, MetricValue] = {}
    measured: dict[str, Defects] = {}
    for record in records:
        processes[(record.line, record.process)].append(record.id)
        cpk_of[record.id], measured[record.id] = _period_cpk(record, sums.get(record.id))
        add(
            "characteristic",
            record.id,
            [grade_metric(cpk_of[record.id]), measured[record.id].graded()],
        )

    lines: dict[str, list[str]] = defaultdict(list)
    process_cpk: dict[str, MetricValue] = {}
    process_fp: dict[str, FirstPassCount] = {}
    process_defects: dict[str, Defects] = {}
    for (line, process), chars in sorted(processes.items()):
        key = f"{line}.{process}"
        lines[line].append(key)
        process_cpk[key] = lowest_cpk({c: cpk_of[c] for c in chars})
        metrics = [grade_metric(process_cpk[key])]
        if key in verdicts:
            fp = process_fp[key] = verdicts[key]
            metrics.append(grade_metric(rolled_yield([(fp.inspected, fp.passed)])))
            process_defects[key] = Defects(
                fp.inspected - fp.passed, fp.inspected, frozenset({"defective"})
            )
        else:
            process_defects[key] = sum((measured[c] for c in chars), Defects())
        metrics.append(process_defects[key].graded())
        add("process", key, metrics, chars)

    line_cpk: dict[str, MetricValue] = {}
    line_rty: dict[str, MetricValue] = {}
    for line, keys in sorted(lines.items()):
        line_cpk[line] = lowest_cpk({k: process_cpk[k] for k in keys})
        inspected = [process_fp[k] for k in keys if k in process_fp]
        metrics = [grade_metric(line_cpk[line])]
        if inspected:
            line_rty[line] = rolled_yield([(f.inspected, f.passed) for f in inspected])
            metrics.append(grade_metric(line_rty[line]))
        metrics.append(sum((process_defects[k] for k in keys), Defects()).graded())
        metrics += _loss_grades([c for c in costs if c.scope == line])
        add("line", line, metrics, keys)

    metrics = [grade_metric(_weakest(Metric.CPK, line_cpk))]
    if line_rty:
        metrics.append(grade_metric(_weakest(Metric.ROLLED_FIRST_PASS_YIELD, line_rty)))
    metrics.append(sum(process_defects.values(), Defects()).graded())
    metrics += _loss_grades(costs)
    add("plant", plant_id, metrics, sorted(lines))
    return out


def _period_cpk(
    record: CharacteristicRecord, sums: CapabilitySums | None
) -> tuple[MetricValue, Defects]:
    """The Cpk over the period's sums (with its interval) and the values out of spec."""
    if sums is None or sums.n == 0:
        return MetricValue(Metric.CPK, None, 0), Defects(
            counted=frozenset({"out of specification"})
        )
    cap = period_capability(
        sums, record.lsl, record.usl, dispersion_of(record), record.subgroup_size
    )
    defects = Defects(cap.out_of_spec, cap.n, frozenset({"out of specification"}))
    if record.lsl is None and record.usl is None:
        # nothing can fall outside a specification: no defect opportunities (they would
        # only dilute the process's and line's defect rate), and its own rate insufficient
        defects = Defects()
    if cap.subgroups < MIN_SUBGROUPS or cap.cpk is None:
        return MetricValue(Metric.CPK, None, cap.subgroups), defects
    return MetricValue(Metric.CPK, cap.cpk, cap.subgroups, interval=cap.cpk_ci), defects


def _weakest(metric: Metric, values: dict[str, MetricValue]) -> MetricValue:
    """The lowest value among entities (any insufficient one makes it insufficient)."""
    if not values or any(v.value is None for v in values.values()):
        return MetricValue(metric, None, min((v.basis for v in values.values()), default=0))
    return min(values.values(), key=lambda v: v.value if v.value is not None else 0.0)


def _loss_grades(costs: list[CostTotal]) -> list[MetricGrade]:
    """Internal and external loss rates over the output value, in its currency."""
    output = [c for c in costs if c.category is CostCategory.OUTPUT_VALUE]
    currency = max(output, key=lambda c: c.amount).currency if output else None
    same = [c for c in costs if c.currency == currency]
    value = sum(c.amount for c in same if c.category is CostCategory.OUTPUT_VALUE)
    internal = [c for c in same if c.category.is_internal_loss]
    external = [c for c in same if c.category.is_external_loss]
    return [
        grade_metric(
            loss_rate(
                Metric.INTERNAL_LOSS_RATE,
                sum(c.amount for c in internal),
                value,
                sum(c.events for c in internal),
            )
        ),
        grade_metric(
            loss_rate(
                Metric.EXTERNAL_LOSS_RATE,
                sum(c.amount for c in external),
                value,
                sum(c.events for c in external),
            )
        ),
    ]
