"""The five quality grades of the Manufacturing Excellence Quality Project (MIIT et al.,
工信部联科〔2023〕249号, annex on grading quality-management capability), on the
quantitative "quality performance" dimension, as set out in ``docs/quality-grades.md``.

A metric's grade is the highest grade whose threshold it meets; an entity's grade is the
lowest of its metric grades (the weakest link), reported with the metric that limits it
and what each metric must reach for the next grade. A metric with too little data is
"insufficient", never graded; an entity with any insufficient metric has no grade, only
the best it could be given what is known (``ceiling``).

Units: Cpk dimensionless; rolled first-pass yield and loss rates as fractions (0.95 is
95 %); the sigma level is graded on its defect rate in DPMO against the conventional
long-term values with the 1.5σ shift (3.4, 233, 6,210 and 66,807 DPMO for 6σ..3σ), so a
level and its rounded DPMO always get the same grade.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from fractions import Fraction
from typing import Final

from spc.sigma_level import sigma_level


@dataclass(frozen=True)
class Grade:
    level: int  # 1 (lowest) .. 5
    en: str
    zh: str


GRADES: Final = (
    Grade(1, "Experience", "经验级"),
    Grade(2, "Inspection", "检验级"),
    Grade(3, "Assurance", "保证级"),
    Grade(4, "Prevention", "预防级"),
    Grade(5, "Excellence", "卓越级"),
)


def grade(level: int) -> Grade:
    """The grade of a level 1..5, with its English and Chinese names."""
    if not 1 <= level <= 5:
        raise ValueError(f"grade level must be 1..5, got {level}")
    return GRADES[level - 1]


class Metric(StrEnum):
    SIGMA_LEVEL = "sigma_level"
    CPK = "cpk"
    ROLLED_FIRST_PASS_YIELD = "rolled_first_pass_yield"
    INTERNAL_LOSS_RATE = "internal_loss_rate"
    EXTERNAL_LOSS_RATE = "external_loss_rate"


# Thresholds for grades 2, 3, 4, 5. "at least" metrics grow better upwards; DPMO and loss
# rates are better when lower ("at most" for DPMO as the document pins the levels to
# those counts, "below" for loss rates as the document writes "<").
CPK_MIN: Final = (1.00, 1.33, 1.67, 2.00)
RTY_MIN: Final = (0.90, 0.95, 0.97, 0.98)
DPMO_MAX: Final = (66_807.0, 6_210.0, 233.0, 3.4)
SIGMA_FOR: Final = (3.0, 4.0, 5.0, 6.0)  # the level each DPMO bound stands for
INTERNAL_LOSS_BELOW: Final = (3.0e-2, 1.5e-2, 0.75e-2)  # grades 3, 4, 5
EXTERNAL_LOSS_BELOW: Final = (2.3e-2, 1.0e-2, 0.5e-2)

MIN_SUBGROUPS: Final = 25
"""Fewer subgroups (or individual points) than this: Cpk is insufficient data."""
MIN_UNITS: Final = 100
"""Fewer inspected units (or measurements) than this: yields and DPMO are insufficient."""


@dataclass(frozen=True)
class MetricValue:
    """One metric of one entity: its value and the count it rests on.

    ``value`` None with ``tracked`` True means the data were too few (``basis`` below
    the minimum); ``tracked`` False means nothing is recorded for it at all (a loss rate
    with no output value: the document grades that "not tracked", grade 1).
    """

    metric: Metric
    value: float | None
    basis: int
    tracked: bool = True
    interval: tuple[float, float] | None = None  # 95 % confidence interval, where known


@dataclass(frozen=True)
class MetricGrade:
    metric: Metric
    value: float | None
    basis: int
    grade: int | None  # None: insufficient data
    next_target: float | None  # what ``value`` must reach for the next grade; None at 5
    note: str
    interval: tuple[float, float] | None = None  # 95 % confidence interval of ``value``


@dataclass(frozen=True)
class EntityGrade:
    """The weakest-link grade of one entity and the breakdown behind it."""

    grade: int | None  # None while any metric is insufficient
    ceiling: int | None  # the lowest grade among the metrics that could be graded
    limiting: Metric | None  # the metric at ``ceiling`` (the first such, in the order given)
    metrics: tuple[MetricGrade, ...]
    insufficient: tuple[Metric, ...]


def grade_metric(m: MetricValue) -> MetricGrade:
    """Grade one metric value (see the module docstring for units and conventions)."""
    if not m.tracked:
        return MetricGrade(m.metric, None, m.basis, 1, None, "not tracked")
    if m.value is None:
        return MetricGrade(m.metric, None, m.basis, None, None, "insufficient data")
    if math.isnan(m.value):
        raise ValueError(f"{m.metric}: NaN cannot be graded (report it as insufficient)")
    if m.metric in (Metric.INTERNAL_LOSS_RATE, Metric.EXTERNAL_LOSS_RATE) and m.value < 0:
        raise ValueError(f"{m.metric}: a loss rate cannot be negative, got {m.value}")
    if m.metric is Metric.CPK:
        level = _at_least(m.value, CPK_MIN)
        return _graded(m, level, CPK_MIN[level - 1] if level < 5 else None)
    if m.metric is Metric.ROLLED_FIRST_PASS_YIELD:
        level = _at_least(m.value, RTY_MIN)
        return _graded(m, level, RTY_MIN[level - 1] if level < 5 else None)
    if m.metric is Metric.SIGMA_LEVEL:
        raise ValueError("grade the sigma level with grade_defect_rate (it grades on DPMO)")
    bounds = INTERNAL_LOSS_BELOW if m.metric is Metric.INTERNAL_LOSS_RATE else EXTERNAL_LOSS_BELOW
    level = 2 + sum(m.value < b for b in bounds)  # tracked: at least grade 2
    return _graded(m, level, bounds[level - 2] if level < 5 else None, below=True)


def grade_defect_rate(
    defects: int, units: int, min_units: int = MIN_UNITS, counted: str = "defective"
) -> MetricGrade:
    """Sigma level of ``defects`` out of ``units`` (opportunities), graded on its DPMO.

    The value reported is the sigma level Φ⁻¹(1 − DPMO/1e6) + 1.5 (``inf`` with no
    defect); ``next_target`` is the sigma level the next grade needs. ``counted`` names
    the defects in the note ("defective", "out of specification").
    """
    if units < min_units:
        return MetricGrade(Metric.SIGMA_LEVEL, None, units, None, None, "insufficient data")
    rate = defects / units * 1e6
    level = 1 + sum(rate <= bound for bound in DPMO_MAX)
    target = SIGMA_FOR[level - 1] if level < 5 else None
    note = f"{defects} {counted} of {units} ({rate:.4g} DPMO)"
    if defects == 0:
        note = f"0 {counted} of {units} (0 DPMO: the sigma level is unbounded)"
    if level < 5:
        bound = DPMO_MAX[level - 1]
        note += f"; at most {bound:g} DPMO ({target:g}σ) for {grade(level + 1).en}"
    else:
        note += "; at the highest grade"
    return MetricGrade(Metric.SIGMA_LEVEL, sigma_level(rate), units, level, target, note)


def grade_entity(metrics: Sequence[MetricGrade]) -> EntityGrade:
    """The weakest link of graded metrics; no grade while any metric is insufficient."""
    known = [m for m in metrics if m.grade is not None]
    insufficient = tuple(m.metric for m in metrics if m.grade is None)
    ceiling = min((m.grade for m in known if m.grade is not None), default=None)
    limiting = next((m.metric for m in known if m.grade == ceiling), None)
    final = ceiling if not insufficient and known else None
    return EntityGrade(final, ceiling, limiting, tuple(metrics), insufficient)


def lowest_cpk(cpks: Mapping[str, MetricValue]) -> MetricValue:
    """A process's Cpk: the lowest of its characteristics' (any insufficient: insufficient).

    The basis is the smallest of theirs, so the roll-up is only as founded as its
    weakest member.
    """
    if not cpks:
        return MetricValue(Metric.CPK, None, 0)
    values = list(cpks.values())
    basis = min(v.basis for v in values)
    if any(v.value is None for v in values):
        return MetricValue(Metric.CPK, None, basis)
    lowest = min(values, key=lambda v: v.value if v.value is not None else math.inf)
    return replace(lowest, basis=basis)  # its interval too


def rolled_yield(first_pass: Sequence[tuple[int, int]], min_units: int = MIN_UNITS) -> MetricValue:
    """Rolled first-pass yield: the product over processes of passed / inspected.

    ``first_pass`` holds (inspected, passed) of first submissions per process; every
    process needs ``min_units`` inspections, or the result is insufficient.
    """
    if not first_pass:
        return MetricValue(Metric.ROLLED_FIRST_PASS_YIELD, None, 0)
    for inspected, passed in first_pass:
        if not 0 <= passed <= inspected:
            raise ValueError(f"passed ({passed}) must lie in 0..inspected ({inspected})")
    basis = min(inspected for inspected, _ in first_pass)
    if basis < max(min_units, 1):
        return MetricValue(Metric.ROLLED_FIRST_PASS_YIELD, None, basis)
    product = Fraction(1)  # exact: 99/100 x 100/110 is 90 %, not 89.999... %
    for inspected, passed in first_pass:
        product *= Fraction(passed, inspected)
    return MetricValue(Metric.ROLLED_FIRST_PASS_YIELD, float(product), basis)


def loss_rate(metric: Metric, loss: float, output_value: float, events: int) -> MetricValue:
    """A quality-loss rate: loss / output value over the period (no output: not tracked)."""
    if output_value <= 0:
        return MetricValue(metric, None, events, tracked=False)
    return MetricValue(metric, loss / output_value, events)


def _at_least(value: float, mins: Sequence[float]) -> int:
    return 1 + sum(value >= bound for bound in mins)


def _graded(m: MetricValue, level: int, target: float | None, below: bool = False) -> MetricGrade:
    if target is None:
        note = "at the highest grade"
    else:
        note = f"{'below' if below else 'at least'} {target:g} for {grade(level + 1).en}"
    return MetricGrade(m.metric, m.value, m.basis, level, target, note, m.interval)
