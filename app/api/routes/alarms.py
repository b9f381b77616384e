"""Alarms: list, read, acknowledge."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from alerts.alarms import AlarmStateError, UnknownAlarm
from app.api.deps import OperatorDep, ServiceDep, ViewerDep
from app.api.query_schemas import (
    AcknowledgementCreate,
    AcknowledgementPublic,
    AlarmDetailPublic,
    AlarmEventPublic,
    AlarmItemPublic,
)
from app.errors import Conflict, NotFound
from app.summaries import process_id
from app.wiring import Service
from ingest.store import AlarmRecord

router = APIRouter(prefix="/api/v1/alarms", tags=["alarms"])

AlarmState = Literal["open", "acknowledged", "resolved", "all"]


def _public(service: Service, alarm: AlarmRecord) -> AlarmItemPublic:
    record = service.monitor.record(alarm.characteristic)
    assert alarm.id is not None  # stored alarms have ids
    ack = alarm.ack
    return AlarmItemPublic(
        id=alarm.id,
        characteristic=alarm.characteristic,
        line=record.line if record else None,
        process=process_id(record.line, record.process) if record else None,
        rule=alarm.rule,
        chart=alarm.chart,
        state=alarm.state,
        opened_at=alarm.opened_at,
        last_at=alarm.last_at,
        count=alarm.count,
        limit_version=alarm.limit_version,
        last_value=alarm.last_value,
        message=alarm.message,
        acknowledged_by=ack.by if ack else None,
        acknowledged_at=ack.at if ack else None,
        ack_comment=ack.comment if ack else None,
        ack_cause=ack.cause if ack else None,
        ack_action=ack.action if ack else None,
    )


async def _stored(service: Service, alarm_id: int) -> AlarmRecord:
    alarm = await service.store.get_alarm(alarm_id)
    if alarm is None:
        raise NotFound(f"no alarm with id {alarm_id}")
    return alarm


@router.get("", response_model=list[AlarmItemPublic])
async def list_alarms(
    service: ServiceDep,
    _: ViewerDep,
    state: Annotated[AlarmState, Query(description="open, acknowledged, resolved or all")] = "open",
    characteristic: Annotated[
        str | None, Query(description="only this characteristic's alarms")
    ] = None,
    line: Annotated[str | None, Query(description="only the alarms of this line")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000, description="at most this many")] = 1000,
) -> list[AlarmItemPublic]:
    """List alarms, newest first: by default the open (unacknowledged) ones."""
    unresolved = state in ("open", "acknowledged")
    alarms = await service.store.list_alarms(characteristic, open_only=unresolved)
    items = [_public(service, a) for a in alarms if state == "all" or a.state == state]
    items = [a for a in items if line is None or a.line == line]
    return sorted(items, key=lambda a: a.id, reverse=True)[:limit]


@router.get(
    "/{alarm_id}",
    response_model=AlarmDetailPublic,
    responses={404: {"description": "no such alarm"}},
)
async def read_alarm(alarm_id: int, service: ServiceDep, _: ViewerDep) -> AlarmDetailPublic:
    """One alarm with its audit history (every saved state, oldest first)."""
    alarm = await _stored(service, alarm_id)
    events = await service.store.alarm_events(alarm_id)
    return AlarmDetailPublic(
        **_public(service, alarm).model_dump(),
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
    )


@router.post(
    "/{alarm_id}/acknowledge",
    response_model=AcknowledgementPublic,
    responses={
        404: {"description": "no such alarm"},
        409: {"description": "the alarm is already acknowledged, or resolved"},
    },
)
async def acknowledge_alarm(
    alarm_id: int, body: AcknowledgementCreate, service: ServiceDep, caller: OperatorDep
) -> AcknowledgementPublic:
    """Acknowledge an open alarm with a comment (operator role); it stays unresolved."""
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
