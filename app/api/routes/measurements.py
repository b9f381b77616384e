"""Measurements: the MES push, and raw or bucketed reads of one characteristic."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import AwareDatetime

from app.api.cursors import decode_cursor, encode_cursor
from app.api.deps import IngestDep, ServiceDep, ViewerDep
from app.api.query_schemas import (
    BucketPublic,
    BucketSeriesPublic,
    MeasurementPagePublic,
    MeasurementPublic,
)
from app.api.schemas import PushResult, RowRejectionPublic
from app.errors import BadRequest, NotFound, problem
from app.wiring import Service
from ingest.mes import MesBatch, normalise
from ingest.model import Measurement
from ingest.store import BUCKET_ORIGIN, Bucket
from ingest.time_buckets import align_up

router = APIRouter(prefix="/api/v1/measurements", tags=["measurements"])


@router.post(
    "",
    response_model=PushResult,
    status_code=status.HTTP_202_ACCEPTED,
    responses={422: {"description": "malformed body, or every row rejected"}},
)
async def push_measurements(
    batch: MesBatch, service: ServiceDep, response: Response, caller: IngestDep
) -> object:
    """Push a batch of measurements, verdicts and cost events (answered once stored and charted).

    Good rows are accepted even when others are rejected; each rejected row is listed
    with its field and reason and kept as a dead letter. A batch with an
    ``idempotency_key`` can be resent safely: rows already stored are not stored again.
    """
    monitor, plant = service.monitor, service.plant
    # the plant file's lines and processes (an inspection-only station has no
    # characteristic) and those of characteristics created through the API
    lines = monitor.line_ids() | {line.id for line in plant.lines}
    processes = monitor.process_ids() | {
        f"{line.id}.{process.id}" for line in plant.lines for process in line.processes
    }
    submission, rejected = normalise(
        batch, monitor, datetime.now(UTC), processes, lines | {plant.plant.id}
    )
    await service.pipeline.submit_and_wait(submission)
    result = PushResult(
        accepted=submission.size,
        rejected=[RowRejectionPublic(row=r.row, field=r.field, reason=r.reason) for r in rejected],
    )
    if rejected and submission.size == 0:
        detail = "; ".join(f"{r.row}.{r.field}: {r.reason}" for r in rejected[:5])
        return problem(
            422, "Every row was rejected", detail, errors=[r.model_dump() for r in result.rejected]
        )
    return result


DEFAULT_SPAN = timedelta(hours=24)
MAX_BUCKETS = 10_000
MAX_WIDTH = timedelta(days=366)
_WIDTH = re.compile(r"^(\d{1,9})([smhd]?)$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}

Characteristic = Annotated[str, Query(description="characteristic id, e.g. line1.turning.diameter")]
Start = Annotated[
    AwareDatetime | None,
    Query(description="ISO 8601 with a UTC offset; default: 24 h before end"),
]
End = Annotated[
    AwareDatetime | None, Query(description="ISO 8601 with a UTC offset, exclusive; default: now")
]


def parse_width(text: str) -> timedelta:
    """A bucket width: whole seconds (``60``, ``30s``), minutes, hours or days (``1m``,
    ``1h``, ``1d``), from 1 s to 366 d; ``ValueError`` naming ``width`` otherwise."""
    m = _WIDTH.match(text.strip())
    width = timedelta(seconds=int(m.group(1)) * _UNIT_SECONDS[m.group(2)]) if m else None
    if width is None or not timedelta(seconds=1) <= width <= MAX_WIDTH:
        raise ValueError(
            f"width: expected whole seconds from 1 s to 366 d, e.g. 30s, 1m, 1h, 1d or 60; "
            f"got {text!r}"
        )
    return width


def bucket_sd(bucket: Bucket) -> float | None:
    """Sample standard deviation (n - 1) from n, Σx and Σx²; None for n < 2.

    Rounding can make Σx² - (Σx)²/n slightly negative for near-constant data: that is 0,
    as is the sd of a bucket whose minimum equals its maximum.
    """
    if bucket.n < 2:
        return None
    if bucket.minimum == bucket.maximum:
        return 0.0
    variance = (bucket.total_sq - bucket.total * bucket.total / bucket.n) / (bucket.n - 1)
    return math.sqrt(max(variance, 0.0))


def _align_down(t: datetime, width: timedelta) -> datetime:
    return t - (t - BUCKET_ORIGIN) % width


def _time_range(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    try:
        end = (end or datetime.now(UTC)).astimezone(UTC)
        start = start.astimezone(UTC) if start else end - DEFAULT_SPAN
    except OverflowError:  # e.g. 0001-01-01 with a positive offset, or 24 h before it
        raise BadRequest("start: the range reaches outside the years 1 to 9999") from None
    if end <= start:
        raise BadRequest(f"end: must be after start ({start.isoformat()}), got {end.isoformat()}")
    return start, end


def _checked(service: Service, characteristic: str) -> str:
    if service.monitor.record(characteristic) is None:
        raise NotFound(f"no characteristic with id {characteristic!r}")
    return characteristic


def _public(m: Measurement) -> MeasurementPublic:
    return MeasurementPublic(
        time=m.time,
        value=m.value,
        quality=m.quality.value,
        part=m.part,
        lot=m.lot,
        source=m.source,
        ingest_id=m.ingest_id,
    )


@router.get(
    "",
    response_model=MeasurementPagePublic,
    responses={404: {"description": "unknown characteristic"}},
)
async def list_measurements(
    request: Request,
    response: Response,
    service: ServiceDep,
    _: ViewerDep,
    characteristic: Characteristic,
    start: Start = None,
    end: End = None,
    limit: Annotated[int, Query(ge=1, le=10_000, description="rows per page")] = 1000,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> MeasurementPagePublic:
    """Raw measurements of one characteristic in a time range, oldest first, one page.

    Every quality is returned. Follow ``next_cursor`` (or the ``Link: rel="next"``
    header) with the same parameters to read the next page; it is null on the last one.
    """
    _checked(service, characteristic)
    lo, hi = _time_range(start, end)
    try:
        after = decode_cursor(cursor) if cursor is not None else None
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    page = await service.store.history(characteristic, lo, hi, limit, after)
    next_cursor = encode_cursor(page.next_after) if page.next_after else None
    if next_cursor is not None:
        response.headers["Link"] = (
            f'<{request.url.include_query_params(cursor=next_cursor)}>; rel="next"'
        )
    return MeasurementPagePublic(
        characteristic=characteristic,
        start=lo,
        end=hi,
        items=[_public(m) for m in page.items],
        next_cursor=next_cursor,
    )


@router.get(
    "/buckets",
    response_model=BucketSeriesPublic,
    responses={404: {"description": "unknown characteristic"}},
)
async def list_measurement_buckets(
    service: ServiceDep,
    _: ViewerDep,
    characteristic: Characteristic,
    start: Start = None,
    end: End = None,
    width: Annotated[str, Query(description="bucket width: 30s, 1m, 1h, 1d or seconds")] = "1m",
) -> BucketSeriesPublic:
    """Good-quality measurements per time bucket: n, mean, min, max and standard deviation.

    Buckets are aligned to Monday 2000-01-03 00:00 UTC; the range is widened to whole
    buckets. At most 10,000 buckets are returned: widen ``width`` for longer ranges.
    """
    _checked(service, characteristic)
    lo, hi = _time_range(start, end)
    try:
        step = parse_width(width)
        lo, hi = _align_down(lo, step), align_up(hi, step)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    except OverflowError:
        raise BadRequest("start: too far from the present for buckets of this width") from None
    if (count := (hi - lo) // step) > MAX_BUCKETS:
        needed = math.ceil((hi - lo).total_seconds() / MAX_BUCKETS)
        raise BadRequest(
            f"width: {count} buckets of {width} in the range, at most {MAX_BUCKETS}; "
            f"widen the bucket to at least {needed} s or shorten the range"
        )
    buckets = await service.store.buckets(characteristic, lo, hi, step)
    return BucketSeriesPublic(
        characteristic=characteristic,
        start=lo,
        end=hi,
        width_seconds=int(step.total_seconds()),
        buckets=[
            BucketPublic(
                start=b.start, n=b.n, mean=b.mean, min=b.minimum, max=b.maximum, sd=bucket_sd(b)
            )
            for b in buckets
        ],
    )
