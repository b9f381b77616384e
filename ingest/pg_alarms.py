"""The alarm aggregate of the PostgreSQL store: alarms and their audit events.

Functions on one pooled connection; the store maps driver errors around them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from ingest.errors import StoreError
from ingest.pg_migrate import Conn
from ingest.pg_rows import ACK_COLUMNS, ALARM_COLUMNS, ack_from_row, ack_values, alarm_from_row
from ingest.store import (
    Acknowledgement,
    AlarmEvent,
    AlarmRecord,
    alarm_event,
    details_to_json,
    escalated_at,
)


async def save_alarm(conn: Conn, alarm: AlarmRecord) -> AlarmRecord:
    """Insert or update the alarm and add its audit event, in one transaction."""
    return (await save_alarms(conn, [alarm]))[0]


async def save_alarms(conn: Conn, alarms: Sequence[AlarmRecord]) -> list[AlarmRecord]:
    """`save_alarm` for each alarm, all in one transaction."""
    async with conn.transaction():
        return [await _save(conn, alarm) for alarm in alarms]


async def _save(conn: Conn, alarm: AlarmRecord) -> AlarmRecord:
    values = (
        alarm.characteristic,
        alarm.rule,
        alarm.chart,
        alarm.state,
        alarm.opened_at,
        alarm.last_at,
        alarm.count,
        alarm.limit_version,
        alarm.last_value,
        alarm.message,
        *ack_values(alarm.ack),
        alarm.line,
        alarm.process,
        alarm.severity,
        details_to_json(alarm.details),
    )
    if alarm.id is None:
        cur = await conn.execute(
            "INSERT INTO alarms (characteristic, rule, chart, state, opened_at, last_at, "
            "count, limit_version, last_value, message, " + ACK_COLUMNS + ", line, process, "
            "severity, details) "
            "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s::jsonb) "
            "RETURNING id",
            values,
        )
        row = await cur.fetchone()
        assert row is not None  # RETURNING always gives the row
        saved = replace(alarm, id=int(row[0]))
        event = alarm_event(saved, None)
    else:
        stored_ack, state, escalated = await _stored(conn, alarm.id)
        await conn.execute(
            "UPDATE alarms SET characteristic=%s, rule=%s, chart=%s, state=%s, "
            "opened_at=%s, last_at=%s, count=%s, limit_version=%s, last_value=%s, "
            "message=%s, acknowledged_by=%s, acknowledged_at=%s, ack_comment=%s, "
            "ack_cause=%s, ack_action=%s, line=%s, process=%s, severity=%s, "
            "details=%s::jsonb WHERE id=%s",
            (*values, alarm.id),
        )
        saved = alarm
        event = alarm_event(saved, stored_ack, state, escalated)
    await conn.execute(
        "INSERT INTO alarm_events (alarm_id, recorded_at, state, count, last_value, "
        "actor, note) VALUES (%s,%s,%s,%s,%s,%s,%s)",
        (
            event.alarm_id,
            event.recorded_at,
            event.state,
            event.count,
            event.last_value,
            event.actor,
            event.note,
        ),
    )
    return saved


async def _stored(conn: Conn, alarm_id: int) -> tuple[Acknowledgement | None, str, datetime | None]:
    """The stored acknowledgement, state and escalation, the row locked until commit."""
    cur = await conn.execute(
        "SELECT " + ACK_COLUMNS + ", state, details->>'escalated_at' FROM alarms "
        "WHERE id = %s FOR UPDATE",
        (alarm_id,),
    )
    row = await cur.fetchone()
    if row is None:
        raise StoreError(f"alarm {alarm_id}: no such alarm to update")
    return ack_from_row(row[:5]), row[5], escalated_at(row[6])


async def get_alarm(conn: Conn, alarm_id: int) -> AlarmRecord | None:
    cur = await conn.execute("SELECT " + ALARM_COLUMNS + " FROM alarms WHERE id = %s", (alarm_id,))
    row = await cur.fetchone()
    return None if row is None else alarm_from_row(row)


async def list_alarms(conn: Conn, characteristic: str | None, open_only: bool) -> list[AlarmRecord]:
    cur = await conn.execute(
        "SELECT " + ALARM_COLUMNS + " FROM alarms "
        "WHERE (%s::text IS NULL OR characteristic = %s "
        "OR details -> 'characteristics' ? %s) "
        "AND (NOT %s OR state <> 'resolved') ORDER BY id",
        (characteristic, characteristic, characteristic, open_only),
    )
    return [alarm_from_row(r) for r in await cur.fetchall()]


async def alarm_events(conn: Conn, alarm_id: int) -> list[AlarmEvent]:
    cur = await conn.execute(
        "SELECT alarm_id, recorded_at, state, count, last_value, actor, note "
        "FROM alarm_events WHERE alarm_id = %s ORDER BY id",
        (alarm_id,),
    )
    rows = await cur.fetchall()
    return [AlarmEvent(int(r[0]), r[1], r[2], int(r[3]), r[4], r[5], r[6]) for r in rows]
