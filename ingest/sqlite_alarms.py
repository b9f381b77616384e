"""The alarm aggregate of the SQLite store: alarms and their audit events.

Plain functions on the store's connection, called on its worker thread.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from datetime import datetime
from typing import Any

from ingest.errors import StoreError
from ingest.sqlite_rows import (
    ALARM_COLUMNS,
    Transaction,
    ack_from_row,
    ack_values,
    alarm_from_row,
    from_us,
    to_us,
)
from ingest.store import (
    Acknowledgement,
    AlarmEvent,
    AlarmRecord,
    alarm_event,
    details_to_json,
    escalated_at,
)

_ACK_COLUMNS = "acknowledged_by, acknowledged_us, ack_comment, ack_cause, ack_action"
_ID_RANGE = range(-(2**63), 2**63)  # SQLite INTEGER: an id outside was never stored


def save_alarm(conn: sqlite3.Connection, alarm: AlarmRecord) -> AlarmRecord:
    """Insert or update the alarm and add its audit event, in one transaction."""
    return save_alarms(conn, [alarm])[0]


def save_alarms(conn: sqlite3.Connection, alarms: list[AlarmRecord]) -> list[AlarmRecord]:
    """`save_alarm` for each alarm, all in one transaction."""
    with Transaction(conn):
        return [_save(conn, alarm) for alarm in alarms]


def _save(conn: sqlite3.Connection, alarm: AlarmRecord) -> AlarmRecord:
    values = (
        alarm.characteristic,
        alarm.rule,
        alarm.chart,
        alarm.state,
        to_us(alarm.opened_at),
        to_us(alarm.last_at),
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
        cur = conn.execute(
            "INSERT INTO alarms (characteristic, rule, chart, state, opened_us, last_us, "
            f"count, limit_version, last_value, message, {_ACK_COLUMNS}, line, process, "
            "severity, details) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            values,
        )
        saved = replace(alarm, id=int(cur.lastrowid or 0))
        event = alarm_event(saved, None)
    else:
        stored_ack, state, escalated = _stored(conn, alarm.id)
        conn.execute(
            "UPDATE alarms SET characteristic=?, rule=?, chart=?, state=?, opened_us=?, "
            "last_us=?, count=?, limit_version=?, last_value=?, message=?, "
            "acknowledged_by=?, acknowledged_us=?, ack_comment=?, ack_cause=?, "
            "ack_action=?, line=?, process=?, severity=?, details=? WHERE id=?",
            (*values, alarm.id),
        )
        saved = alarm
        event = alarm_event(saved, stored_ack, state, escalated)
    conn.execute(
        "INSERT INTO alarm_events (alarm_id, recorded_us, state, count, last_value, "
        "actor, note) VALUES (?,?,?,?,?,?,?)",
        (
            event.alarm_id,
            to_us(event.recorded_at),
            event.state,
            event.count,
            event.last_value,
            event.actor,
            event.note,
        ),
    )
    return saved


def _stored(
    conn: sqlite3.Connection, alarm_id: int
) -> tuple[Acknowledgement | None, str, datetime | None]:
    """The stored row's acknowledgement, state and escalation time."""
    row = None
    if alarm_id in _ID_RANGE:
        # only the escalation time of the details: reading the whole evidence back at
        # every update cost more than the update
        row = conn.execute(
            f"SELECT {_ACK_COLUMNS}, state, CASE WHEN json_valid(details) "
            "THEN json_extract(details, '$.escalated_at') END FROM alarms WHERE id = ?",
            (alarm_id,),
        ).fetchone()
    if row is None:
        raise StoreError(f"alarm {alarm_id}: no such alarm to update")
    return ack_from_row(row[:5]), row[5], escalated_at(row[6])


def get_alarm(conn: sqlite3.Connection, alarm_id: int) -> AlarmRecord | None:
    if alarm_id not in _ID_RANGE:
        return None
    row = conn.execute(f"SELECT {ALARM_COLUMNS} FROM alarms WHERE id = ?", (alarm_id,)).fetchone()
    return None if row is None else alarm_from_row(row)


def list_alarms(
    conn: sqlite3.Connection, characteristic: str | None, open_only: bool
) -> list[AlarmRecord]:
    clauses: list[str] = []
    params: list[Any] = []
    if characteristic is not None:
        # the JSON text holds the id quoted; the exact check follows in Python
        clauses.append("(characteristic = ? OR instr(details, ?) > 0)")
        params += [characteristic, json.dumps(characteristic)]
    if open_only:
        clauses.append("state != 'resolved'")
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    cur = conn.execute(f"SELECT {ALARM_COLUMNS} FROM alarms {where} ORDER BY id", params)
    alarms = [alarm_from_row(r) for r in cur.fetchall()]
    if characteristic is None:
        return alarms
    return [a for a in alarms if characteristic in a.characteristics]


def alarm_events(conn: sqlite3.Connection, alarm_id: int) -> list[AlarmEvent]:
    if alarm_id not in _ID_RANGE:
        return []
    cur = conn.execute(
        "SELECT alarm_id, recorded_us, state, count, last_value, actor, note FROM alarm_events "
        "WHERE alarm_id = ? ORDER BY id",
        (alarm_id,),
    )
    return [AlarmEvent(r[0], from_us(r[1]), r[2], r[3], r[4], r[5], r[6]) for r in cur]
