"""Bring a PostgreSQL database to the current schema, and apply TimescaleDB's policies.

``upgrade`` is what ``spcmon db upgrade`` and the store's start-up both run: it detects
TimescaleDB, applies the pending migrations of ``ingest.pg_schema`` under an advisory lock
(several service instances may start at once) and returns the mode the database runs in.
It is idempotent: on an up-to-date database it changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

import psycopg
from psycopg import AsyncConnection, sql

from ingest.errors import StoreError
from ingest.pg_schema import BOOKKEEPING, LATEST_VERSION, MIGRATIONS

_log = logging.getLogger(__name__)

TimescaleMode = Literal["auto", "require", "off"]
Conn = AsyncConnection[tuple[Any, ...]]
_LOCK_KEY = 0x5EC_3071  # advisory lock id: one migrator at a time per database


@dataclass(frozen=True)
class SchemaState:
    """What ``upgrade`` found and did: the backend kind, the version and what it applied."""

    kind: str  # "timescaledb" or "postgresql"
    version: int
    applied: list[int] = field(default_factory=list)
    timescaledb_version: str | None = None


@dataclass(frozen=True)
class TimescalePolicies:
    """Storage policies, applied at every start so that a changed setting takes effect.

    ``expected_rate`` (measurements per second, plant-wide) sizes new chunks to hold about
    ``rows_per_chunk`` rows, within one hour and seven days; ``retention`` None keeps data
    for ever; compression starts once a chunk is older than ``compress_after``.
    """

    expected_rate: float = 1000.0
    rows_per_chunk: int = 20_000_000
    compress_after: timedelta = timedelta(days=7)
    retention: timedelta | None = None

    def chunk_interval(self) -> timedelta:
        seconds = self.rows_per_chunk / max(self.expected_rate, 1e-3)
        return max(timedelta(hours=1), min(timedelta(days=7), timedelta(seconds=seconds)))

    def refresh_window(self, default: timedelta) -> timedelta:
        # never refresh an aggregate over raw chunks the retention policy has dropped:
        # that would delete the aggregated history too
        if self.retention is None:
            return default
        return max(timedelta(hours=3), min(default, self.retention - timedelta(days=1)))


@asynccontextmanager
async def migration_lock(conn: Conn, timeout_s: float = 120.0) -> AsyncIterator[None]:
    """Hold the database-wide migration lock; raise ``StoreError`` after ``timeout_s``.

    Everything that changes the schema or the policies runs under it, so instances that
    start together apply each migration once, one after the other.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        row = await (await conn.execute("SELECT pg_try_advisory_lock(%s)", (_LOCK_KEY,))).fetchone()
        if row is not None and row[0]:
            break
        if loop.time() > deadline:
            raise StoreError(
                f"another instance has held the schema migration lock for {timeout_s:.0f} s"
            )
        await asyncio.sleep(0.2)
    try:
        yield
    finally:
        if not conn.closed and not conn.broken:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


async def upgrade(
    conn: Conn, timescale: TimescaleMode, target: int = LATEST_VERSION
) -> SchemaState:
    """Apply pending migrations up to ``target`` (autocommit connection, inside
    ``migration_lock``); the service always goes to the latest, a test may stop earlier."""
    await conn.execute(BOOKKEEPING)
    try:
        rows = await (
            await conn.execute("SELECT version, mode FROM schema_migrations ORDER BY version")
        ).fetchall()
        done = {int(r[0]) for r in rows}
        recorded = str(rows[0][1]) if rows else None
        ts_version = await _timescaledb(conn, timescale, recorded)
        use_ts = recorded == "timescaledb" if recorded else ts_version is not None
        kind = "timescaledb" if use_ts else "postgresql"
        if recorded == "postgresql" and ts_version is not None:
            _log.warning(
                "TimescaleDB is available but this database was created without it; "
                "running on plain PostgreSQL tables"
            )
        applied = []
        for migration in MIGRATIONS:
            if migration.version in done or migration.version > target:
                continue
            async with conn.transaction():
                for statement in migration.statements(use_ts):
                    await conn.execute(sql.SQL(statement))
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, mode) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, kind),
                )
            applied.append(migration.version)
            _log.info(
                "schema migration %d (%s) applied, %s mode", migration.version, migration.name, kind
            )
        newest = max(done | set(applied), default=0)
        if newest > LATEST_VERSION:
            raise StoreError(
                f"the database schema is version {newest}, newer than this service "
                f"knows ({LATEST_VERSION}): upgrade the service"
            )
        return SchemaState(kind, newest, applied, ts_version if use_ts else None)
    except psycopg.OperationalError:
        raise  # the connection went: the caller says "unavailable"
    except psycopg.Error as exc:
        raise StoreError(f"schema upgrade failed: {exc}") from exc


async def _timescaledb(conn: Conn, wanted: TimescaleMode, recorded: str | None) -> str | None:
    """The usable TimescaleDB version (creating the extension if needed), or None."""
    if wanted == "off" and recorded != "timescaledb":
        return None
    row = await (
        await conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
    ).fetchone()
    if row is None and recorded is None:
        available = await (
            await conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
        ).fetchone()
        if available is not None:
            try:
                # in public, on every search path (also with SPCMON_DATABASE__SCHEMA_NAME set)
                await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb WITH SCHEMA public")
            except psycopg.Error as exc:  # e.g. not in shared_preload_libraries
                _log.warning("TimescaleDB is installed but cannot be enabled: %s", exc)
            row = await (
                await conn.execute(
                    "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
                )
            ).fetchone()
    if row is None and (wanted == "require" or recorded == "timescaledb"):
        why = "was created with it" if recorded == "timescaledb" else "requires it"
        raise StoreError(f"TimescaleDB is not available in this database, but the store {why}")
    return str(row[0]) if row is not None else None


async def apply_policies(conn: Conn, policies: TimescalePolicies) -> None:
    """Chunk sizing, compression, retention and aggregate refresh (TimescaleDB mode only)."""
    chunk = policies.chunk_interval()
    async with conn.transaction():
        await conn.execute("SELECT set_chunk_time_interval('measurements', %s)", (chunk,))
        await conn.execute("SELECT set_chunk_time_interval('verdicts', %s)", (chunk * 7,))
        for table in ("measurements", "verdicts"):
            await conn.execute("SELECT remove_compression_policy(%s, if_exists => true)", (table,))
            await conn.execute(
                "SELECT add_compression_policy(%s, compress_after => %s)",
                (table, policies.compress_after),
            )
            await conn.execute("SELECT remove_retention_policy(%s, if_exists => true)", (table,))
            if policies.retention is not None:
                await conn.execute(
                    "SELECT add_retention_policy(%s, drop_after => %s)",
                    (table, policies.retention),
                )
        refresh = (
            ("measurement_stats_1m", timedelta(days=7), timedelta(minutes=1)),
            ("measurement_stats_1h", timedelta(days=30), timedelta(hours=1)),
        )
        for view, window, bucket in refresh:
            await conn.execute(
                "SELECT remove_continuous_aggregate_policy(%s, if_exists => true)", (view,)
            )
            params = (view, policies.refresh_window(window), bucket, bucket)
            try:
                async with conn.transaction():  # a savepoint: older versions lack the option
                    # one batch over the whole window: batched refreshes (2.19+) start at
                    # the newest buckets and can leave late data in older ones stale
                    await conn.execute(
                        "SELECT add_continuous_aggregate_policy(%s, start_offset => %s, "
                        "end_offset => %s, schedule_interval => %s, buckets_per_batch => 0)",
                        params,
                    )
            except psycopg.errors.UndefinedFunction:
                await conn.execute(
                    "SELECT add_continuous_aggregate_policy(%s, start_offset => %s, "
                    "end_offset => %s, schedule_interval => %s)",
                    params,
                )
    _log.info(
        "TimescaleDB policies: chunks of %s, compress after %s, retention %s",
        chunk,
        policies.compress_after,
        policies.retention or "none (keep everything)",
    )
