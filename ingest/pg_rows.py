"""Rows of the PostgreSQL store to records and back (column orders match ``pg_schema``)."""

from __future__ import annotations

from typing import Any, LiteralString

from psycopg.types.json import Jsonb

from ingest.model import Measurement, Quality
from ingest.store import (
    Acknowledgement,
    AlarmRecord,
    CharacteristicRecord,
    GradeSnapshot,
    StoredLimits,
    characteristic_values,
    details_from_json,
)
from spc import LimitSet

MEASUREMENT_COLUMNS = "time, characteristic, value, ingest_id, source, part, lot, quality"

Row = tuple[Any, ...]


def characteristic_row(r: CharacteristicRecord) -> Row:
    return characteristic_values(r, Jsonb)


def characteristic_from_row(r: Row) -> CharacteristicRecord:
    monitoring = r[14]
    return CharacteristicRecord(
        id=r[0],
        name=r[1],
        unit=r[2],
        line=r[3],
        process=r[4],
        lsl=r[5],
        usl=r[6],
        target=r[7],
        chart=r[8],
        subgroup_size=r[9],
        rules=tuple(r[10]),
        source_kind=r[11],
        source_address=r[12],
        origin=r[13],
        ewma=_pair(monitoring.get("ewma")),
        cusum=_pair(monitoring.get("cusum")),
    )


def measurement_from_row(r: Row) -> Measurement:
    """From the columns of ``MEASUREMENT_COLUMNS``, in that order."""
    return Measurement(r[0], r[1], r[2], r[3], r[4], r[5], r[6], Quality(r[7]))


def limits_from_row(r: Row) -> StoredLimits:
    """From ``SELECT * FROM limit_sets`` (effective_at added by migration 2, column 13)."""
    limits = LimitSet(r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9])
    return StoredLimits(r[0], limits, r[10], r[11], r[12], r[13])


ALARM_COLUMNS: LiteralString = (
    "id, characteristic, rule, chart, state, opened_at, last_at, count, limit_version, "
    "last_value, message, acknowledged_by, acknowledged_at, ack_comment, ack_cause, ack_action, "
    "line, process, severity, details"
)
ACK_COLUMNS: LiteralString = "acknowledged_by, acknowledged_at, ack_comment, ack_cause, ack_action"


def alarm_from_row(r: Row) -> AlarmRecord:
    """From ``SELECT {ALARM_COLUMNS} FROM alarms``."""
    return AlarmRecord(
        characteristic=r[1],
        rule=r[2],
        chart=r[3],
        state=r[4],
        opened_at=r[5],
        last_at=r[6],
        count=r[7],
        limit_version=r[8],
        last_value=r[9],
        message=r[10],
        id=int(r[0]),
        ack=ack_from_row(r[11:16]),
        line=r[16],
        process=r[17],
        severity=r[18],
        details=details_from_json(r[19]),
    )


def ack_from_row(r: Row) -> Acknowledgement | None:
    """From the columns of ``ACK_COLUMNS``, in that order."""
    if r[1] is None:
        return None
    return Acknowledgement(r[0], r[1], r[2], r[3], r[4])


def ack_values(ack: Acknowledgement | None) -> Row:
    """The values of ``ACK_COLUMNS`` for an alarm row."""
    if ack is None:
        return (None,) * 5
    return (ack.by, ack.at, ack.comment, ack.cause, ack.action)


def grade_from_row(r: Row) -> GradeSnapshot:
    return GradeSnapshot(r[0], r[1], r[2], r[3], r[4], dict(r[5]))


def _pair(value: list[float] | None) -> tuple[float, float] | None:
    return (float(value[0]), float(value[1])) if value else None
