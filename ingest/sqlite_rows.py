"""SQLite store support: time encoding, transactions, de-duplication, rows to records.

Times are integer microseconds since the Unix epoch, UTC.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from ingest.model import Measurement, Quality
from ingest.sqlite_schema import ADDED_COLUMNS
from ingest.store import Acknowledgement, AlarmRecord, StoredLimits, details_from_json
from spc import LimitSet

_log = logging.getLogger(__name__)
T = TypeVar("T")
_IN_CHUNK = 500  # stays under SQLite's bound-parameter limit


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


def to_us(t: datetime) -> int:
    """Microseconds since the Unix epoch (UTC) of an aware datetime."""
    return (t - _EPOCH) // _ONE_US


def from_us(us: int) -> datetime:
    return datetime.fromtimestamp(us // 1_000_000, UTC).replace(microsecond=us % 1_000_000)


class Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on error (autocommit connection)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")


def unseen(conn: sqlite3.Connection, table: str, items: Sequence[T]) -> list[T]:
    """Items whose ingest_id is neither stored nor repeated earlier in the batch."""
    ids = [item.ingest_id for item in items]  # type: ignore[attr-defined]
    stored: set[str] = set()
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start : start + _IN_CHUNK]
        marks = ",".join("?" * len(chunk))
        cur = conn.execute(f"SELECT ingest_id FROM {table} WHERE ingest_id IN ({marks})", chunk)
        stored.update(r[0] for r in cur.fetchall())
    fresh: list[T] = []
    for item, key in zip(items, ids, strict=True):
        if key not in stored:
            stored.add(key)
            fresh.append(item)
    return fresh


def measurement_values(m: Measurement) -> tuple[Any, ...]:
    """The ``measurements`` columns (ingest_id, characteristic, time_us, value, part, lot,
    source, quality) of one record."""
    return (
        m.ingest_id,
        m.characteristic,
        (m.time - _EPOCH) // _ONE_US,
        float(m.value),
        m.part,
        m.lot,
        m.source,
        m.quality.value,
    )


def first_of_each(items: Sequence[T], keys: set[str]) -> list[T]:
    """The items whose ingest_id is in ``keys``, in order, each key's first one only."""
    fresh: list[T] = []
    left = set(keys)
    for item in items:
        key = item.ingest_id  # type: ignore[attr-defined]
        if key in left:
            left.discard(key)
            fresh.append(item)
    return fresh


def measurement_tail(
    conn: sqlite3.Connection, characteristic: str, limit: int, where: str, newest_first: str
) -> list[Measurement]:
    """The last ``limit`` measurements by ``newest_first`` ordering, returned oldest first.

    ``where`` and ``newest_first`` are fixed SQL fragments from this module, never input.
    """
    rows = conn.execute(
        "SELECT time_us, characteristic, value, ingest_id, source, part, lot, quality "
        f"FROM measurements WHERE characteristic = ? {where} "
        f"ORDER BY {newest_first} LIMIT ?",
        (characteristic, limit),
    ).fetchall()
    rows.reverse()
    return [measurement_from_row(r) for r in rows]


def measurement_from_row(r: Sequence[Any]) -> Measurement:
    return Measurement(from_us(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], Quality(r[7]))


def limits_from_row(r: Sequence[Any]) -> StoredLimits:
    """From ``SELECT * FROM limit_sets`` (disp_lcl, author and effective_us were added as
    columns 11, 12, 13: a new file declares them in the same place)."""
    limits = LimitSet(r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[11])
    effective = from_us(r[13]) if r[13] is not None else None
    return StoredLimits(r[0], limits, from_us(r[9]), r[10], r[12], effective)


def add_missing_columns(conn: sqlite3.Connection) -> None:
    """Bring a file made by an earlier version up to the current columns."""
    for table, column, definition in ADDED_COLUMNS:
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
            _log.info("SQLite store: added column %s.%s", table, column)


def monitoring_from_json(text: str) -> dict[str, tuple[float, float] | None]:
    stored = json.loads(text)
    return {key: tuple(stored[key]) if stored[key] else None for key in ("ewma", "cusum")}


ALARM_COLUMNS = (
    "id, characteristic, rule, chart, state, opened_us, last_us, count, limit_version, "
    "last_value, message, acknowledged_by, acknowledged_us, ack_comment, ack_cause, ack_action, "
    "line, process, severity, details"
)
"""The columns ``alarm_from_row`` reads, in its order (a migrated file has them in
another physical order, so alarms are never read with ``SELECT *``)."""


def alarm_from_row(r: Sequence[Any]) -> AlarmRecord:
    """From ``SELECT {ALARM_COLUMNS} FROM alarms``."""
    return AlarmRecord(
        characteristic=r[1],
        rule=r[2],
        chart=r[3],
        state=r[4],
        opened_at=from_us(r[5]),
        last_at=from_us(r[6]),
        count=r[7],
        limit_version=r[8],
        last_value=r[9],
        message=r[10],
        id=r[0],
        ack=ack_from_row(r[11:16]),
        line=r[16],
        process=r[17],
        severity=r[18],
        details=details_from_json(r[19]),
    )


def ack_from_row(r: Sequence[Any]) -> Acknowledgement | None:
    """From (acknowledged_by, acknowledged_us, ack_comment, ack_cause, ack_action)."""
    if r[1] is None:
        return None
    return Acknowledgement(r[0], from_us(r[1]), r[2], r[3], r[4])


def ack_values(ack: Acknowledgement | None) -> tuple[Any, ...]:
    """The acknowledgement columns of an alarm row, in ``ack_from_row``'s order."""
    if ack is None:
        return (None,) * 5
    return (ack.by, to_us(ack.at), ack.comment, ack.cause, ack.action)
