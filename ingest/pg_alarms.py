"""The alarm aggregate of the PostgreSQL store: alarms and their audit events.

Functions on one pooled connection; the store maps driver errors around them.
"""

from __future__ import annotations

from dataclasses import replace

from ingest.errors import StoreError
from ingest.pg_migrate import Conn
from ingest.pg_rows import ACK_COLUMNS, ALARM_COLUMNS, ack_from_row, ack_values, alarm_from_row
from ingest.store import Acknowledgement, AlarmEvent, AlarmRecord, alarm_event


async def save_alarm(conn: Conn, alarm: AlarmRecord) -> AlarmRecord:
    """Insert or update the alarm and add its audit event, in one transaction."""
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
    )
    async with conn.transaction():
        if alarm.id is None:
            cur = await conn.execute(
                "INSERT INTO alarms (characteristic, rule, chart, state, opened_at, last_at, "
                "count, limit_version, last_value, message, " + ACK_COLUMNS + ") "
                "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) RETURNING id",
                values,
            )
            row = await cur.fetchone()
            assert row is not None  # RETURNING always gives the row
            saved, stored_ack = replace(alarm, id=int(row[0])), None
        else:
            stored_ack = await _stored_ack(conn, alarm.id)
            await conn.execute(
                "UPDATE alarms SET characteristic=%s, rule=%s, chart=%s, state=%s, "
                "opened_at=%s, last_at=%s, count=%s, limit_version=%s, last_value=%s, "
                "message=%s, acknowledged_by=%s, acknowledged_at=%s, ack_comment=%s, "
                "ack_cause=%s, ack_action=%s WHERE id=%s",
                (*values, alarm.id),
            )
            saved = alarm
        event = alarm_event(saved, stored_ack)
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


async def _stored_ack(conn: Conn, alarm_id: int) -> Acknowledgement | None:
    """The stored acknowledgement, the row locked until the transaction ends."""
    cur = await conn.execute(
        "SELECT " + ACK_COLUMNS + " FROM alarms WHERE id = %s FOR UPDATE", (alarm_id,)
    )
    row = await cur.fetchone()
    if row is None:
        raise StoreError(f"alarm {alarm_id}: no such alarm to update")
    return ack_from_row(row)


async def get_alarm(conn: Conn, alarm_id: int) -> AlarmRecord | None:
    cur = await conn.execute("SELECT " + ALARM_COLUMNS + " FROM alarms WHERE id = %s", (alarm_id,))
    row = await cur.fetchone()
    return None if row is None else alarm_from_row(row)


async def list_alarms(conn: Conn, characteristic: str | None, open_only: bool) -> list[AlarmRecord]:
    cur = await conn.execute(
        "SELECT " + ALARM_COLUMNS + " FROM alarms "
        "WHERE (%s::text IS NULL OR characteristic = %s) "
        "AND (NOT %s OR state <> 'resolved') ORDER BY id",
        (characteristic, characteristic, open_only),
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
