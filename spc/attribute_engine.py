"""Incremental attribute control charts (p, np, c, u) over consecutive inspected units.

Units arrive one by one (``AttributeChart.add_units``: 0/1 nonconforming for p and np, a
number of nonconformities for c and u), or as whole subgroups (``add_subgroups``). Every
``subgroup_size`` consecutive units make one subgroup, one plotted point. The first
``baseline_subgroups`` points are the Phase I baseline: the limits are computed from them
by the batch reference ``spc.control_limits`` (so they equal it exactly), frozen as
version 1 and kept until the caller installs another version (``compute_limits`` and
``restore_limits``, as the variables ``Engine`` does). Baseline points are not judged.

Conventions (Montgomery, *Introduction to Statistical Quality Control*, ch. 7; AIAG SPC
manual, 2nd ed.; the formulas are those of ``spc.control_limits``):

- p: p̄ = Σd/Σn, limits p̄ ± 3√(p̄(1 − p̄)/n), LCL floored at 0 (UCL capped at 1);
- np: n p̄ ± 3√(n p̄(1 − p̄)), one constant n;
- c: c̄ ± 3√c̄, LCL floored at 0, one constant inspection unit (the subgroup);
- u: ū = Σc/Σn, limits ū ± 3√(ū/n), LCL floored at 0.

p and u accept subgroups of other sizes (``add_subgroups`` with ``sizes``): each point is
then judged against its own limits, p̄ ± 3√(p̄(1 − p̄)/nᵢ) (ūᵢ the same way).

Rules: test 1 (a point beyond a limit as drawn; a point on a limit is in control) and
test 2 (``same_side`` points in a row strictly on one side of the centre line; Nelson's
9 by default), with exactly the semantics of ``spc.check_rules``. The zone and pattern
tests 3-8 are refused: they assume a symmetric, roughly normal statistic, and binomial
and Poisson counts are skewed (the more so the smaller n p̄ or c̄), so their false-alarm
rates are not what the tables say. The Western Electric handbook (1956) asks for zone
probabilities worked out per chart in that case; SAS's SHEWHART procedure offers tests
1-4 on p, np, c and u charts. Test 2 keeps its meaning only approximately (a point
above the mean is not a 50 % event for a skewed count), so read its signals with care.

A chart whose baseline has no nonconforming unit (p̄ = 0) has UCL = LCL = 0: every later
nonconforming unit signals test 1. Take a larger subgroup, or chart time between events.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from spc.charts import control_limits
from spc.rules import RuleSet

ATTRIBUTE_CHARTS = ("p", "np", "c", "u")
ATTRIBUTE_RULES = frozenset({"1", "2"})
DEFAULT_ATTRIBUTE_RULES = RuleSet(enabled=ATTRIBUTE_RULES)
DEFAULT_SUBGROUP_SIZE = 50
DEFAULT_BASELINE_SUBGROUPS = 25
_VARIABLE_SIZE = frozenset({"p", "u"})
__all__ = [
    "ATTRIBUTE_CHARTS",
    "ATTRIBUTE_RULES",
    "AttributeBatch",
    "AttributeChart",
    "AttributeLimits",
    "AttributePoint",
    "AttributeSignal",
]


@dataclass(frozen=True)
class AttributeLimits:
    """A frozen, versioned set of attribute-chart limits, drawn for subgroups of ``size``.

    ``center`` is p̄, n p̄, c̄ or ū; ``sigma`` the standard deviation of the plotted
    statistic at ``size`` (limits are center ± 3 sigma before flooring and capping);
    ``baseline_n`` counts the subgroups they were computed from.
    """

    version: int
    chart: str
    center: float
    ucl: float
    lcl: float
    sigma: float
    size: float
    baseline_n: int

    def at(self, size: float) -> tuple[float, float, float]:
        """(lcl, ucl, sigma) for a subgroup of ``size`` units (other sizes: p and u only)."""
        if size == self.size:
            return self.lcl, self.ucl, self.sigma
        if self.chart not in _VARIABLE_SIZE:
            raise ValueError(f"the {self.chart} chart takes one subgroup size, {self.size:g}")
        return _limits_at(self.chart, self.center, size)


@dataclass(frozen=True)
class AttributeSignal:
    """A rule broken by a point: ``rule`` "1" or "2", ``side`` "high" or "low"."""

    rule: str
    side: str


@dataclass(frozen=True)
class AttributePoint:
    """One completed subgroup, as plotted.

    ``position`` indexes the input of the call that completed it (the unit, or the
    subgroup, closing it); ``index`` numbers the chart's subgroups from 0. ``count`` is
    nonconforming units (p, np) or nonconformities (c, u) in ``size`` units; ``value``
    the plotted statistic (d/n, d, c or c/n). ``limit_version`` is None for a baseline
    point (then ``center``, ``ucl`` and ``lcl`` are None and nothing is judged).
    """

    position: int
    index: int
    count: float
    size: float
    value: float
    limit_version: int | None
    center: float | None
    ucl: float | None
    lcl: float | None
    signals: tuple[AttributeSignal, ...] = ()


@dataclass(frozen=True)
class AttributeBatch:
    """What one call found: completed points, and the limits its baseline froze (if any)
    at ``points[limits_at]`` (the last baseline point)."""

    points: list[AttributePoint]
    new_limits: AttributeLimits | None = None
    limits_at: int | None = None


class AttributeChart:
    """One incremental p, np, c or u chart: open subgroup, baseline, limits, run state.

    Parameters
    ----------
    chart : "p", "np", "c" or "u".
    subgroup_size : units per subgroup (n), at least 1.
    baseline_subgroups : Phase I subgroups (k), at least 2.
    rules : a ``RuleSet`` enabling a subset of tests "1" and "2" (module docstring).
    """

    def __init__(
        self,
        chart: str = "p",
        subgroup_size: int = DEFAULT_SUBGROUP_SIZE,
        baseline_subgroups: int = DEFAULT_BASELINE_SUBGROUPS,
        rules: RuleSet = DEFAULT_ATTRIBUTE_RULES,
    ) -> None:
        if chart not in ATTRIBUTE_CHARTS:
            raise ValueError(f"chart {chart!r} is not one of {', '.join(ATTRIBUTE_CHARTS)}")
        if isinstance(subgroup_size, bool) or not isinstance(subgroup_size, int):
            raise TypeError(f"subgroup_size must be an int, got {subgroup_size!r}")
        if subgroup_size < 1:
            raise ValueError(f"subgroup_size must be at least 1 unit, got {subgroup_size}")
        if baseline_subgroups < 2:
            raise ValueError(f"baseline_subgroups must be at least 2, got {baseline_subgroups}")
        if not rules.enabled <= ATTRIBUTE_RULES:
            extra = ", ".join(sorted(rules.enabled - ATTRIBUTE_RULES))
            raise ValueError(
                f"tests {extra} assume a symmetric statistic; attribute charts take tests 1 "
                "and 2 only: RuleSet(enabled={'1', '2'})"
            )
        self.chart = chart
        self.subgroup_size = subgroup_size
        self.baseline_subgroups = baseline_subgroups
        self.rules = rules
        self._limits: AttributeLimits | None = None
        self._baseline: list[tuple[float, float]] = []
        self._open_units = 0
        self._open_count = 0.0
        self._subgroups = 0
        self._run_high = 0
        self._run_low = 0

    @property
    def limits(self) -> AttributeLimits | None:
        """The limits in force, or None while the baseline is being collected."""
        return self._limits

    @property
    def subgroups(self) -> int:
        """Subgroups completed so far (the next point's ``index``)."""
        return self._subgroups

    @property
    def open_subgroup(self) -> tuple[int, float]:
        """(units, count) of the subgroup being filled."""
        return self._open_units, self._open_count

    def baseline_progress(self) -> tuple[int, int]:
        """(subgroups collected, subgroups needed) for the Phase I baseline."""
        done = self.baseline_subgroups if self._limits else len(self._baseline)
        return done, self.baseline_subgroups

    def add_units(self, counts: npt.ArrayLike) -> AttributeBatch:
        """Feed inspected units in order: one count per unit (module docstring)."""
        units = _counts(counts, "counts")
        if self.chart in ("p", "np") and np.any(units > 1.0):
            raise ValueError("p and np charts take 0 (conforming) or 1 (nonconforming) per unit")
        out = _Collector()
        n = self.subgroup_size
        i = 0
        while i < units.size:
            take = min(n - self._open_units, units.size - i)
            self._open_count += float(units[i : i + take].sum())
            self._open_units += take
            i += take
            if self._open_units == n:
                count, self._open_units, self._open_count = self._open_count, 0, 0.0
                self._close(count, float(n), i - 1, out)
        return out.batch()

    def add_subgroups(
        self, counts: npt.ArrayLike, sizes: npt.ArrayLike | None = None
    ) -> AttributeBatch:
        """Feed whole subgroups: a count and a size (default ``subgroup_size``) each.

        Only p and u charts take sizes other than ``subgroup_size``. An open subgroup of
        single units must be completed first.
        """
        values = _counts(counts, "counts")
        sized = self._sizes(values.size, sizes)
        if self._open_units:
            raise ValueError(f"{self._open_units} units of an open subgroup: complete it first")
        if self.chart in ("p", "np") and np.any(values > sized):
            raise ValueError("a subgroup has more nonconforming units than units")
        out = _Collector()
        for position, (count, size) in enumerate(zip(values.tolist(), sized.tolist(), strict=True)):
            self._close(count, size, position, out)
        return out.batch()

    def compute_limits(
        self,
        counts: npt.ArrayLike,
        sizes: npt.ArrayLike | None = None,
        exclude: Sequence[int] = (),
    ) -> AttributeLimits:
        """New limits from baseline subgroups, as the next version; nothing is installed.

        ``exclude`` lists subgroup positions with an assignable cause to leave out (as
        Montgomery does in Example 7.1). The result equals ``control_limits`` of the
        kept subgroups; for p and u with unequal sizes, its ``ucl``/``lcl``/``sigma`` are
        for ``subgroup_size`` (``AttributeLimits.at`` gives any other size).
        """
        values = _counts(counts, "counts")
        sized = self._sizes(values.size, sizes)
        dropped = set(exclude)
        if any(not 0 <= i < values.size for i in dropped):
            raise IndexError(f"exclude holds positions outside the {values.size} subgroups")
        kept = [i for i in range(values.size) if i not in dropped]
        if len(kept) < 2:
            raise ValueError("a baseline needs at least 2 subgroups left after the exclusions")
        version = (self._limits.version if self._limits else 0) + 1
        return self._frozen(values[kept], sized[kept], version)

    def restore_limits(self, limits: AttributeLimits) -> None:
        """Install a limit set (Phase II from now on); test 2 starts its runs afresh."""
        if limits.version < 1:
            raise ValueError(f"limit versions start at 1, got {limits.version}")
        if limits.chart != self.chart or limits.size != self.subgroup_size:
            raise ValueError(
                f"limits of a {limits.chart} chart of {limits.size:g} units do not fit this "
                f"{self.chart} chart of {self.subgroup_size} units"
            )
        self._limits = limits
        self._baseline.clear()
        self._run_high = self._run_low = 0

    def _sizes(self, m: int, sizes: npt.ArrayLike | None) -> npt.NDArray[np.float64]:
        if sizes is None:
            return np.full(m, float(self.subgroup_size))
        sized = np.broadcast_to(np.asarray(sizes, dtype=np.float64), (m,))
        if not np.all(np.isfinite(sized) & (sized > 0)):
            raise ValueError("sizes must be finite and positive")
        if self.chart not in _VARIABLE_SIZE and np.any(sized != self.subgroup_size):
            raise ValueError(f"the {self.chart} chart takes subgroups of {self.subgroup_size}")
        return np.array(sized, dtype=np.float64)

    def _frozen(
        self, counts: npt.NDArray[np.float64], sizes: npt.NDArray[np.float64], version: int
    ) -> AttributeLimits:
        n = float(self.subgroup_size)
        equal = bool(np.all(sizes == n))
        if self.chart == "c":
            ref = control_limits(counts, "c")
        else:
            ref = control_limits(counts, self.chart, sample_sizes=n if equal else sizes)
        center = float(ref.center)
        if equal:
            ucl, lcl, sigma = float(ref.ucl), float(ref.lcl), float(ref.sigma)
        else:  # per-point limits in the reference: these are the ones for subgroup_size
            lcl, ucl, sigma = _limits_at(self.chart, center, n)
        return AttributeLimits(version, self.chart, center, ucl, lcl, sigma, n, int(counts.size))

    def _close(self, count: float, size: float, position: int, out: _Collector) -> None:
        index = self._subgroups
        self._subgroups += 1
        value = _plotted(self.chart, count, size)
        limits = self._limits
        if limits is None:
            out.points.append(
                AttributePoint(position, index, count, size, value, None, None, None, None)
            )
            self._baseline.append((count, size))
            if len(self._baseline) == self.baseline_subgroups:
                counts, sizes = (
                    np.array(c, dtype=np.float64) for c in zip(*self._baseline, strict=True)
                )
                self.restore_limits(self._frozen(counts, sizes, 1))
                out.new_limits, out.limits_at = self._limits, len(out.points) - 1
            return
        lcl, ucl, _ = limits.at(size)
        signals = self._judge(value, limits.center, lcl, ucl)
        out.points.append(
            AttributePoint(position, index, count, size, value, limits.version, limits.center,
                           ucl, lcl, signals)
        )  # fmt: skip

    def _judge(
        self, value: float, center: float, lcl: float, ucl: float
    ) -> tuple[AttributeSignal, ...]:
        enabled = self.rules.enabled
        self._run_high = self._run_high + 1 if value > center else 0
        self._run_low = self._run_low + 1 if value < center else 0
        found = []
        if "1" in enabled and (value > ucl or value < lcl):
            found.append(AttributeSignal("1", "high" if value > ucl else "low"))
        if "2" in enabled:
            if self._run_high >= self.rules.same_side:
                found.append(AttributeSignal("2", "high"))
            elif self._run_low >= self.rules.same_side:
                found.append(AttributeSignal("2", "low"))
        return tuple(found)


class _Collector:
    def __init__(self) -> None:
        self.points: list[AttributePoint] = []
        self.new_limits: AttributeLimits | None = None
        self.limits_at: int | None = None

    def batch(self) -> AttributeBatch:
        return AttributeBatch(self.points, self.new_limits, self.limits_at)


def _limits_at(chart: str, center: float, size: float) -> tuple[float, float, float]:
    """(lcl, ucl, sigma) by the formulas of ``spc.charts`` for one subgroup size."""
    if chart == "p":
        sigma = math.sqrt(center * (1.0 - center) / size)
        return max(center - 3.0 * sigma, 0.0), min(center + 3.0 * sigma, 1.0), sigma
    sigma = math.sqrt(center / size)
    return max(center - 3.0 * sigma, 0.0), center + 3.0 * sigma, sigma


def _plotted(chart: str, count: float, size: float) -> float:
    return count / size if chart in _VARIABLE_SIZE else count


def _counts(data: npt.ArrayLike, name: str) -> npt.NDArray[np.float64]:
    values = np.asarray(data, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {values.shape}")
    if not np.all(np.isfinite(values) & (values >= 0)):
        raise ValueError(f"{name} must be finite and non-negative")
    return values
