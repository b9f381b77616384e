"""Versioned control limits and their audited recalculation."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime

import anyio.to_thread
from fastapi import APIRouter, Depends, status
from pydantic import AwareDatetime, BaseModel, Field

from app.api.deps import EngineerDep, ServiceDep, require
from app.api.routes.characteristics import record_or_404
from app.auth import Role
from app.errors import BadRequest, Conflict
from app.wiring import Service
from ingest import CharacteristicRecord, Quality, StoredLimits
from ingest.store import HistoryCursor

router = APIRouter(
    prefix="/api/v1/characteristics",
    tags=["limits"],
    dependencies=[Depends(require(Role.VIEWER))],
)
MAX_BASELINE_POINTS = 10_000


class LimitVersionPublic(BaseModel):
    version: int
    center: float
    ucl: float
    lcl: float
    sigma: float = Field(description="sigma of the plotted point (sigma-hat / sqrt(n))")
    mr_center: float = Field(description="dispersion chart (MR, R or S) centre line")
    mr_ucl: float
    dispersion_lcl: float
    baseline_n: int = Field(description="points or subgroups the limits came from")
    created_at: datetime
    author: str = Field(description="'system' for the automatic Phase I baseline, else the key")
    reason: str
    active: bool


class LimitRecalculation(BaseModel):
    """A Phase I baseline chosen by an engineer, with the reason for the audit trail."""

    model_config = {
        "extra": "forbid",
        "json_schema_extra": {
            "examples": [
                {
                    "start": "2026-11-02T06:00:00Z",
                    "end": "2026-11-02T14:00:00Z",
                    "reason": "new spindle fitted; baseline after run-in",
                    "exclude": ["2026-11-02T09:41:07Z"],
                }
            ]
        },
    }

    start: AwareDatetime
    end: AwareDatetime = Field(description="exclusive")
    reason: str = Field(min_length=3, max_length=500, description="why; kept in the audit")
    exclude: list[AwareDatetime] = Field(
        default_factory=list,
        max_length=1000,
        description="times of points with an assignable cause to leave out (for subgrouped "
        "charts, the subgroup holding the point is left out)",
    )


def _public(item: StoredLimits, active_version: int | None) -> LimitVersionPublic:
    return LimitVersionPublic(
        **asdict(item.limits),
        created_at=item.created_at,
        author=item.author,
        reason=item.reason,
        active=item.limits.version == active_version,
    )


@router.get("/{characteristic_id}/limits", response_model=list[LimitVersionPublic])
async def list_limits(characteristic_id: str, service: ServiceDep) -> list[LimitVersionPublic]:
    """Every limit version of a characteristic, oldest first, with who set it and why."""
    record_or_404(service, characteristic_id)
    active = service.monitor.limits(characteristic_id)
    history = await service.store.limit_history(characteristic_id)
    return [_public(item, active.version if active else None) for item in history]


@router.post(
    "/{characteristic_id}/limits/recalculate",
    response_model=LimitVersionPublic,
    status_code=status.HTTP_201_CREATED,
    responses={422: {"description": "the baseline cannot give limits (named in the detail)"}},
)
async def recalculate_limits(
    characteristic_id: str, body: LimitRecalculation, service: ServiceDep, caller: EngineerDep
) -> LimitVersionPublic:
    """Freeze new limits from a chosen baseline period (engineer); audited: who, when, why.

    The good measurements of ``[start, end)`` in time order form the baseline (whole
    subgroups of the characteristic's size; a trailing partial subgroup is left out).
    The new version applies to every point charted from now on.
    """
    record = record_or_404(service, characteristic_id)
    if not body.start < body.end:
        raise BadRequest("end: must be after start")
    times, values = await _baseline(service, record, body.start, body.end)
    excluded = _excluded_positions(times, body.exclude, record.subgroup_size)
    groups = len(values) // record.subgroup_size
    unit = "points" if record.subgroup_size == 1 else "subgroups"
    reason = (
        f"{body.reason} (baseline {body.start.isoformat()} to {body.end.isoformat()}, "
        f"{groups - len(excluded)} of {groups} {unit})"
    )
    # one edit at a time, between pipeline batches: the version chosen is the next one
    # when it is installed, and the engine never runs ahead of the stored audit trail
    async with service.edit_lock, service.pipeline.exclusive():
        if service.monitor.record(characteristic_id) is not record:
            raise Conflict(f"characteristic {characteristic_id!r} changed meanwhile; retry")
        row = service.monitor.row(record.id)
        engine = service.monitor.engine
        try:
            limits = await anyio.to_thread.run_sync(engine.compute_limits, row, values, excluded)
        except (ValueError, IndexError) as exc:
            raise BadRequest(f"baseline: {exc}") from exc
        if not limits.sigma > 0:
            raise BadRequest("baseline: the values have no variation; choose a longer period")
        now = datetime.now(UTC)  # applies to points charted from now on
        stored = StoredLimits(record.id, limits, now, reason, caller.name, effective_at=now)
        await service.store.save_limits(stored)
        service.monitor.install_limits(record.id, limits)
    return _public(stored, limits.version)


async def _baseline(
    service: Service, record: CharacteristicRecord, start: datetime, end: datetime
) -> tuple[list[datetime], list[float]]:
    """Good values of the period in time order, cut to whole subgroups."""
    times: list[datetime] = []
    values: list[float] = []
    after: HistoryCursor | None = None
    while True:
        page = await service.store.history(record.id, start, end, limit=5000, after=after)
        for m in page.items:
            if m.quality == Quality.GOOD:
                times.append(m.time)
                values.append(m.value)
        if len(values) > MAX_BASELINE_POINTS:
            raise BadRequest(
                f"start/end: the period holds over {MAX_BASELINE_POINTS} points; a Phase I "
                "baseline needs 20 to 25 subgroups, choose a shorter period"
            )
        if page.next_after is None:
            break
        after = page.next_after
    whole = len(values) - len(values) % record.subgroup_size
    if whole // record.subgroup_size < 2:
        raise BadRequest(
            f"start/end: the period holds {len(values)} good points; at least 2 "
            f"{'points' if record.subgroup_size == 1 else 'whole subgroups'} are needed"
        )
    return times[:whole], values[:whole]


def _excluded_positions(
    times: list[datetime], exclude: list[datetime], subgroup_size: int
) -> list[int]:
    """Positions (points, or subgroups for n > 1) of the excluded times; each must exist."""
    index = {t: i for i, t in enumerate(times)}
    positions = set()
    for i, t in enumerate(exclude):
        if t not in index:
            raise BadRequest(f"exclude[{i}]: no good point at {t.isoformat()} in the baseline")
        positions.add(index[t] // subgroup_size)
    return sorted(positions)
