"""SQL of the PostgreSQL store that is not a one-off query: the bulk-insert paths, the
bucket queries, connection options and the mapping of driver errors to store errors.

Every statement here is a constant; values travel as parameters or in COPY streams.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, LiteralString

import psycopg

from ingest.errors import StoreError, StoreRejected, StoreUnavailable

Row = tuple[Any, ...]

# a dead server or network is noticed in ~25 s, not after the kernel's two hours
CONNECT_KWARGS: dict[str, Any] = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 20_000,  # ms: unacknowledged data on a dead link fails the socket
}


@dataclass(frozen=True)
class BulkInsert:
    """How one record type is staged and moved: columns after ``pos``, binary types, key."""

    table: LiteralString
    columns: LiteralString
    types: tuple[str, ...]
    key: LiteralString  # returned to tell which rows were new

    @property
    def staging(self) -> LiteralString:
        return "staging_" + self.table

    def create_staging(self) -> LiteralString:
        return (
            f"CREATE TEMP TABLE IF NOT EXISTS {self.staging} "
            f"(pos integer, {self._typed_columns()}) ON COMMIT DELETE ROWS"
        )

    def copy_direct(self) -> LiteralString:
        return f"COPY {self.table} ({self.columns}) FROM STDIN (FORMAT BINARY)"

    def copy_staged(self) -> LiteralString:
        return f"COPY {self.staging} (pos, {self.columns}) FROM STDIN (FORMAT BINARY)"

    def move(self) -> LiteralString:
        return (
            f"INSERT INTO {self.table} ({self.columns}) SELECT {self.columns} "
            f"FROM {self.staging} ORDER BY pos ON CONFLICT DO NOTHING RETURNING {self.key}"
        )

    def _typed_columns(self) -> str:
        names = [c.strip() for c in self.columns.split(",")]
        return ", ".join(f"{n} {t}" for n, t in zip(names, self.types, strict=True))


MEASUREMENTS = BulkInsert(
    "measurements",
    "time, characteristic, value, ingest_id, source, part, lot, quality",
    ("timestamptz", "text", "float8", "text", "text", "text", "text", "text"),
    "characteristic, time, ingest_id",
)
VERDICTS = BulkInsert(
    "verdicts",
    "time, process, part, ok, first_pass, defects, ingest_id, source",
    ("timestamptz", "text", "text", "bool", "bool", "jsonb", "text", "text"),
    "process, time, ingest_id",
)
COSTS = BulkInsert(
    "cost_events",
    "time, scope, category, amount, currency, ingest_id, source, note",
    ("timestamptz", "text", "text", "float8", "text", "text", "text", "text"),
    "ingest_id",
)
STAGED = (MEASUREMENTS, VERDICTS, COSTS)

# buckets: params (width, origin, characteristic, from, to), answered from raw rows or
# from the 1-minute / 1-hour statistics (continuous aggregates, or the plain-mode table)
BUCKETS_FROM_RAW: LiteralString = (
    "SELECT date_bin(%s, time, %s) AS b, count(*), sum(value), sum(value * value), "
    "min(value), max(value) FROM measurements WHERE characteristic = %s "
    "AND quality = 'good' AND time >= %s AND time < %s GROUP BY b ORDER BY b"
)
_ROLL_UP: LiteralString = (
    "AS b, sum(n)::bigint, sum(total), sum(total_sq), min(minimum), max(maximum) FROM "
)
_STATS_RANGE: LiteralString = (
    " WHERE characteristic = %s AND bucket >= %s AND bucket < %s GROUP BY b ORDER BY b"
)
BUCKETS_FROM_1M: LiteralString = (
    "SELECT date_bin(%s, bucket, %s) " + _ROLL_UP + "measurement_stats_1m" + _STATS_RANGE
)
BUCKETS_FROM_1M_TS: LiteralString = (
    "SELECT time_bucket(%s, bucket, %s) " + _ROLL_UP + "measurement_stats_1m" + _STATS_RANGE
)
BUCKETS_FROM_1H: LiteralString = (
    "SELECT time_bucket(%s, bucket, %s) " + _ROLL_UP + "measurement_stats_1h" + _STATS_RANGE
)


async def copy_rows(
    cur: psycopg.AsyncCursor[Row],
    statement: LiteralString,
    types: Sequence[str],
    rows: Sequence[Row],
) -> None:
    async with cur.copy(statement) as copy:
        copy.set_types(list(types))
        for row in rows:
            await copy.write_row(row)


_UNAVAILABLE_STATES = {"57P01", "57P02", "57P03", "53300", "25006"}  # shutdown, too many, r/o


def classify(exc: psycopg.Error) -> StoreError:
    """Map a driver error to the store's errors by SQLSTATE, not by driver class.

    Connection failures (class 08, no SQLSTATE at all: the client lost the server),
    shutdowns, too many connections and a read-only standby after a failover mean "not
    reachable now" (spool and retry); data and constraint errors (classes 22 and 23)
    mean "never" (set aside); anything else is a plain ``StoreError`` (retried).
    """
    state = exc.sqlstate
    if state is None or state.startswith("08") or state in _UNAVAILABLE_STATES:
        return StoreUnavailable(f"PostgreSQL: {exc}")
    if state.startswith(("22", "23")):
        return StoreRejected(f"PostgreSQL refused the data ({state}): {exc}")
    return StoreError(f"PostgreSQL ({state}): {exc}")
