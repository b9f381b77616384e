"""Alarms (incidents): list, read with evidence and history, acknowledge, resolve, Pareto."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from alerts import AlarmStateError, UnknownAlarm
from app.api.alarm_schemas import (
    AcknowledgementCreate,
    AcknowledgementPublic,
    AlarmDetailPublic,
    AlarmEventPublic,
    AlarmItemPublic,
    CataloguePublic,
    EvidencePublic,
    ParetoEntryPublic,
    ParetoPublic,
    ResolutionCreate,
)
from app.api.deps import OperatorDep, ServiceDep, ViewerDep
from app.errors import BadRequest, Conflict, NotFound
from app.ocap import catalogue_for, pareto_key
from app.periods import parse_period
from app.summaries import process_id
from app.wiring import Service
from ingest.store import AlarmRecord

router = APIRouter(prefix="/api/v1/alarms", tags=["alarms"])

AlarmState = Literal["open", "acknowledged", "resolved", "unresolved", "all"]
Severity = Literal["warning", "critical"]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "no such alarm"}}


def _public(service: Service, alarm: AlarmRecord) -> AlarmItemPublic:
    assert alarm.id is not None  # stored alarms have ids
    record = service.monitor.record(alarm.characteristic)
    line = alarm.line or (record.line if record else None)
    process = alarm.process or (process_id(record.line, record.process) if record else None)
    ack, done = alarm.ack, alarm.details.resolution
    return AlarmItemPublic(
        id=alarm.id,
        characteristic=alarm.characteristic,
        characteristics=list(alarm.characteristics),
        line=line,
        process=process,
        rule=alarm.rule,
        chart=alarm.chart,
        severity=alarm.severity,
        state=alarm.state,
        opened_at=alarm.opened_at,
        last_at=alarm.last_at,
        count=alarm.count,
        limit_version=alarm.limit_version,
        last_value=alarm.last_value,
        message=alarm.message,
        escalated_at=alarm.details.escalated_at,
        acknowledged_by=ack.by if ack else None,
        acknowledged_at=ack.at if ack else None,
        ack_comment=ack.comment if ack else None,
        ack_cause=ack.cause if ack else None,
        ack_action=ack.action if ack else None,
        resolved_by=done.by if done else None,
        resolved_at=done.at if done else None,
        resolution_note=done.note if done else None,
    )


async def _stored(service: Service, alarm_id: int) -> AlarmRecord:
    alarm = await service.store.get_alarm(alarm_id)
    if alarm is None:
        raise NotFound(f"no alarm with id {alarm_id}")
    return alarm


def _wanted(state: AlarmState, alarm: AlarmRecord) -> bool:
    if state == "all":
        return True
    if state == "unresolved":
        return alarm.state != "resolved"
    return alarm.state == state


@router.get("", response_model=list[AlarmItemPublic])
async def list_alarms(
    service: ServiceDep,
    _: ViewerDep,
    state: Annotated[
        AlarmState, Query(description="open, acknowledged, resolved, unresolved or all")
    ] = "open",
    characteristic: Annotated[
        str | None, Query(description="only the incidents concerning this characteristic")
    ] = None,
    line: Annotated[str | None, Query(description="only the incidents of this line")] = None,
    process: Annotated[
        str | None, Query(description="only this process's (qualified: line1.turning)")
    ] = None,
    severity: Annotated[Severity | None, Query(description="warning or critical")] = None,
    since: Annotated[AwareDatetime | None, Query(description="opened at or after")] = None,
    until: Annotated[AwareDatetime | None, Query(description="opened before")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000, description="at most this many")] = 1000,
) -> list[AlarmItemPublic]:
    """List incidents, newest first: by default the open (unacknowledged) ones."""
    unresolved = state in ("open", "acknowledged", "unresolved")
    alarms = await service.store.list_alarms(characteristic, open_only=unresolved)
    chosen = [
        a for a in alarms
        if _wanted(state, a)
        and (severity is None or a.severity == severity)
        and (since is None or a.opened_at >= since)
        and (until is None or a.opened_at < until)
    ]  # fmt: skip
    items = [_public(service, a) for a in chosen]
    items = [
        a for a in items
        if (line is None or a.line == line) and (process is None or a.process == process)
    ]  # fmt: skip
    return sorted(items, key=lambda a: a.id, reverse=True)[:limit]


@router.get("/causes", response_model=ParetoPublic)
async def cause_pareto(
    service: ServiceDep,
    _: ViewerDep,
    line: Annotated[str | None, Query(description="only this line's incidents")] = None,
    process: Annotated[str | None, Query(description="only this process's")] = None,
    period: Annotated[
        str | None, Query(description="opened in: 7d, 24h or 2026-01-01/2026-03-31 (default 30d)")
    ] = None,
) -> ParetoPublic:
    """The causes and actions operators gave when acknowledging, most frequent first."""
    try:
        span = parse_period(period or "30d", datetime.now(UTC))
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    alarms = [
        a for a in await service.store.list_alarms(open_only=False)
        if span.start <= a.opened_at < span.end
        and (line is None or a.line == line) and (process is None or a.process == process)
    ]  # fmt: skip
    acked = [a for a in alarms if a.ack is not None]
    causes = [a.ack.cause for a in acked if a.ack and a.ack.cause]
    actions = [a.ack.action for a in acked if a.ack and a.ack.action]
    return ParetoPublic(
        period_start=span.start,
        period_end=span.end,
        incidents=len(alarms),
        acknowledged=len(acked),
        without_cause=len(acked) - len(causes),
        causes=_pareto(causes),
        actions=_pareto(actions),
    )


def _pareto(texts: list[str]) -> list[ParetoEntryPublic]:
    groups: dict[str, list[str]] = {}
    for text in texts:
        groups.setdefault(pareto_key(text), []).append(text)
    ranked = sorted(groups.values(), key=lambda g: (-len(g), pareto_key(g[0])))
    total, running, out = len(texts), 0, []
    for group in ranked:
        running += len(group)
        out.append(ParetoEntryPublic(text=group[0], count=len(group),
                                     share=len(group) / total,
                                     cumulative_share=running / total))  # fmt: skip
    return out


@router.get("/{alarm_id}", response_model=AlarmDetailPublic, responses=NOT_FOUND)
async def read_alarm(alarm_id: int, service: ServiceDep, _: ViewerDep) -> AlarmDetailPublic:
    """One incident with its evidence, audit history (oldest first) and cause catalogue."""
    alarm = await _stored(service, alarm_id)
    events = await service.store.alarm_events(alarm_id)
    offered = catalogue_for(service.plant, alarm.characteristics)
    return AlarmDetailPublic(
        **_public(service, alarm).model_dump(),
        evidence=[EvidencePublic(**vars(e)) for e in alarm.details.evidence],
        events=[
            AlarmEventPublic(
                recorded_at=e.recorded_at,
                state=e.state,
                count=e.count,
                last_value=e.last_value,
                actor=e.actor,
                note=e.note,
            )
            for e in events
        ],
        catalogue=CataloguePublic(
            causes=list(offered.causes),
            actions=list(offered.actions),
            configured=offered.configured,
        ),
    )


@router.post(
    "/{alarm_id}/acknowledge",
    response_model=AcknowledgementPublic,
    responses={**NOT_FOUND, 409: {"description": "already acknowledged, or resolved"}},
)
async def acknowledge_alarm(
    alarm_id: int, body: AcknowledgementCreate, service: ServiceDep, caller: OperatorDep
) -> AcknowledgementPublic:
    """Acknowledge an open incident with a comment, and the assignable cause and corrective
    action (from the catalogue of ``GET /alarms/{id}``, or free text); operator role."""
    try:
        alarm = await service.alarms.acknowledge(
            alarm_id, caller.name, body.comment, body.cause, body.action
        )
    except UnknownAlarm as exc:
        raise NotFound(str(exc)) from None
    except AlarmStateError as exc:
        raise Conflict(str(exc)) from None
    ack = alarm.ack
    assert ack is not None  # an acknowledged alarm carries its acknowledgement
    return AcknowledgementPublic(
        alarm=_public(service, alarm),
        acknowledged_by=ack.by,
        acknowledged_at=ack.at,
        comment=ack.comment,
        cause=ack.cause,
        action=ack.action,
    )


# the shorter name of the API; the same operation
router.add_api_route(
    "/{alarm_id}/ack",
    acknowledge_alarm,
    methods=["POST"],
    response_model=AcknowledgementPublic,
    responses={**NOT_FOUND, 409: {"description": "already acknowledged, or resolved"}},
    summary="Acknowledge Alarm (short path)",
    operation_id="acknowledge_alarm_short",
)


@router.post(
    "/{alarm_id}/resolve",
    response_model=AlarmItemPublic,
    responses={**NOT_FOUND, 409: {"description": "already resolved"}},
)
async def resolve_alarm(
    alarm_id: int, body: ResolutionCreate, service: ServiceDep, caller: OperatorDep
) -> AlarmItemPublic:
    """Resolve an open or acknowledged incident by hand, saying why (operator role).
    Incidents also resolve themselves once their characteristics are back in control."""
    try:
        alarm = await service.alarms.resolve(alarm_id, caller.name, body.note)
    except UnknownAlarm as exc:
        raise NotFound(str(exc)) from None
    except AlarmStateError as exc:
        raise Conflict(str(exc)) from None
    return _public(service, alarm)
