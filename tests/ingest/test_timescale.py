"""TimescaleDB features of the PostgreSQL store, for real (PGlite: PostgreSQL 17.5 with
TimescaleDB 2.23 in WASM): hypertables sized from the expected rate, compression,
retention and continuous aggregates, with their background jobs run by hand (PGlite
never fires them by itself).

PGlite is one session: the store's pool (one connection) is closed before a test looks
at the catalogue with a connection of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

from ingest.pg_migrate import TimescalePolicies
from ingest.pg_store import PgOptions, PostgresStore
from tests.ingest.records import measurement
from tests.support.databases import fresh_schema_name
from tests.support.pglite import PgliteServer

pytestmark = pytest.mark.anyio

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
POLICIES = TimescalePolicies(
    expected_rate=100.0, compress_after=timedelta(days=7), retention=timedelta(days=30)
)


def _options(schema: str, policies: TimescalePolicies = POLICIES) -> PgOptions:
    return PgOptions(max_connections=1, timescaledb="require", schema=schema, policies=policies)


async def _sql(
    server: PgliteServer, schema: str, query: str, params: Sequence[Any] = ()
) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(server.dsn, autocommit=True) as conn:
        await conn.execute(sql.SQL("SET search_path TO {}, public").format(sql.Identifier(schema)))
        cur = await conn.execute(query, params)  # type: ignore[arg-type]  # test constants
        return await cur.fetchall() if cur.description else []


async def _run_jobs(server: PgliteServer, schema: str, proc: str) -> int:
    jobs = await _sql(
        server,
        schema,
        "SELECT job_id FROM timescaledb_information.jobs "
        "WHERE proc_name = %s AND hypertable_schema = %s ORDER BY job_id",
        (proc, schema),
    )
    for (job_id,) in jobs:
        await _sql(server, schema, "CALL run_job(%s)", (job_id,))
    return len(jobs)


async def _write(server: PgliteServer, schema: str, items: list[Any]) -> list[Any]:
    store = PostgresStore(server.dsn, _options(schema))
    await store.open()
    try:
        return await store.add_measurements(items)
    finally:
        await store.close()


async def test_the_schema_is_hypertables_with_the_configured_policies(
    pglite: PgliteServer, anyio_backend: str
) -> None:
    schema = fresh_schema_name()
    store = PostgresStore(pglite.dsn, _options(schema))
    await store.open()
    assert store.kind == "timescaledb"
    assert store.schema_state is not None
    assert store.schema_state.timescaledb_version is not None
    await store.close()

    chunks = dict(
        await _sql(
            pglite,
            schema,
            "SELECT hypertable_name, time_interval FROM timescaledb_information.dimensions "
            "WHERE hypertable_schema = %s",
            (schema,),
        )
    )
    # 20 M rows per chunk at 100 rows/s: 200,000 s; verdicts 7 times longer
    assert chunks == {
        "measurements": timedelta(seconds=200_000),
        "verdicts": timedelta(seconds=1_400_000),
    }
    [(segment, order)] = await _sql(
        pglite,
        schema,
        "SELECT segmentby, orderby FROM timescaledb_information.hypertable_compression_settings "
        "WHERE hypertable = 'measurements'::regclass",
    )
    assert (segment, order.replace('"', "")) == ("characteristic", "time DESC,seq DESC")
    jobs = await _sql(
        pglite,
        schema,
        "SELECT proc_name, coalesce(hypertable_name, ''), config "
        "FROM timescaledb_information.jobs WHERE hypertable_schema = %s",
        (schema,),
    )
    configs = {(proc, table): config for proc, table, config in jobs}
    assert configs[("policy_compression", "measurements")]["compress_after"] == "7 days"
    assert configs[("policy_retention", "measurements")]["drop_after"] == "30 days"
    assert configs[("policy_retention", "verdicts")]["drop_after"] == "30 days"
    refresh = configs[("policy_refresh_continuous_aggregate", "measurement_stats_1h")]
    assert refresh["start_offset"] == "29 days"  # inside the retention: never wipes history
    assert refresh["buckets_per_batch"] == 0


async def test_changed_policies_take_effect_at_the_next_start(
    pglite: PgliteServer, anyio_backend: str
) -> None:
    schema = fresh_schema_name()
    await _write(pglite, schema, [])
    keep_all = TimescalePolicies(expected_rate=1e6, compress_after=timedelta(days=2))
    store = PostgresStore(pglite.dsn, _options(schema, keep_all))
    await store.open()
    await store.close()

    jobs = await _sql(
        pglite,
        schema,
        "SELECT proc_name, config FROM timescaledb_information.jobs "
        "WHERE hypertable_schema = %s AND hypertable_name = 'measurements'",
        (schema,),
    )
    assert [proc for proc, _ in jobs] == ["policy_compression"]  # retention removed
    assert jobs[0][1]["compress_after"] == "2 days"
    [(interval,)] = await _sql(
        pglite,
        schema,
        "SELECT time_interval FROM timescaledb_information.dimensions "
        "WHERE hypertable_schema = %s AND hypertable_name = 'measurements'",
        (schema,),
    )
    assert interval == timedelta(hours=1)  # a fast plant: the shortest chunk allowed


async def test_compressed_chunks_stay_readable_and_still_refuse_resends(
    pglite: PgliteServer, anyio_backend: str
) -> None:
    schema = fresh_schema_name()
    old = [measurement(i, time=NOW - timedelta(days=10, seconds=-i)) for i in range(20)]
    recent = [measurement(100 + i, time=NOW - timedelta(minutes=5, seconds=-i)) for i in range(5)]
    assert len(await _write(pglite, schema, old + recent)) == 25

    assert await _run_jobs(pglite, schema, "policy_compression") == 2
    compressed = await _sql(
        pglite,
        schema,
        "SELECT count(*) FILTER (WHERE is_compressed), count(*) "
        "FROM timescaledb_information.chunks WHERE hypertable_name = 'measurements' "
        "AND hypertable_schema = %s",
        (schema,),
    )
    assert compressed[0][0] >= 1  # the ten-day-old chunk
    assert compressed[0][0] < compressed[0][1]  # the recent one is not

    store = PostgresStore(pglite.dsn, _options(schema))
    await store.open()
    try:
        assert await store.add_measurements([old[3], recent[0]]) == []  # into compressed too
        page = await store.history("c1", NOW - timedelta(days=11), NOW, limit=100)
        assert page.items == old + recent
        [bucket] = await store.buckets(
            "c1", NOW - timedelta(days=11), NOW - timedelta(days=9), timedelta(days=1)
        )
        assert bucket.n == 20
        assert await store.charted_tail("c1", 7) == old[-2:] + recent
    finally:
        await store.close()


async def test_retention_drops_raw_chunks_older_than_configured(
    pglite: PgliteServer, anyio_backend: str
) -> None:
    schema = fresh_schema_name()
    ancient = [measurement(i, time=NOW - timedelta(days=45, seconds=-i)) for i in range(3)]
    fresh = [measurement(10 + i, time=NOW - timedelta(hours=1, seconds=-i)) for i in range(3)]
    await _write(pglite, schema, ancient + fresh)

    assert await _run_jobs(pglite, schema, "policy_retention") == 2

    assert await _sql(pglite, schema, "SELECT count(*) FROM measurements") == [(3,)]


async def test_aggregates_follow_late_data_after_a_refresh(
    pglite: PgliteServer, anyio_backend: str
) -> None:
    schema = fresh_schema_name()
    minute = NOW - timedelta(hours=3)
    await _write(pglite, schema, [measurement(i, time=minute, value=1.0) for i in range(3)])
    assert await _run_jobs(pglite, schema, "policy_refresh_continuous_aggregate") == 2
    materialised = await _sql(
        pglite, schema, "SELECT n FROM measurement_stats_1m WHERE bucket = %s", (minute,)
    )
    assert materialised == [(3,)]

    await _write(pglite, schema, [measurement(9, time=minute + timedelta(seconds=30), value=5.0)])
    await _run_jobs(pglite, schema, "policy_refresh_continuous_aggregate")

    store = PostgresStore(pglite.dsn, _options(schema))
    await store.open()
    try:
        for width in (timedelta(minutes=1), timedelta(hours=1)):
            [bucket] = await store.buckets("c1", minute - timedelta(hours=1), NOW, width)
            assert (bucket.n, bucket.maximum, bucket.total) == (4, 5.0, pytest.approx(8.0))
    finally:
        await store.close()
