"""The PGlite (WASM PostgreSQL 17 + TimescaleDB) test server speaks enough of the wire protocol
for psycopg 3: binding, pipelines, COPY, transactions, one client at a time, TimescaleDB's
hypertables, continuous aggregates, compression and retention, and a restart on the same data.

PGlite is a single backend: never hold two connections at once unless the second is meant to
wait in the server's queue.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from tests.support.pglite import PgliteServer, running_pglite

# Where PGlite is missing these fail with running_pglite()'s reason (the test command
# installs it from the lock file): the TimescaleDB path must not go untested silently.
pytestmark = pytest.mark.e2e


def _hypertable(conn: psycopg.Connection[Any], name: str, unique: bool = False) -> None:
    table = sql.Identifier(name)
    conn.execute(
        sql.SQL(
            "CREATE TABLE {} (time timestamptz NOT NULL, characteristic text NOT NULL,"
            " ingest_id bigint NOT NULL, value double precision)"
        ).format(table)
    )
    conn.execute("SELECT create_hypertable(%s, by_range('time', INTERVAL '1 day'))", (name,))
    if unique:
        conn.execute(sql.SQL("CREATE UNIQUE INDEX ON {} (ingest_id, time)").format(table))


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> PgliteServer:
    """A first server on a new data directory (initdb in WASM: seconds), stopped again.

    It leaves the extension and a hypertable ``kept`` with three rows, for the restart test.
    """
    data_dir = tmp_path_factory.mktemp("pglite") / "pgdata"
    # In autocommit: a rolled-back CREATE EXTENSION leaves the library loaded in PGlite's only
    # backend, and every later CREATE EXTENSION timescaledb fails until the server restarts.
    with running_pglite(data_dir) as server, psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        _hypertable(conn, "kept")
        conn.execute(
            "INSERT INTO kept SELECT now() - i * INTERVAL '1 day', 'c1', i, i"
            " FROM generate_series(0, 2) AS i"
        )
    return server


@pytest.fixture(scope="module")
def pglite(first_run: PgliteServer) -> Iterator[PgliteServer]:
    """The module's server: a restart on the first run's data directory."""
    with running_pglite(first_run.data_dir) as server:
        yield server


def test_version_and_timescaledb_extension(pglite: PgliteServer) -> None:
    with psycopg.connect(pglite.dsn, autocommit=True) as conn:
        version = conn.execute("SELECT version()").fetchone()
        assert version is not None
        assert version[0].startswith("PostgreSQL 17.")
        assert conn.info.server_version >= 170000
        assert conn.info.parameter_status("TimeZone") == "UTC"
        assert conn.info.parameter_status("integer_datetimes") == "on"
        conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        row = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
        ).fetchone()
        assert row is not None
        assert row[0].startswith("2.23")


def test_parameters_executemany_and_transactions(pglite: PgliteServer) -> None:
    now = datetime(2025, 3, 1, 12, 30, tzinfo=UTC)
    with psycopg.connect(pglite.dsn) as conn:
        params = (41, 2.5, "tab\there ünïcode", None, now, Decimal("1.25"), b"\x00\xff", [1, 2])
        row = conn.execute("SELECT %s + 1, %s * 2, %s, %s::text, %s, %s, %s, %s", params).fetchone()
        assert row == (
            42,
            5.0,
            "tab\there ünïcode",
            None,
            now,
            Decimal("1.25"),
            b"\x00\xff",
            [1, 2],
        )
        with conn.cursor(binary=True) as cur:
            assert cur.execute("SELECT %s::bigint, %s::text", (7, "b")).fetchone() == (7, "b")
        for i in range(8):  # past prepare_threshold: named server-side prepared statements
            assert conn.execute("SELECT %s::int * 3", (i,)).fetchone() == (i * 3,)

        conn.execute("CREATE TABLE kv (k int PRIMARY KEY, v text)")
        conn.commit()
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO kv VALUES (%s, %s)", [(i, f"v{i}") for i in range(200)])
            cur.executemany(
                "INSERT INTO kv VALUES (%s, %s) RETURNING k", [(1000, "a"), (1001, "b")],
                returning=True,
            )  # fmt: skip
            assert cur.fetchone() == (1000,)
        conn.commit()
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.cursor().executemany("INSERT INTO kv VALUES (%s, %s)", [(5000, "x"), (3, "dup")])
        conn.rollback()

        with conn.transaction():
            conn.execute("INSERT INTO kv VALUES (%s, %s)", (2000, "rolled back"))
            raise psycopg.Rollback
        with conn.transaction():
            conn.execute("INSERT INTO kv VALUES (%s, %s)", (2001, "kept"))
            with pytest.raises(psycopg.errors.UniqueViolation), conn.transaction():
                conn.execute("INSERT INTO kv VALUES (%s, %s)", (2001, "savepoint"))
        with pytest.raises(psycopg.errors.UndefinedColumn):
            conn.execute("SELECT nope FROM kv")
        conn.rollback()
        count = conn.execute("SELECT count(*), max(k) FROM kv WHERE k < 5000").fetchone()
        assert count == (203, 2001)
        assert conn.execute("SELECT v FROM kv WHERE k = 2001").fetchone() == ("kept",)


def test_copy_in_text_and_binary_and_out(pglite: PgliteServer) -> None:
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    awkward = "tab\tnewline\nbackslash\\ ünï"
    with psycopg.connect(pglite.dsn, autocommit=True) as conn:
        _hypertable(conn, "copied")
        with conn.cursor() as cur:
            with cur.copy("COPY copied (time, characteristic, ingest_id, value) FROM STDIN") as cp:
                for i in range(2000):  # ~80 kB: many TCP reads, many CopyData messages
                    cp.write_row((t0 + timedelta(seconds=i), awkward, i, None if i == 0 else i))
            binary = (
                "COPY copied (time, characteristic, ingest_id, value) FROM STDIN (FORMAT BINARY)"
            )
            with cur.copy(binary) as cp:
                cp.set_types(["timestamptz", "text", "int8", "float8"])
                for i in range(2000, 2100):
                    cp.write_row((t0 + timedelta(days=3, seconds=i), "bin", i, i / 2))
            summary = cur.execute(
                "SELECT count(*), count(value), sum(ingest_id) FILTER (WHERE characteristic = %s),"
                " sum(value) FILTER (WHERE characteristic = 'bin') FROM copied", (awkward,),
            ).fetchone()  # fmt: skip
            assert summary == (2100, 2099, sum(range(2000)), sum(i / 2 for i in range(2000, 2100)))

            with cur.copy("COPY (SELECT * FROM copied ORDER BY ingest_id) TO STDOUT") as cp:
                cp.set_types(["timestamptz", "text", "int8", "float8"])
                rows = list(cp.rows())
            assert len(rows) == 2100
            assert rows[0] == (t0, awkward, 0, None)
            assert rows[-1] == (t0 + timedelta(days=3, seconds=2099), "bin", 2099, 2099 / 2)

            # COPY inside a transaction, rolled back; a failing COPY leaves a usable connection.
            with conn.transaction():
                with cur.copy("COPY copied (time, characteristic, ingest_id) FROM STDIN") as cp:
                    cp.write_row((t0, "tx", -1))
                raise psycopg.Rollback
            with pytest.raises(psycopg.errors.UndefinedTable), cur.copy("COPY missing FROM STDIN"):
                pass
            bad = "COPY copied (time, characteristic, ingest_id) FROM STDIN"
            with pytest.raises(psycopg.errors.InvalidTextRepresentation), cur.copy(bad) as cp:
                cp.write_row((t0, "bad", "not a number"))
            assert cur.execute("SELECT count(*) FROM copied").fetchone() == (2100,)


def test_hypertable_and_time_bucket(pglite: PgliteServer) -> None:
    t0 = datetime(2025, 2, 1, tzinfo=UTC)
    with psycopg.connect(pglite.dsn, autocommit=True) as conn:
        _hypertable(conn, "measurements")
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO measurements VALUES (%s, %s, %s, %s)",
                [(t0 + timedelta(hours=6 * i), "c1", i, float(i)) for i in range(12)],
            )
        rows = conn.execute(
            "SELECT time_bucket('1 day', time) AS day, count(*), sum(value) FROM measurements"
            " GROUP BY day ORDER BY day"
        ).fetchall()
        assert rows == [
            (t0 + timedelta(days=d), 4, float(sum(range(4 * d, 4 * d + 4)))) for d in range(3)
        ]
        chunks = conn.execute(
            "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = %s",
            ("measurements",),
        ).fetchone()
        assert chunks == (3,)
        assert conn.execute("SELECT count(*) FROM ONLY measurements").fetchone() == (0,)


def test_continuous_aggregate_with_policy_and_real_time(pglite: PgliteServer) -> None:
    with psycopg.connect(pglite.dsn, autocommit=True) as conn:
        _hypertable(conn, "raw")
        base = conn.execute("SELECT date_trunc('minute', now()) - INTERVAL '10 minutes'").fetchone()
        assert base is not None
        start: datetime = base[0]
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO raw VALUES (%s, 'c1', %s, %s)",
                [(start + timedelta(seconds=20 * i), i, float(i)) for i in range(12)],
            )
        conn.execute(
            "CREATE MATERIALIZED VIEW raw_1m"
            " WITH (timescaledb.continuous, timescaledb.materialized_only = true) AS"
            " SELECT time_bucket('1 minute', time) AS bucket, characteristic, count(*) AS n,"
            " sum(value) AS total, min(value) AS lo, max(value) AS hi"
            " FROM raw GROUP BY bucket, characteristic WITH NO DATA"
        )
        job = conn.execute(
            "SELECT add_continuous_aggregate_policy('raw_1m', start_offset => INTERVAL '1 day',"
            " end_offset => INTERVAL '1 minute', schedule_interval => INTERVAL '1 hour',"
            " buckets_per_batch => 0)"
        ).fetchone()
        assert job is not None
        conn.execute("CALL refresh_continuous_aggregate('raw_1m', NULL, NULL)")
        expected = [
            (
                start + timedelta(minutes=m),
                "c1",
                3,
                float(9 * m + 3),
                float(3 * m),
                float(3 * m + 2),
            )
            for m in range(4)
        ]
        assert conn.execute("SELECT * FROM raw_1m ORDER BY bucket").fetchall() == expected

        conn.execute(
            "INSERT INTO raw VALUES (%s, 'c1', 100, 100.0)", (start + timedelta(minutes=1),)
        )
        conn.execute("CALL run_job(%s)", (job[0],))
        assert conn.execute("SELECT n, total FROM raw_1m ORDER BY bucket").fetchall()[1] == (
            4,
            112.0,
        )

        # Real-time aggregation: rows past the materialized watermark show when asked to.
        conn.execute("INSERT INTO raw VALUES (now() + INTERVAL '1 hour', 'c1', 101, 5.0)")
        assert conn.execute("SELECT count(*) FROM raw_1m").fetchone() == (4,)
        conn.execute("ALTER MATERIALIZED VIEW raw_1m SET (timescaledb.materialized_only = false)")
        assert conn.execute("SELECT count(*) FROM raw_1m").fetchone() == (5,)


def test_compression_policy_and_on_conflict(pglite: PgliteServer) -> None:
    with psycopg.connect(pglite.dsn, autocommit=True) as conn:
        _hypertable(conn, "compressed", unique=True)
        conn.execute(
            "INSERT INTO compressed SELECT now() - i * INTERVAL '4 hours', 'c' || (i % 3), i, i"
            " FROM generate_series(0, 29) AS i"
        )
        before = conn.execute("SELECT count(*), sum(value) FROM compressed").fetchone()
        conn.execute(
            "ALTER TABLE compressed SET (timescaledb.compress,"
            " timescaledb.compress_segmentby = 'characteristic',"
            " timescaledb.compress_orderby = 'time DESC')"
        )
        job = conn.execute(
            "SELECT add_compression_policy('compressed', INTERVAL '2 days')"
        ).fetchone()
        assert job is not None
        conn.execute("CALL run_job(%s)", (job[0],))
        states = conn.execute(
            "SELECT is_compressed, range_end < now() - INTERVAL '2 days' AS old"
            " FROM timescaledb_information.chunks WHERE hypertable_name = 'compressed'"
        ).fetchall()
        assert any(old for _, old in states)
        assert all(is_compressed == old for is_compressed, old in states)
        assert conn.execute("SELECT count(*), sum(value) FROM compressed").fetchone() == before
        in_segment = conn.execute(
            "SELECT count(*) FROM compressed WHERE characteristic = 'c1' AND value >= 24"
        ).fetchone()
        assert in_segment == (2,)  # i = 25, 28 (from compressed chunks)

        on_conflict = (
            "INSERT INTO compressed SELECT time, characteristic, ingest_id, value FROM compressed"
            " WHERE ingest_id IN (0, 29) UNION ALL SELECT now(), 'c9', 999, 9"
            " ON CONFLICT DO NOTHING"
        )
        assert conn.execute(on_conflict).rowcount == 1  # only ingest_id 999 is new
        assert conn.execute("SELECT count(*) FROM compressed").fetchone() == (31,)


def test_retention_policy_drops_old_chunks(pglite: PgliteServer) -> None:
    with psycopg.connect(pglite.dsn, autocommit=True) as conn:
        _hypertable(conn, "retained")
        conn.execute(
            "INSERT INTO retained VALUES (now() - INTERVAL '40 days', 'c1', 1, 1),"
            " (now() - INTERVAL '35 days', 'c1', 2, 2), (now(), 'c1', 3, 3)"
        )
        job = conn.execute("SELECT add_retention_policy('retained', INTERVAL '30 days')").fetchone()
        assert job is not None
        conn.execute("CALL run_job(%s)", (job[0],))
        assert conn.execute("SELECT ingest_id FROM retained").fetchall() == [(3,)]
        chunks = conn.execute(
            "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'retained'"
        ).fetchone()
        assert chunks == (1,)


def test_clients_in_sequence_get_fresh_sessions(pglite: PgliteServer) -> None:
    with psycopg.connect(pglite.dsn) as conn:
        conn.execute("CREATE TABLE handed_over (a int)")
        conn.execute("INSERT INTO handed_over VALUES (%s)", (1,), prepare=True)
        conn.execute("SET application_name = 'first'")
    with psycopg.connect(pglite.dsn) as conn:  # the same prepared-statement names again
        conn.execute("INSERT INTO handed_over VALUES (%s)", (2,), prepare=True)
        assert conn.execute("SELECT sum(a) FROM handed_over").fetchone() == (3,)
        assert conn.execute("SHOW application_name").fetchone() == ("",)


def _connect_and_look(dsn: str) -> tuple[float, tuple[Any, ...] | None]:
    with psycopg.connect(dsn, connect_timeout=30) as conn:
        served_at = time.monotonic()
        row = conn.execute(
            "SELECT to_regclass('queued_uncommitted')::text, to_regclass('queued_temp')::text,"
            " current_setting('search_path'), current_setting('TimeZone')"
        ).fetchone()
        return served_at, row


def test_second_client_waits_until_the_first_leaves(pglite: PgliteServer) -> None:
    with ThreadPoolExecutor(max_workers=1) as executor:
        first = psycopg.connect(pglite.dsn)
        try:
            first.execute("CREATE TEMP TABLE queued_temp (a int)")
            first.execute("CREATE TABLE queued_uncommitted (a int)")  # never committed
            first.execute("SET search_path TO pg_catalog")
            second = executor.submit(_connect_and_look, pglite.dsn)
            time.sleep(1.0)
            assert not second.done()
            assert first.execute("SELECT 1").fetchone() == (1,)
        finally:
            left_at = time.monotonic()
            first.close()
        served_at, row = second.result(timeout=30)
    assert served_at >= left_at
    assert row == (None, None, "public", "UTC")


@pytest.mark.anyio
async def test_async_pool_with_a_single_connection(pglite: PgliteServer) -> None:
    async with AsyncConnectionPool(
        pglite.dsn, min_size=1, max_size=1, open=False, kwargs={"autocommit": True}
    ) as pool:

        async def double(i: int) -> int:
            async with pool.connection() as conn:
                cur = await conn.execute("SELECT %s::int * 2", (i,))
                row = await cur.fetchone()
                assert row is not None
                return int(row[0])

        assert await asyncio.gather(*(double(i) for i in range(10))) == [2 * i for i in range(10)]
        async with pool.connection() as conn, conn.transaction():
            await conn.execute("CREATE TABLE pooled (a int)")
            await conn.execute("INSERT INTO pooled VALUES (1)")
        async with pool.connection() as conn:
            cur = await conn.execute("SELECT count(*) FROM pooled")
            assert await cur.fetchone() == (1,)


def test_restart_on_the_same_data_dir_keeps_the_data(
    first_run: PgliteServer, pglite: PgliteServer
) -> None:
    assert first_run.process.returncode == 0  # closed PGlite cleanly on SIGTERM
    assert pglite.data_dir == first_run.data_dir
    assert pglite.log_path.read_text().count("listening on 127.0.0.1:") == 2
    with psycopg.connect(pglite.dsn, autocommit=True) as conn:
        assert conn.execute("SELECT count(*), sum(value) FROM kept").fetchone() == (3, 3.0)
        # TimescaleDB is live after the reopen: a new day's row lands in a new chunk.
        conn.execute("INSERT INTO kept VALUES (now() + INTERVAL '2 days', 'c1', 9, 9)")
        assert conn.execute("SELECT count(*) FROM ONLY kept").fetchone() == (0,)
        chunks = conn.execute(
            "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'kept'"
        ).fetchone()
        assert chunks == (4,)
