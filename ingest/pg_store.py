"""PostgreSQL store (TimescaleDB when the extension is there), through psycopg 3.

Async, over a connection pool; every value travels as a server-side parameter or in a
binary ``COPY`` stream, never spliced into SQL. Batches are copied into a per-connection
temporary table and moved with ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``, which
makes a write idempotent: a resend or a spool replay after a crash never doubles a row.

Connection failures raise ``StoreUnavailable`` (the spool catches those); anything else
the database refuses raises ``StoreError``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Hashable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, LiteralString, TypeVar

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ingest import pg_alarms
from ingest.capability_sql import PG_ADD, PG_TOTALS, sums_row, totals_from_rows
from ingest.errors import StoreError, StoreUnavailable
from ingest.model import CostCategory, CostEvent, DeadLetter, InspectionVerdict, Measurement
from ingest.pg_migrate import (
    SchemaState,
    TimescaleMode,
    TimescalePolicies,
    apply_policies,
    migration_lock,
    upgrade,
)
from ingest.pg_rows import (
    MEASUREMENT_COLUMNS,
    characteristic_from_row,
    characteristic_row,
    grade_from_row,
    limits_from_row,
    measurement_from_row,
)
from ingest.pg_sql import (
    BUCKETS_FROM_1H,
    BUCKETS_FROM_1M,
    BUCKETS_FROM_1M_TS,
    BUCKETS_FROM_RAW,
    CONNECT_KWARGS,
    COSTS,
    MEASUREMENTS,
    STAGED,
    VERDICTS,
    BulkInsert,
    Row,
    classify,
    copy_rows,
)
from ingest.store import (
    BUCKET_ORIGIN,
    AlarmEvent,
    AlarmRecord,
    Bucket,
    CapabilityBucket,
    CharacteristicRecord,
    CostTotal,
    FirstPassCount,
    GradeSnapshot,
    HistoryCursor,
    HistoryPage,
    StoredLimits,
)
from ingest.time_buckets import bucket_range, whole_seconds
from spc.capability_sums import CapabilitySums

_log = logging.getLogger(__name__)
Conn = AsyncConnection[tuple[Any, ...]]
T = TypeVar("T")


@dataclass(frozen=True)
class PgOptions:
    """Connection pool and TimescaleDB settings of a ``PostgresStore``."""

    min_connections: int = 1
    max_connections: int = 4
    acquire_timeout: float = 5.0  # s to wait for a connection before StoreUnavailable
    operation_timeout: float = 30.0  # s for one whole operation (connection + statements)
    schema: str | None = None  # PostgreSQL schema for our tables; None: the server's default
    timescaledb: TimescaleMode = "auto"
    policies: TimescalePolicies = field(default_factory=TimescalePolicies)


# restart replay: look back this far first, widening until the tail is exact
_TAIL_HORIZONS = (timedelta(days=1), timedelta(days=7), timedelta(days=60), None)
_BEGINNING = datetime.min.replace(tzinfo=UTC)
_VERDICTS: LiteralString = (
    "SELECT time, process, part, ok, first_pass, ingest_id, source, defects FROM verdicts "
    "WHERE process = %s AND time >= %s AND time < %s AND (first_pass OR %s) "
)
_VERDICTS_EARLIEST: LiteralString = _VERDICTS + "ORDER BY time, ingest_id LIMIT %s"
_VERDICTS_NEWEST: LiteralString = _VERDICTS + "ORDER BY time DESC, ingest_id DESC LIMIT %s"


class PostgresStore:
    """The ``Store`` protocol over PostgreSQL, with TimescaleDB features when present."""

    def __init__(self, dsn: str, options: PgOptions | None = None) -> None:
        self._dsn = dsn
        self.options = options or PgOptions()
        self._pool: AsyncConnectionPool[Conn] | None = None
        self.kind = "postgresql"
        self.schema_state: SchemaState | None = None

    # lifecycle -----------------------------------------------------------------------
    async def open(self) -> None:
        if self._pool is not None:
            return
        try:
            async with (
                await psycopg.AsyncConnection.connect(
                    self._dsn, autocommit=True, **CONNECT_KWARGS
                ) as conn,
                migration_lock(conn),
            ):  # instances starting together take turns
                await self._use_schema(conn, create=True)
                state = await upgrade(conn, self.options.timescaledb)
                if state.kind == "timescaledb":
                    await apply_policies(conn, self.options.policies)
        except psycopg.Error as exc:
            err = classify(exc)
            raise type(err)(f"cannot open the PostgreSQL store: {err}") from exc
        self.schema_state = state
        self.kind = state.kind
        pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            self._dsn,
            min_size=self.options.min_connections,
            max_size=self.options.max_connections,
            kwargs={"autocommit": True, **CONNECT_KWARGS},
            configure=self._configure,
            check=AsyncConnectionPool.check_connection,
            timeout=self.options.acquire_timeout,
            open=False,
            name="spcmon-store",
        )
        try:
            await pool.open(wait=True, timeout=max(self.options.acquire_timeout, 10.0))
        except PoolTimeout as exc:
            await pool.close()
            raise StoreUnavailable(f"cannot open the PostgreSQL pool: {exc}") from exc
        self._pool = pool
        version = state.timescaledb_version
        _log.info(
            "PostgreSQL store open: %s mode%s, schema v%d",
            self.kind,
            f" (TimescaleDB {version})" if version else "",
            state.version,
        )

    async def _use_schema(self, conn: Conn, create: bool = False) -> None:
        """Put the configured schema first on the search path (extensions stay reachable)."""
        name = self.options.schema
        if name is None:
            return
        if create:
            await conn.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(name))
            )
        await conn.execute(sql.SQL("SET search_path TO {}, public").format(sql.Identifier(name)))

    async def _configure(self, conn: Conn) -> None:
        """Per-connection set-up: schema, UTC session time zone, staging tables for COPY."""
        await self._use_schema(conn)
        await conn.execute("SET TIME ZONE 'UTC'")
        # a lock held elsewhere (a migration, a long report) fails fast rather than
        # stalling every write behind it; the spool takes the batch meanwhile
        await conn.execute("SET lock_timeout = '10s'")
        for spec in STAGED:
            await conn.execute(spec.create_staging())

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    @asynccontextmanager
    async def _conn(self) -> AsyncIterator[Conn]:
        """A pooled connection for one operation, bounded by ``operation_timeout``.

        Keepalives only guard idle connections: a server that stalls mid-query (paused,
        a network black hole, a lock held by a migration) must still end in
        ``StoreUnavailable`` so that writes go to the spool instead of hanging ingest.
        """
        if self._pool is None:
            raise StoreError("the PostgreSQL store is not open")
        try:
            async with asyncio.timeout(self.options.operation_timeout):
                async with self._pool.connection() as conn:
                    yield conn
        except TimeoutError as exc:
            raise StoreUnavailable(
                f"PostgreSQL did not answer within {self.options.operation_timeout:.0f} s"
            ) from exc
        except PoolTimeout as exc:
            raise StoreUnavailable(f"PostgreSQL: no connection available: {exc}") from exc
        except psycopg.Error as exc:
            raise classify(exc) from exc

    async def _rows(self, query: LiteralString, params: Sequence[Any] = ()) -> list[Row]:
        async with self._conn() as conn:
            cur = await conn.execute(query, params)
            return await cur.fetchall()

    async def _scalar(self, query: LiteralString, params: Sequence[Any] = ()) -> Any:
        rows = await self._rows(query, params)
        return rows[0][0] if rows else None

    async def _bulk(
        self, spec: BulkInsert, rows: Sequence[tuple[Any, ...]]
    ) -> set[Hashable] | None:
        """Write rows once each; the keys of those that were new, or None if all were.

        The common case, a batch never seen before, goes by binary COPY straight into
        the table. If any row is stored already (a resend, a spool replay), that COPY
        fails on the unique key and is rolled back to its savepoint; the batch is then
        staged and moved with ON CONFLICT DO NOTHING, which skips the known rows.
        """
        async with self._conn() as conn, conn.transaction(), conn.cursor() as cur:
            try:
                async with conn.transaction():  # a savepoint
                    await copy_rows(cur, spec.copy_direct(), spec.types, rows)
                return None
            except psycopg.errors.UniqueViolation:
                pass
            staged = [(pos, *row) for pos, row in enumerate(rows)]
            await copy_rows(cur, spec.copy_staged(), ("int4", *spec.types), staged)
            await cur.execute(spec.move())
            inserted = await cur.fetchall()
        return {r if len(r) > 1 else r[0] for r in inserted}

    # characteristics -----------------------------------------------------------------
    async def upsert_characteristics(self, records: Sequence[CharacteristicRecord]) -> None:
        if not records:
            return
        async with self._conn() as conn, conn.transaction(), conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO characteristics (id, name, unit, line, process, lsl, usl, target, "
                "chart, subgroup_size, rules, source_kind, source_address, origin, monitoring) "
                "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) "
                "ON CONFLICT (id) DO UPDATE SET name=excluded.name, unit=excluded.unit, "
                "line=excluded.line, process=excluded.process, lsl=excluded.lsl, "
                "usl=excluded.usl, target=excluded.target, chart=excluded.chart, "
                "subgroup_size=excluded.subgroup_size, rules=excluded.rules, "
                "source_kind=excluded.source_kind, source_address=excluded.source_address, "
                "origin=excluded.origin, monitoring=excluded.monitoring",
                [characteristic_row(r) for r in records],
            )

    async def list_characteristics(self) -> list[CharacteristicRecord]:
        rows = await self._rows(
            "SELECT id, name, unit, line, process, lsl, usl, target, chart, subgroup_size, "
            "rules, source_kind, source_address, origin, monitoring FROM characteristics "
            'ORDER BY line COLLATE "C", process COLLATE "C", id COLLATE "C"'
        )
        return [characteristic_from_row(r) for r in rows]

    async def delete_characteristic(self, characteristic: str) -> bool:
        rows = await self._rows(
            "DELETE FROM characteristics WHERE id = %s RETURNING id", (characteristic,)
        )
        return bool(rows)

    # measurements, verdicts, costs ---------------------------------------------------
    async def add_measurements(self, items: Sequence[Measurement]) -> list[Measurement]:
        firsts = _first_of_each(items, _measurement_key)
        if not firsts:
            return []
        rows = [
            (
                m.time,
                m.characteristic,
                float(m.value),
                m.ingest_id,
                m.source,
                m.part,
                m.lot,
                m.quality.value,
            )
            for m in firsts
        ]
        new = await self._bulk(MEASUREMENTS, rows)
        return firsts if new is None else [m for m in firsts if _measurement_key(m) in new]

    async def add_verdicts(self, items: Sequence[InspectionVerdict]) -> int:
        firsts = _first_of_each(items, lambda v: (v.process, v.time, v.ingest_id))
        if not firsts:
            return 0
        rows = [
            (
                v.time,
                v.process,
                v.part,
                v.ok,
                v.first_pass,
                Jsonb(list(v.defects)),
                v.ingest_id,
                v.source,
            )
            for v in firsts
        ]
        new = await self._bulk(VERDICTS, rows)
        return len(rows) if new is None else len(new)

    async def add_cost_events(self, items: Sequence[CostEvent]) -> int:
        firsts = _first_of_each(items, lambda c: c.ingest_id)
        if not firsts:
            return 0
        rows = [
            (
                c.time,
                c.scope,
                c.category.value,
                float(c.amount),
                c.currency,
                c.ingest_id,
                c.source,
                c.note,
            )
            for c in firsts
        ]
        new = await self._bulk(COSTS, rows)
        return len(rows) if new is None else len(new)

    async def recent_measurements(self, characteristic: str, limit: int) -> list[Measurement]:
        rows = await self._rows(
            f"SELECT {MEASUREMENT_COLUMNS} FROM measurements WHERE characteristic = %s "
            "ORDER BY time DESC, seq DESC LIMIT %s",
            (characteristic, limit),
        )
        return [measurement_from_row(r) for r in reversed(rows)]

    async def count_measurements(self, characteristic: str | None = None) -> int:
        if characteristic is None:
            return int(await self._scalar("SELECT count(*) FROM measurements"))
        return int(
            await self._scalar(
                "SELECT count(*) FROM measurements WHERE characteristic = %s", (characteristic,)
            )
        )

    async def count_charted(self, characteristic: str) -> int:
        return int(
            await self._scalar(
                "SELECT count(*) FROM measurements WHERE characteristic = %s AND quality = 'good'",
                (characteristic,),
            )
        )

    async def charted_tail(self, characteristic: str, limit: int) -> list[Measurement]:
        """The storage-order tail, read from recent times first.

        Ordering by ``seq`` alone would read a characteristic's whole history (and, on a
        hypertable, decompress every compressed chunk). Rows stored last almost always
        carry recent times, so read a recent time window, then check that no older row
        was stored after the window's oldest pick (cheap: the BRIN index on ``seq``, or
        a compressed chunk's min/max of ``seq``, skips everything stored before it);
        widen the window if one was.
        """
        if limit <= 0:
            return []
        latest = await self._scalar(
            "SELECT max(time) FROM measurements WHERE characteristic = %s", (characteristic,)
        )
        if latest is None:
            return []
        rows: list[tuple[Any, ...]] = []
        for horizon in _TAIL_HORIZONS:
            cutoff = _BEGINNING if horizon is None else latest - horizon
            rows = await self._rows(
                f"SELECT {MEASUREMENT_COLUMNS}, seq FROM measurements WHERE characteristic = %s "
                "AND quality = 'good' AND time >= %s ORDER BY seq DESC LIMIT %s",
                (characteristic, cutoff, limit),
            )
            if horizon is None:
                break
            if len(rows) == limit:
                later = await self._scalar(
                    "SELECT EXISTS (SELECT 1 FROM measurements WHERE characteristic = %s "
                    "AND quality = 'good' AND time < %s AND seq > %s)",
                    (characteristic, cutoff, rows[-1][-1]),
                )
                if not later:
                    break
        return [measurement_from_row(r[:-1]) for r in reversed(rows)]

    async def count_verdicts(self) -> int:
        return int(await self._scalar("SELECT count(*) FROM verdicts"))

    async def verdicts(
        self,
        process: str,
        start: datetime,
        end: datetime,
        limit: int = 1000,
        newest: bool = False,
        first_pass_only: bool = False,
    ) -> list[InspectionVerdict]:
        if limit <= 0:
            raise StoreError(f"limit: must be positive, got {limit}")
        rows = await self._rows(
            _VERDICTS_NEWEST if newest else _VERDICTS_EARLIEST,
            (process, start, end, not first_pass_only, limit),
        )
        found = [
            InspectionVerdict(r[0], r[1], r[2], r[3], r[4], r[5], r[6], tuple(r[7])) for r in rows
        ]
        return found[::-1] if newest else found

    async def history(
        self,
        characteristic: str,
        start: datetime,
        end: datetime,
        limit: int = 1000,
        after: HistoryCursor | None = None,
    ) -> HistoryPage:
        if limit <= 0:
            raise StoreError(f"limit: must be positive, got {limit}")
        cursor = (after.time, after.seq) if after else (start, -1)
        rows = await self._rows(
            f"SELECT {MEASUREMENT_COLUMNS}, seq FROM measurements WHERE characteristic = %s "
            "AND time >= %s AND time < %s AND (time, seq) > (%s, %s) "
            "ORDER BY time, seq LIMIT %s",
            (characteristic, start, end, *cursor, limit + 1),
        )
        more = len(rows) > limit
        page = rows[:limit]
        nxt = HistoryCursor(page[-1][0], int(page[-1][-1])) if more else None
        return HistoryPage([measurement_from_row(r[:-1]) for r in page], nxt)

    async def buckets(
        self, characteristic: str, start: datetime, end: datetime, width: timedelta
    ) -> list[Bucket]:
        seconds = whole_seconds(width)
        lo, hi = bucket_range(start, end, width)
        if lo >= hi:
            return []
        rows = await self._rows(
            self._bucket_query(seconds), (width, BUCKET_ORIGIN, characteristic, lo, hi)
        )
        return [Bucket(r[0], int(r[1]), r[2] / r[1], r[4], r[5], r[2], r[3]) for r in rows if r[1]]

    def _bucket_query(self, seconds: int) -> LiteralString:
        """The cheapest source for buckets of this width: a pre-aggregate when one fits."""
        timescale = self.kind == "timescaledb"
        if seconds % 3600 == 0 and timescale:
            return BUCKETS_FROM_1H
        if seconds % 60 == 0:
            return BUCKETS_FROM_1M_TS if timescale else BUCKETS_FROM_1M
        return BUCKETS_FROM_RAW

    async def first_pass_counts(self, start: datetime, end: datetime) -> list[FirstPassCount]:
        rows = await self._rows(
            "SELECT process, count(*), count(*) FILTER (WHERE ok) FROM verdicts "
            "WHERE first_pass AND time >= %s AND time < %s "
            'GROUP BY process ORDER BY process COLLATE "C"',
            (start, end),
        )
        return [FirstPassCount(r[0], int(r[1]), int(r[2])) for r in rows]

    async def cost_totals(self, start: datetime, end: datetime) -> list[CostTotal]:
        rows = await self._rows(
            "SELECT scope, category, currency, sum(amount), count(*) FROM cost_events "
            "WHERE time >= %s AND time < %s GROUP BY scope, category, currency "
            'ORDER BY scope COLLATE "C", category COLLATE "C", currency COLLATE "C"',
            (start, end),
        )
        return [CostTotal(r[0], CostCategory(r[1]), r[2], float(r[3]), int(r[4])) for r in rows]

    # limits --------------------------------------------------------------------------
    async def save_limits(self, item: StoredLimits) -> None:
        lim = item.limits
        await self._rows(
            "INSERT INTO limit_sets (characteristic, version, center, ucl, lcl, sigma, "
            "mr_center, mr_ucl, baseline_n, disp_lcl, created_at, reason, author, effective_at) "
            "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) RETURNING version",
            (
                item.characteristic,
                lim.version,
                lim.center,
                lim.ucl,
                lim.lcl,
                lim.sigma,
                lim.mr_center,
                lim.mr_ucl,
                lim.baseline_n,
                lim.dispersion_lcl,
                item.created_at,
                item.reason,
                item.author,
                item.effective_at,
            ),
        )

    async def active_limits(self, characteristic: str) -> StoredLimits | None:
        rows = await self._rows(
            "SELECT * FROM limit_sets WHERE characteristic = %s ORDER BY version DESC LIMIT 1",
            (characteristic,),
        )
        return limits_from_row(rows[0]) if rows else None

    async def limit_history(self, characteristic: str) -> list[StoredLimits]:
        rows = await self._rows(
            "SELECT * FROM limit_sets WHERE characteristic = %s ORDER BY version",
            (characteristic,),
        )
        return [limits_from_row(r) for r in rows]

    # alarms --------------------------------------------------------------------------
    async def save_alarm(self, alarm: AlarmRecord) -> AlarmRecord:
        async with self._conn() as conn:
            return await pg_alarms.save_alarm(conn, alarm)

    async def save_alarms(self, alarms: Sequence[AlarmRecord]) -> list[AlarmRecord]:
        async with self._conn() as conn:
            return await pg_alarms.save_alarms(conn, alarms)

    async def get_alarm(self, alarm_id: int) -> AlarmRecord | None:
        async with self._conn() as conn:
            return await pg_alarms.get_alarm(conn, alarm_id)

    async def list_alarms(
        self, characteristic: str | None = None, open_only: bool = True
    ) -> list[AlarmRecord]:
        async with self._conn() as conn:
            return await pg_alarms.list_alarms(conn, characteristic, open_only)

    async def alarm_events(self, alarm_id: int) -> list[AlarmEvent]:
        async with self._conn() as conn:
            return await pg_alarms.alarm_events(conn, alarm_id)

    # dead letters --------------------------------------------------------------------
    async def add_dead_letters(self, items: Sequence[DeadLetter]) -> None:
        if not items:
            return
        async with self._conn() as conn, conn.transaction(), conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO dead_letters (received_at, source, reason, payload) "
                "VALUES (%s, %s, %s, %s)",
                [
                    (
                        d.received_at,
                        _text(d.source),
                        _text(d.reason),
                        d.payload.encode("utf-8", "backslashreplace"),
                    )
                    for d in items
                ],
            )

    async def list_dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        rows = await self._rows(
            "SELECT received_at, source, reason, payload FROM dead_letters "
            "ORDER BY id DESC LIMIT %s",
            (limit,),
        )
        return [DeadLetter(r[0], r[1], r[2], bytes(r[3]).decode("utf-8", "replace")) for r in rows]

    # grades --------------------------------------------------------------------------
    async def add_grade_snapshots(self, items: Sequence[GradeSnapshot]) -> None:
        if not items:
            return
        async with self._conn() as conn, conn.transaction(), conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO grade_snapshots (taken_at, level, entity, grade, limiting_metric, "
                "metrics) VALUES (%s, %s, %s, %s, %s, %s)",
                [
                    (
                        g.taken_at,
                        g.level,
                        g.entity,
                        g.grade,
                        g.limiting_metric,
                        Jsonb(dict(g.metrics)),
                    )
                    for g in items
                ],
            )

    async def add_capability_sums(self, items: Sequence[CapabilityBucket]) -> None:
        if not items:
            return
        async with self._conn() as conn, conn.transaction(), conn.cursor() as cur:
            await cur.executemany(
                PG_ADD, [(b.characteristic, b.start, *sums_row(b.sums)) for b in items]
            )

    async def capability_totals(self, start: datetime, end: datetime) -> dict[str, CapabilitySums]:
        return totals_from_rows(await self._rows(PG_TOTALS, (start, end)))

    async def grade_history(
        self, level: str, entity: str, start: datetime, end: datetime
    ) -> list[GradeSnapshot]:
        rows = await self._rows(
            "SELECT taken_at, level, entity, grade, limiting_metric, metrics "
            "FROM grade_snapshots WHERE level = %s AND entity = %s AND taken_at >= %s "
            "AND taken_at < %s ORDER BY taken_at, id",
            (level, entity, start, end),
        )
        return [grade_from_row(r) for r in rows]


def _first_of_each(items: Sequence[T], key: Callable[[T], Hashable]) -> list[T]:
    """Items in order, keeping the first of each key: within a batch the first one wins."""
    seen: set[Hashable] = set()
    firsts: list[T] = []
    for item in items:
        k = key(item)
        if k not in seen:
            seen.add(k)
            firsts.append(item)
    return firsts


def _measurement_key(m: Measurement) -> Hashable:
    """The natural key (the unique index): a resend repeats all three."""
    return (m.characteristic, m.time, m.ingest_id)


def _text(value: str) -> str:
    return value.replace("\x00", "\\x00")  # text columns cannot hold NUL
