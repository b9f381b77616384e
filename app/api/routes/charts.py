"""Control-chart points and capability reports of one characteristic."""

from __future__ import annotations

import math
from collections import deque
from datetime import UTC, datetime, timedelta

import anyio.to_thread
from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from app.api.chart_schemas import (
    CapabilityReportPublic,
    ChartPointPublic,
    ChartPublic,
    CusumPointPublic,
    CusumPublic,
    EwmaPointPublic,
    EwmaPublic,
    HistogramPublic,
    IndicesPublic,
    LimitVersionPublic,
    NormalCurvePublic,
    SegmentPublic,
    SpecPublic,
)
from app.api.cursors import decode_cursor, encode_cursor
from app.api.deps import ServiceDep, ViewerDep
from app.api.schemas import PeriodPublic
from app.capability_report import CapabilityReport, InsufficientData, capability_report
from app.chart_view import ChartView, build_chart
from app.errors import BadRequest, NotFound
from app.periods import Period, parse_period
from app.wiring import Service
from ingest import CharacteristicRecord, Measurement, Quality, Store, StoredLimits
from ingest.store import HistoryCursor

router = APIRouter(prefix="/api/v1/characteristics", tags=["charts"])

MAX_POINTS = 5_000
"""Most points one chart shows; subgrouped charts also stop at ``MAX_CHART_VALUES``."""
MAX_CHART_VALUES = 50_000
MAX_CAPABILITY_VALUES = 100_000
"""Most good values one capability report reads: the most recent of the period."""
MAX_ROWS = 200_000
"""Most rows (every quality) read for one answer."""
PAGE = 5_000
MAX_QUERIES = 50  # pages read for one chart answer at most (floods of bad values)
COUNT_BUCKETS = 1_000
"""Buckets the period is cut into to find where the most recent values start."""

PERIOD = Query(
    default=None,
    description="7d, 24h (ending now) or 2026-01-01/2026-03-31 (whole UTC days); "
    "instead of start/end",
)
CURSOR = Query(default=None, description="next_cursor of the previous answer (same range)")
START = Query(default=None, description="ISO 8601 with a UTC offset (Z, or + sent as %2B)")
END = Query(default=None, description="ISO 8601 with a UTC offset, exclusive; default: now")
ERRORS: dict[int | str, dict[str, str]] = {
    404: {"description": "unknown characteristic"},
    422: {"description": "a parameter the service cannot use, or too little data"},
}


@router.get("/{characteristic_id}/chart", response_model=ChartPublic, responses=ERRORS)
async def read_chart(
    characteristic_id: str,
    service: ServiceDep,
    _: ViewerDep,
    period: str | None = PERIOD,
    start: AwareDatetime | None = START,
    end: AwareDatetime | None = END,
    cursor: str | None = CURSOR,
) -> ChartPublic:
    """The control chart of one characteristic over a time range (default 24h), ready to draw.

    Points are the good measurements (X-bar charts: whole subgroups from the first value
    of the range), each judged against the latest limit version created at or before its
    time; earlier points are the Phase I baseline, without limits or violations. Run
    rules, EWMA and CUSUM run over the requested range only and restart with each limit
    version: a pattern that began before ``start`` may not be marked. At most 5,000
    points: when ``truncated``, ask again with the same range and ``cursor=next_cursor``,
    or narrow the range.
    """
    record = _record_or_404(service, characteristic_id)
    span = _span(period, start, end, "24h")
    try:
        after = decode_cursor(cursor) if cursor is not None else None
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    n = record.subgroup_size
    measurements, next_after = await _read_forward(
        service.store, record.id, span, min(MAX_POINTS, MAX_CHART_VALUES // n) * n, after
    )
    history = await service.store.limit_history(record.id)
    return await anyio.to_thread.run_sync(
        _chart_answer, record, span, measurements, history, next_after
    )


@router.get(
    "/{characteristic_id}/capability", response_model=CapabilityReportPublic, responses=ERRORS
)
async def read_capability_report(
    characteristic_id: str,
    service: ServiceDep,
    _: ViewerDep,
    period: str | None = PERIOD,
    start: AwareDatetime | None = START,
    end: AwareDatetime | None = END,
) -> CapabilityReportPublic:
    """Capability indices, histogram and fitted normal over a period's good values (default 30d).

    At most the 100,000 most recent good values of the period are used (``capped``).
    Too little data, no variation or no specification limit is a 422 naming the reason.
    """
    record = _record_or_404(service, characteristic_id)
    span = _span(period, start, end, "30d")
    cap = MAX_CAPABILITY_VALUES // record.subgroup_size * record.subgroup_size
    values, capped = await _read_recent(service.store, record.id, span, cap)
    if not values:
        raise BadRequest(
            f"no good measurements of {record.id!r} from {span.start.isoformat()} to "
            f"{span.end.isoformat()}: capability needs data; choose another period"
        )
    try:
        report = await anyio.to_thread.run_sync(
            capability_report, record, [m.value for m in values]
        )
    except InsufficientData as exc:
        raise BadRequest(f"capability of {record.id!r} over {span.label}: {exc}") from None
    return _report_public(record, span, report, values, capped, cap)


def _chart_answer(
    record: CharacteristicRecord,
    span: Period,
    measurements: list[Measurement],
    history: list[StoredLimits],
    next_after: HistoryCursor | None,
) -> ChartPublic:
    """The chart and its response model, built together on a worker thread."""
    return _chart_public(record, span, build_chart(record, measurements, history), next_after)


def _record_or_404(service: Service, characteristic_id: str) -> CharacteristicRecord:
    record = service.monitor.record(characteristic_id)
    if record is None:
        raise NotFound(f"no characteristic with id {characteristic_id!r}")
    return record


def _span(period: str | None, start: datetime | None, end: datetime | None, default: str) -> Period:
    """The period asked for: ``period``, or ``start``/``end`` (either may be left out)."""
    now = datetime.now(UTC)
    if period is not None and (start is not None or end is not None):
        raise BadRequest("period: give either period or start/end, not both")
    try:
        if start is None and end is None:
            return parse_period(period or default, now)
        hi = end.astimezone(UTC) if end is not None else now
        lo = start.astimezone(UTC) if start is not None else parse_period(default, hi).start
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    except OverflowError:
        name = "period" if period is not None else "start or end"
        raise BadRequest(f"{name}: too near the ends of the calendar (years 1, 9999)") from None
    if hi <= lo:
        raise BadRequest(f"end: must be after start ({lo.isoformat()}), got {hi.isoformat()}")
    return Period(lo, hi, f"{lo.isoformat()}/{hi.isoformat()}")


async def _read_forward(
    store: Store, characteristic: str, span: Period, max_good: int, after: HistoryCursor | None
) -> tuple[list[Measurement], HistoryCursor | None]:
    """Measurements from ``after`` (or the period's start) until ``max_good`` good ones are
    read, and the position to continue from (``None``: the rest of the period was read).

    Pages end exactly where reading stops, so the next page neither repeats nor skips a
    row, even among rows sharing one timestamp.
    """
    items: list[Measurement] = []
    good = queries = 0
    while True:
        want = min(PAGE, max_good - good)
        page = await store.history(characteristic, span.start, span.end, want, after)
        queries += 1
        items.extend(page.items)
        good += sum(1 for m in page.items if m.quality == Quality.GOOD)
        if page.next_after is None:
            return items, None
        after = page.next_after
        # enough points, or (a flood of bad values) enough reading for one answer
        if good >= max_good or len(items) >= MAX_ROWS or queries >= MAX_QUERIES:
            return items, after


async def _read_recent(
    store: Store, characteristic: str, span: Period, cap: int
) -> tuple[list[Measurement], bool]:
    """The last ``cap`` good measurements of the period, and whether earlier ones were left."""
    first, skipped = await _recent_start(store, characteristic, span, cap)
    kept: deque[Measurement] = deque(maxlen=cap)
    rows, seen, after = 0, 0, None
    while True:
        page = await store.history(characteristic, first, span.end, PAGE, after)
        rows += len(page.items)
        good = [m for m in page.items if m.quality == Quality.GOOD]
        kept.extend(good)
        seen += len(good)
        if page.next_after is None or rows >= MAX_ROWS:
            return list(kept), skipped or seen > cap or page.next_after is not None
        after = page.next_after


async def _recent_start(
    store: Store, characteristic: str, span: Period, cap: int
) -> tuple[datetime, bool]:
    """Where reading must start to get the last ``cap`` good values, and whether good values
    lie before it; from bucket counts, so at most about two buckets more are read.

    The first listed bucket is never cut off (values before it may be uncounted), and the
    last one counts nothing if it extends past the period's end.
    """
    seconds = max(1, math.ceil((span.end - span.start).total_seconds() / COUNT_BUCKETS))
    width = timedelta(seconds=seconds)
    try:
        buckets = await store.buckets(characteristic, span.start, span.end, width)
    except OverflowError:  # a range near the calendar's ends: read it all, keep the last
        return span.start, False
    running = 0
    for b in reversed(buckets[1:]):
        running += b.n if b.start + width <= span.end else 0
        if running >= cap:
            return b.start, True
    return span.start, False


def _period(span: Period) -> PeriodPublic:
    return PeriodPublic(start=span.start, end=span.end, label=span.label)


def _chart_public(
    record: CharacteristicRecord, span: Period, view: ChartView, next_after: HistoryCursor | None
) -> ChartPublic:
    return ChartPublic(
        characteristic=record.id,
        unit=record.unit,
        chart=view.chart,
        subgroup_size=view.subgroup_size,
        location_chart=view.location_chart,
        dispersion_chart=view.dispersion_chart,
        rules=list(view.location_rules),
        dispersion_rules=list(view.dispersion_rules),
        period=_period(span),
        points=[ChartPointPublic.model_validate(p, from_attributes=True) for p in view.points],
        segments=[SegmentPublic.model_validate(s, from_attributes=True) for s in view.segments],
        limit_versions=[
            LimitVersionPublic.model_validate(v, from_attributes=True) for v in view.versions
        ],
        ewma=None
        if view.ewma is None or record.ewma is None
        else EwmaPublic(
            lam=record.ewma[0],
            L=record.ewma[1],
            points=[EwmaPointPublic.model_validate(p, from_attributes=True) for p in view.ewma],
        ),
        cusum=None
        if view.cusum is None or record.cusum is None
        else CusumPublic(
            k=record.cusum[0],
            h=record.cusum[1],
            points=[CusumPointPublic.model_validate(p, from_attributes=True) for p in view.cusum],
        ),
        charted=view.charted,
        not_good=view.not_good,
        not_plotted=view.not_plotted,
        truncated=next_after is not None,
        next_cursor=encode_cursor(next_after) if next_after is not None else None,
        notes=_chart_notes(span, view, next_after is not None),
    )


def _chart_notes(span: Period, view: ChartView, truncated: bool) -> list[str]:
    notes = []
    if truncated:
        notes.append(
            f"truncated at {len(view.points)} points: narrow the range, or ask again with "
            "the same range and cursor=next_cursor for the rest"
        )
    if view.not_plotted:
        notes.append(f"{view.not_plotted} values of an incomplete last subgroup are not plotted")
    first = view.segments[0].limit_version if view.segments else None
    started = next((v.in_force_after for v in view.versions if v.version == first), None)
    if started is not None and started < span.start:
        notes.append(
            f"limit version {first} was in force before the range started: rules, EWMA and "
            "CUSUM restart at the range start, so a pattern that began earlier may be unmarked"
        )
    return notes


def _report_public(
    record: CharacteristicRecord,
    span: Period,
    report: CapabilityReport,
    values: list[Measurement],
    capped: bool,
    cap: int,
) -> CapabilityReportPublic:
    used = values[: len(values) - report.values_unused]
    notes = []
    if capped:
        notes.append(
            f"more than {cap} good values in the period: the most recent {len(values)} "
            f"were read, from {values[0].time.isoformat()}"
        )
    if report.values_unused:
        notes.append(f"{report.values_unused} values of an incomplete last subgroup left out")
    if report.capability.percentile is not None:
        notes.append("the data are not normal (Anderson-Darling p < 0.05): see percentile")
    return CapabilityReportPublic(
        characteristic=record.id,
        unit=record.unit,
        chart=record.chart,
        period=_period(span),
        spec=SpecPublic(lsl=record.lsl, usl=record.usl, target=record.target),
        n=report.capability.n,
        values_unused=report.values_unused,
        capped=capped,
        first_time=used[0].time,
        last_time=used[-1].time,
        indices=IndicesPublic.model_validate(report.capability, from_attributes=True),
        histogram=HistogramPublic.model_validate(report.histogram, from_attributes=True),
        normal=NormalCurvePublic.model_validate(report.normal, from_attributes=True),
        notes=notes,
    )
