"""The control chart of one characteristic over a time range, ready to draw (pure, no I/O).

``build_chart(record, measurements, limit_history)`` computes every plotted point, the
limits in force at each and the violations, with the published batch functions of
:mod:`spc` (``check_rules``, ``ewma``, ``cusum``). Conventions:

- Only good-quality measurements are charted, in time order.
- X-bar charts: consecutive good measurements form subgroups of ``subgroup_size``,
  counted from the first one in the range (they are the engine's, which forms them in
  arrival order, when the range starts at a subgroup's first value and data came in time
  order); a trailing incomplete subgroup is not plotted (``ChartView.not_plotted``). A
  subgroup is plotted at its last measurement's time; its dispersion is R (``xbar_r``) or
  S with n - 1 (``xbar_s``).
  Individuals charts plot the value and the moving range |x_i - x_(i-1)| (none for the
  first point of the range).
- Limits in force: a point (a subgroup: its last measurement) belongs to the latest limit
  set in force before its time (``StoredLimits.in_force_after``: for Phase I limits the
  time of the last baseline point, for recalculated ones when they were installed), so
  history pushed late is charted against the limits the engine judged it with. Points
  up to the first set's time are the Phase I baseline: no limits, no violations, no
  EWMA or CUSUM.
- Run rules, EWMA and CUSUM restart with each limit version, as the live engine's do, and
  see only the points of the range: a pattern that began before it may go unmarked.
- Location chart (I or X-bar): the characteristic's rules against the set's centre and
  sigma (sigma of the plotted point). Dispersion chart (MR, R or S): rule 1 only
  (``spc.rules_for_chart``), with centre ``mr_center`` and sigma (``mr_ucl`` -
  ``mr_center``) / 3, which reproduces the drawn UCL and, where it is above zero, the LCL.
- EWMA and CUSUM run on the plotted point with target = centre and the set's sigma.
- A limit set without spread (sigma not positive) marks nothing: points cannot be
  standardised against it.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from app.monitor import rules_of
from ingest import CharacteristicRecord, Measurement, Quality, StoredLimits
from spc import LimitSet, RuleSet, check_rules, cusum, ewma, rules_for_chart

FloatArray = npt.NDArray[np.float64]
MarkedChart = Literal["location", "dispersion"]
LocationChart = Literal["i", "xbar"]
DispersionChart = Literal["mr", "r", "s"]
LOCATION: Final = "location"
DISPERSION: Final = "dispersion"
_CHARTS: Final[dict[str, tuple[LocationChart, DispersionChart]]] = {
    "imr": ("i", "mr"),
    "xbar_r": ("xbar", "r"),
    "xbar_s": ("xbar", "s"),
}


@dataclass(frozen=True)
class Mark:
    """A rule broken at a point: ``rule`` "1".."8" on the ``chart`` "location" or
    "dispersion"."""

    rule: str
    chart: MarkedChart


@dataclass(frozen=True)
class ChartPoint:
    """One plotted point; ``first_time``/``last_time`` only for subgroups."""

    time: datetime
    first_time: datetime | None
    last_time: datetime | None
    value: float
    dispersion: float | None
    limit_version: int | None
    violations: tuple[Mark, ...]


@dataclass(frozen=True)
class Segment:
    """Points ``first_index``..``last_index`` (inclusive) judged against one limit version
    (``None``: Phase I baseline)."""

    limit_version: int | None
    first_index: int
    last_index: int


@dataclass(frozen=True)
class LimitBands:
    """Every line of one limit version: centre, 3-sigma limits, 1- and 2-sigma zone
    boundaries of the location chart, and the dispersion chart's lines."""

    center: float
    ucl: float
    lcl: float
    sigma: float
    plus_1_sigma: float
    minus_1_sigma: float
    plus_2_sigma: float
    minus_2_sigma: float
    dispersion_center: float
    dispersion_ucl: float
    dispersion_lcl: float


@dataclass(frozen=True)
class LimitVersion:
    """A limit version and when it held: for points after ``in_force_after`` up to
    ``valid_until`` (the next version's; ``None`` while it is the current one)."""

    version: int
    created_at: datetime
    in_force_after: datetime
    valid_until: datetime | None
    author: str
    reason: str
    baseline_n: int
    limits: LimitBands


@dataclass(frozen=True)
class EwmaPoint:
    index: int
    value: float
    ucl: float
    lcl: float
    signal: bool


@dataclass(frozen=True)
class CusumPoint:
    """C+ (``upper``) and C- (``lower``) with the decision interval H = h sigma."""

    index: int
    upper: float
    lower: float
    limit: float
    signal: bool


@dataclass(frozen=True)
class ChartView:
    """A chart ready to draw. ``ewma``/``cusum`` are ``None`` when not configured, else
    one entry per Phase II point; ``charted`` counts the good measurements, ``not_good``
    the others, ``not_plotted`` the values of a trailing incomplete subgroup."""

    chart: str
    subgroup_size: int
    location_chart: LocationChart
    dispersion_chart: DispersionChart
    location_rules: tuple[str, ...]
    dispersion_rules: tuple[str, ...]
    points: tuple[ChartPoint, ...]
    segments: tuple[Segment, ...]
    versions: tuple[LimitVersion, ...]
    ewma: tuple[EwmaPoint, ...] | None
    cusum: tuple[CusumPoint, ...] | None
    charted: int
    not_good: int
    not_plotted: int


@dataclass(frozen=True)
class _Judged:
    marks: dict[int, list[Mark]]
    ewma: list[EwmaPoint]
    cusum: list[CusumPoint]


@dataclass(frozen=True)
class _Plotted:
    times: list[datetime]
    spans: list[tuple[datetime, datetime]] | None
    value: FloatArray
    dispersion: FloatArray  # NaN where there is none


def build_chart(
    record: CharacteristicRecord,
    measurements: Sequence[Measurement],
    limit_history: Sequence[StoredLimits],
) -> ChartView:
    """The chart of ``measurements`` (time order) against ``limit_history`` (module doc)."""
    good = [m for m in measurements if m.quality == Quality.GOOD]
    location_chart, dispersion_chart = _CHARTS[record.chart]
    rules = rules_of(record)
    rule_sets = (rules_for_chart(location_chart, rules), rules_for_chart(dispersion_chart, rules))
    plotted = _plot(good, record.subgroup_size, record.chart)
    history = sorted(limit_history, key=lambda s: (s.in_force_after, s.limits.version))
    assigned = _assign(plotted.times, history)
    segments = _segments(assigned)
    judged = _Judged({}, [], [])
    for seg in segments:
        limits = assigned[seg.first_index]
        if limits is not None and _spread(limits.sigma):
            span = slice(seg.first_index, seg.last_index + 1)
            _judge(judged, record, plotted, span, limits, rule_sets)
    return ChartView(
        chart=record.chart,
        subgroup_size=record.subgroup_size,
        location_chart=location_chart,
        dispersion_chart=dispersion_chart,
        location_rules=tuple(sorted(rule_sets[0].enabled)),
        dispersion_rules=tuple(sorted(rule_sets[1].enabled)),
        points=_points(plotted, assigned, judged.marks),
        segments=segments,
        versions=limit_versions(history),
        ewma=tuple(judged.ewma) if record.ewma is not None else None,
        cusum=tuple(judged.cusum) if record.cusum is not None else None,
        charted=len(good),
        not_good=len(measurements) - len(good),
        not_plotted=len(good) % record.subgroup_size,
    )


def limit_versions(history: Sequence[StoredLimits]) -> tuple[LimitVersion, ...]:
    """Each stored limit set with its validity, in order of ``in_force_after``."""
    ordered = sorted(history, key=lambda s: (s.in_force_after, s.limits.version))
    return tuple(
        LimitVersion(
            version=s.limits.version,
            created_at=s.created_at,
            in_force_after=s.in_force_after,
            valid_until=ordered[i + 1].in_force_after if i + 1 < len(ordered) else None,
            author=s.author,
            reason=s.reason,
            baseline_n=s.limits.baseline_n,
            limits=bands(s.limits),
        )
        for i, s in enumerate(ordered)
    )


def bands(limits: LimitSet) -> LimitBands:
    """The lines of a limit set; zones are centre +/- 1 and 2 sigma of the plotted point."""
    c, s = limits.center, limits.sigma
    return LimitBands(
        center=c, ucl=limits.ucl, lcl=limits.lcl, sigma=s,
        plus_1_sigma=c + s, minus_1_sigma=c - s, plus_2_sigma=c + 2 * s, minus_2_sigma=c - 2 * s,
        dispersion_center=limits.mr_center, dispersion_ucl=limits.mr_ucl,
        dispersion_lcl=limits.dispersion_lcl,
    )  # fmt: skip


def _plot(good: Sequence[Measurement], n: int, chart: str) -> _Plotted:
    x = np.fromiter((m.value for m in good), dtype=np.float64, count=len(good))
    if n == 1:
        mr = np.full(x.size, np.nan)
        mr[1:] = np.abs(np.diff(x))
        return _Plotted([m.time for m in good], None, x, mr)
    whole = x.size // n * n
    groups = x[:whole].reshape(-1, n)
    spread = np.ptp(groups, axis=1) if chart == "xbar_r" else groups.std(axis=1, ddof=1)
    spans = [(good[i].time, good[i + n - 1].time) for i in range(0, whole, n)]
    return _Plotted([last for _, last in spans], spans, groups.mean(axis=1), spread)


def _assign(times: Sequence[datetime], history: Sequence[StoredLimits]) -> list[LimitSet | None]:
    starts = [s.in_force_after for s in history]
    out: list[LimitSet | None] = []
    for t in times:
        i = bisect.bisect_left(starts, t) - 1  # the last set in force strictly before t
        out.append(history[i].limits if i >= 0 else None)
    return out


def _segments(assigned: Sequence[LimitSet | None]) -> tuple[Segment, ...]:
    out: list[Segment] = []
    for i, limits in enumerate(assigned):
        version = None if limits is None else limits.version
        if out and out[-1].limit_version == version:
            out[-1] = Segment(version, out[-1].first_index, i)
        else:
            out.append(Segment(version, i, i))
    return tuple(out)


def _spread(sigma: float) -> bool:
    return math.isfinite(sigma) and sigma > 0.0


def _judge(
    judged: _Judged,
    record: CharacteristicRecord,
    plotted: _Plotted,
    seg: slice,
    limits: LimitSet,
    rule_sets: tuple[RuleSet, RuleSet],
) -> None:
    """Mark one segment's violations and add its EWMA and CUSUM points (module doc)."""
    offset, values, dispersion = seg.start, plotted.value[seg], plotted.dispersion[seg]
    location_rules, dispersion_rules = rule_sets
    for v in check_rules(values, limits.center, limits.sigma, location_rules):
        judged.marks.setdefault(offset + v.index, []).append(Mark(v.rule, LOCATION))
    disp_sigma = (limits.mr_ucl - limits.mr_center) / 3.0
    present = np.flatnonzero(~np.isnan(dispersion))
    if dispersion_rules.enabled and _spread(disp_sigma) and present.size:
        for v in check_rules(dispersion[present], limits.mr_center, disp_sigma, dispersion_rules):
            judged.marks.setdefault(offset + int(present[v.index]), []).append(
                Mark(v.rule, DISPERSION)
            )
    if record.ewma is not None:
        judged.ewma.extend(_ewma(offset, values, limits, *record.ewma))
    if record.cusum is not None:
        judged.cusum.extend(_cusum(offset, values, limits, *record.cusum))


def _points(
    plotted: _Plotted, assigned: Sequence[LimitSet | None], marks: dict[int, list[Mark]]
) -> tuple[ChartPoint, ...]:
    return tuple(
        ChartPoint(
            time=t,
            first_time=plotted.spans[i][0] if plotted.spans else None,
            last_time=plotted.spans[i][1] if plotted.spans else None,
            value=float(plotted.value[i]),
            dispersion=None if math.isnan(d := float(plotted.dispersion[i])) else d,
            limit_version=None if (lim := assigned[i]) is None else lim.version,
            violations=tuple(sorted(marks.get(i, []), key=lambda m: (m.chart != LOCATION, m.rule))),
        )
        for i, t in enumerate(plotted.times)
    )


def _ewma(
    offset: int, values: FloatArray, limits: LimitSet, lam: float, L: float
) -> list[EwmaPoint]:
    r = ewma(values, lam, L, limits.center, limits.sigma)
    hit = set(r.signals.tolist())
    series = zip(r.statistic.tolist(), r.ucl.tolist(), r.lcl.tolist(), strict=True)
    return [EwmaPoint(offset + i, z, u, lo, i in hit) for i, (z, u, lo) in enumerate(series)]


def _cusum(
    offset: int, values: FloatArray, limits: LimitSet, k: float, h: float
) -> list[CusumPoint]:
    r = cusum(values, k, h, limits.center, limits.sigma)
    hit, limit = set(r.signals.tolist()), h * limits.sigma
    return [
        CusumPoint(offset + i, up, low, limit, i in hit)
        for i, (up, low) in enumerate(zip(r.upper.tolist(), r.lower.tolist(), strict=True))
    ]
