"""Live quality grades: the metrics of every characteristic, process, line and the plant,
from the engine's rolling capability and the store's verdicts and cost events, graded by
``spc.grades`` (the weakest link, rolled up characteristic -> process -> line -> plant).

Conventions (see README, *Quality grades*): a characteristic's Cpk is its rolling Cpk
(the engine's window); a process's Cpk the lowest of its characteristics'; first-pass
yield and the sigma level come from first-submission verdicts in the period; a line's
rolled yield is the product over its inspecting processes; loss rates are the cost
events of the line (scope = line id) or, for the plant, of every scope, over the output
value of the same scope and period, in the currency of that output value. The plant's
Cpk and rolled yield are its weakest line's.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import anyio.to_thread

from app.monitor import Monitor
from app.periods import Period
from ingest.model import CostCategory
from ingest.store import CostTotal, FirstPassCount, Store
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


@dataclass(frozen=True)
class Graded:
    """One entity's grade with the ids of the entities it rolls up."""

    level: str  # characteristic | process | line | plant
    id: str
    result: EntityGrade
    children: tuple[str, ...] = ()


@dataclass
class PlantGrades:
    """Every entity's grade for one period, computed at ``computed_at``."""

    period: Period
    computed_at: datetime
    entities: dict[tuple[str, str], Graded] = field(default_factory=dict)

    def get(self, level: str, entity: str) -> Graded | None:
        return self.entities.get((level, entity))

    def of_level(self, level: str) -> list[Graded]:
        return [g for (lvl, _), g in sorted(self.entities.items()) if lvl == level]


async def grade_plant(
    monitor: Monitor, store: Store, plant_id: str, period: Period, now: datetime
) -> PlantGrades:
    """Grade every characteristic, process, line and the plant for ``period``.

    The store is read here; the grading itself (every characteristic's rolling Cpk
    included) runs on a worker thread, so a large plant never stalls the event loop.
    """
    verdicts = {c.process: c for c in await store.first_pass_counts(period.start, period.end)}
    costs = await store.cost_totals(period.start, period.end)
    return await anyio.to_thread.run_sync(
        _grade_all, monitor, verdicts, costs, plant_id, period, now
    )


def _grade_all(
    monitor: Monitor,
    verdicts: dict[str, FirstPassCount],
    costs: list[CostTotal],
    plant_id: str,
    period: Period,
    now: datetime,
) -> PlantGrades:
    out = PlantGrades(period, now)

    processes: dict[tuple[str, str], list[str]] = defaultdict(list)
    cpk_of: dict[str, MetricValue] = {}
    for record in monitor.characteristics:
        processes[(record.line, record.process)].append(record.id)
        cpk_of[record.id] = _rolling_cpk(monitor, record.id, record.subgroup_size)
        result = grade_entity([grade_metric(cpk_of[record.id])])
        out.entities[("characteristic", record.id)] = Graded("characteristic", record.id, result)

    lines: dict[str, list[str]] = defaultdict(list)
    process_cpk: dict[str, MetricValue] = {}
    process_fp: dict[str, FirstPassCount] = {}
    for (line, process), chars in sorted(processes.items()):
        key = f"{line}.{process}"
        lines[line].append(key)
        process_cpk[key] = lowest_cpk({c: cpk_of[c] for c in chars})
        metrics = [grade_metric(process_cpk[key])]
        if key in verdicts:
            fp = process_fp[key] = verdicts[key]
            metrics.append(grade_metric(rolled_yield([(fp.inspected, fp.passed)])))
            metrics.append(grade_defect_rate(fp.inspected - fp.passed, fp.inspected))
        out.entities[("process", key)] = Graded("process", key, grade_entity(metrics), tuple(chars))

    line_cpk: dict[str, MetricValue] = {}
    line_rty: dict[str, MetricValue] = {}
    for line, keys in sorted(lines.items()):
        line_cpk[line] = lowest_cpk({k: process_cpk[k] for k in keys})
        inspected = [process_fp[k] for k in keys if k in process_fp]
        metrics = [grade_metric(line_cpk[line])]
        if inspected:
            line_rty[line] = rolled_yield([(f.inspected, f.passed) for f in inspected])
            metrics.append(grade_metric(line_rty[line]))
            metrics.append(_sigma(inspected))
        metrics += _loss_grades([c for c in costs if c.scope == line])
        out.entities[("line", line)] = Graded("line", line, grade_entity(metrics), tuple(keys))

    metrics = [grade_metric(_weakest(Metric.CPK, line_cpk))]
    if line_rty:
        metrics.append(grade_metric(_weakest(Metric.ROLLED_FIRST_PASS_YIELD, line_rty)))
        metrics.append(_sigma(list(process_fp.values())))
    metrics += _loss_grades(costs)
    out.entities[("plant", plant_id)] = Graded(
        "plant", plant_id, grade_entity(metrics), tuple(sorted(lines))
    )
    return out


def _rolling_cpk(monitor: Monitor, characteristic: str, subgroup_size: int) -> MetricValue:
    cap = monitor.capability(characteristic)
    if cap is None:
        return MetricValue(Metric.CPK, None, 0)
    subgroups = cap.n // max(subgroup_size, 1)
    if subgroups < MIN_SUBGROUPS or cap.cpk is None:
        return MetricValue(Metric.CPK, None, subgroups)
    return MetricValue(Metric.CPK, cap.cpk, subgroups)


def _sigma(counts: list[FirstPassCount]) -> MetricGrade:
    inspected = sum(c.inspected for c in counts)
    return grade_defect_rate(inspected - sum(c.passed for c in counts), inspected)


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
