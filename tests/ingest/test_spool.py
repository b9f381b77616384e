"""The disk spool: batches survive the database going away, and replay exactly once.

Uses real PostgreSQL servers; a test that stops its server starts one of its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta, timezone
from pathlib import Path

import psycopg
import pytest

from ingest.errors import StoreError, StoreUnavailable
from ingest.model import CostCategory, DeadLetter, Quality
from ingest.pg_schema import LATEST_VERSION
from ingest.pg_store import PgOptions, PostgresStore
from ingest.spool import Spool, SpooledStore
from ingest.spool_codec import Record, decode, encode
from tests.ingest.records import T0, cost_event, measurement, verdict
from tests.support.databases import fresh_database, with_database
from tests.support.postgres import PostgresServer, running_postgres

pytestmark = pytest.mark.anyio

FAST_RETRY = (0.05, 0.5)
OPTIONS = PgOptions(max_connections=2, acquire_timeout=1.0)


@pytest.fixture
def own_server() -> Iterator[PostgresServer]:
    """A server this test may stop and start."""
    with running_postgres() as server:
        yield server


async def _count(dsn: str) -> tuple[int, int]:
    """Rows and distinct ingest ids in the measurements table."""
    sql = "SELECT count(*), count(DISTINCT ingest_id) FROM measurements"
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        row = await (await conn.execute(sql)).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])


@asynccontextmanager
async def _spooled(dsn: str, tmp_path: Path) -> AsyncIterator[SpooledStore]:
    """An opened spooled PostgreSQL store over ``tmp_path/spool``, closed afterwards."""
    store = SpooledStore(PostgresStore(dsn, OPTIONS), Spool(tmp_path / "spool"), FAST_RETRY)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


# the spool files ---------------------------------------------------------------------


def test_every_record_kind_round_trips_through_the_codec_unchanged() -> None:
    batches: dict[str, list[Record]] = {
        "measurements": [
            measurement(0, value=0.1 + 0.2, part=None, lot=None, quality=Quality.UNCERTAIN),
            measurement(1, time=T0.astimezone(timezone(timedelta(hours=8)))),
        ],
        "verdicts": [verdict(0, ok=False, defects=("scratch", "dent"))],
        "cost_events": [cost_event(0, category=CostCategory.WARRANTY, note="é ü 中")],
        "dead_letters": [DeadLetter(T0, "mqtt:x", "bad", '{"a": "\\u00e9\x00"}')],
    }
    for kind, records in batches.items():
        assert decode(kind, json.loads(json.dumps(encode(records)))) == records


def test_a_spool_reopened_continues_its_numbering_and_counts(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append("measurements", [measurement(0), measurement(1)])
    spool.append("verdicts", [verdict(0)])
    (tmp_path / ".000000000009.measurements.json.tmp").write_text("torn write")  # crash leftover

    spool.close()  # one process holds a spool directory at a time
    again = Spool(tmp_path)

    assert [p.name for p in again.pending()] == [
        "000000000001.measurements.json",
        "000000000002.verdicts.json",
    ]
    assert again.rows == 3
    assert not (tmp_path / ".000000000009.measurements.json.tmp").exists()
    again.append("measurements", [measurement(2)])
    assert again.pending()[-1].name == "000000000003.measurements.json"
    assert again.read(again.pending()[0]) == [measurement(0), measurement(1)]
    again.close()


def test_a_spool_that_cannot_write_says_where_and_what(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    (tmp_path / "spool" / ".lock").unlink()
    (tmp_path / "spool").rmdir()
    (tmp_path / "spool").write_text("not a directory")  # fails for root too

    with pytest.raises(StoreError, match=r"cannot spool 1 measurements to .*spool"):
        spool.append("measurements", [measurement(0)])
    spool.close()


def test_a_spool_directory_serves_one_process_at_a_time(tmp_path: Path) -> None:
    first = Spool(tmp_path)
    with pytest.raises(StoreError, match="in use by another process"):
        Spool(tmp_path)
    first.close()
    Spool(tmp_path).close()


# the spooled store ---------------------------------------------------------------------


@pytest.fixture
async def spooled(postgres: PostgresServer, tmp_path: Path) -> AsyncIterator[SpooledStore]:
    dsn = await fresh_database(postgres.dsn)
    store = SpooledStore(PostgresStore(dsn, OPTIONS), Spool(tmp_path / "spool"), FAST_RETRY)
    await store.open()
    yield store
    await store.close()


async def test_with_the_database_up_writes_go_straight_through(spooled: SpooledStore) -> None:
    assert await spooled.add_measurements([measurement(0), measurement(1)]) == [
        measurement(0),
        measurement(1),
    ]
    assert await spooled.add_measurements([measurement(1)]) == []  # the database dedupes
    assert await spooled.add_verdicts([verdict(0)]) == 1
    assert spooled.spool.pending() == []
    assert not spooled.degraded
    assert spooled.kind == "postgresql"


async def test_batches_written_while_the_database_is_down_arrive_in_order_once_it_is_back(
    own_server: PostgresServer, tmp_path: Path
) -> None:
    dsn = await fresh_database(own_server.dsn)
    async with _spooled(dsn, tmp_path) as store:
        await store.add_measurements([measurement(0)])
        own_server.stop()

        # accepted while down: counted as stored, kept on disk
        assert await store.add_measurements([measurement(1), measurement(2)]) == [
            measurement(1),
            measurement(2),
        ]
        assert await store.add_verdicts([verdict(0)]) == 1
        assert await store.add_cost_events([cost_event(0)]) == 1
        await store.add_dead_letters([DeadLetter(T0, "http", "bad row", "{}")])
        assert store.degraded
        assert store.spool.rows == 5
        with pytest.raises(StoreUnavailable):
            await store.count_measurements()  # reads say so plainly

        own_server.start()
        assert await store.drain(timeout_s=30)

        assert not store.degraded
        assert await store.recent_measurements("c1", 10) == [measurement(i) for i in range(3)]
        assert await store.count_verdicts() == 1
        assert len(await store.list_dead_letters()) == 1
        assert list((tmp_path / "spool").glob("*.json")) == []


async def test_a_replay_interrupted_after_commit_stores_nothing_twice(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    dsn = await fresh_database(postgres.dsn)
    batch = [measurement(i) for i in range(5)]
    first = PostgresStore(dsn, OPTIONS)
    await first.open()
    await first.add_measurements(batch)  # committed ...
    await first.close()
    spool = Spool(tmp_path / "spool")
    spool.append("measurements", batch)  # ... but the process died before deleting the file
    spool.append("measurements", [measurement(5)])

    spool.close()  # one process holds a spool directory at a time
    async with _spooled(dsn, tmp_path) as store:
        assert await store.drain(timeout_s=30)
        assert await _count(dsn) == (6, 6)


async def test_a_batch_the_database_refuses_for_good_is_set_aside_not_retried_forever(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    dsn = await fresh_database(postgres.dsn)
    spool = Spool(tmp_path / "spool")
    spool.append("measurements", [measurement(0)])
    spool.append("measurements", [measurement(1)])
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute("ALTER TABLE measurements ADD CONSTRAINT small CHECK (value < 10.005)")

    spool.close()  # one process holds a spool directory at a time
    async with _spooled(dsn, tmp_path) as store:
        assert await store.drain(timeout_s=30)
        assert await _count(dsn) == (1, 1)
        [kept] = (tmp_path / "spool" / "rejected").iterdir()
        assert kept.name == "000000000002.measurements.json"


async def test_a_stream_of_100000_survives_a_20_second_database_outage_exactly_once(
    own_server: PostgresServer, tmp_path: Path
) -> None:
    """The issue's fault test: stop PostgreSQL mid-stream, restart it 20 s later."""
    dsn = await fresh_database(own_server.dsn)
    store = SpooledStore(PostgresStore(dsn, OPTIONS), Spool(tmp_path / "spool"), FAST_RETRY)
    await store.open()
    total, batch_size = 100_000, 500
    batches = [
        [measurement(i, ingest_id=f"f-{i}") for i in range(start, start + batch_size)]
        for start in range(0, total, batch_size)
    ]
    outage = asyncio.Event()

    async def produce() -> None:
        for k, batch in enumerate(batches):
            await store.add_measurements(batch)
            if k % 10 == 0:
                await store.add_measurements(batches[k - 1] if k else batch)  # a resend
            if k == len(batches) // 3:
                outage.set()
            await asyncio.sleep(0.16 if outage.is_set() else 0)  # stream on through the outage

    async def fail_and_recover() -> None:
        await outage.wait()
        await asyncio.to_thread(own_server.stop)
        await asyncio.sleep(20)
        await asyncio.to_thread(own_server.start)

    try:
        await asyncio.gather(produce(), fail_and_recover())
        assert store.spooled_total > 0  # the outage really hit the stream
        assert await store.drain(timeout_s=120)
        assert await _count(dsn) == (total, total)
    finally:
        await store.close()


async def test_an_unreadable_batch_file_is_set_aside_and_the_rest_replayed(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    dsn = await fresh_database(postgres.dsn)
    spool = Spool(tmp_path / "spool")
    spool.append("measurements", [measurement(0)])
    spool.append("measurements", [measurement(1)])
    (tmp_path / "spool" / "000000000001.measurements.json").write_text('{"rows": [{"time": 1}]}')

    spool.close()  # one process holds a spool directory at a time
    async with _spooled(dsn, tmp_path) as store:
        assert not store.degraded  # open() replayed what it could before returning
        assert await store.recent_measurements("c1", 5) == [measurement(1)]
        assert [p.name for p in (tmp_path / "spool" / "rejected").iterdir()] == [
            "000000000001.measurements.json"
        ]


async def test_the_replay_catches_up_with_a_live_stream(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    dsn = await fresh_database(postgres.dsn)
    spool = Spool(tmp_path / "spool")
    for k in range(200):  # a long outage's worth of small batches
        spool.append("measurements", [measurement(k, ingest_id=f"old-{k}")])
    spool.close()  # one process holds a spool directory at a time
    store = SpooledStore(
        PostgresStore(dsn, OPTIONS), Spool(tmp_path / "spool"), FAST_RETRY, open_drain_s=0
    )
    await store.open()
    try:
        for k in range(100):  # new batches keep arriving behind the backlog
            await store.add_measurements([measurement(1000 + k, ingest_id=f"new-{k}")])
            await asyncio.sleep(0.005)
        assert await store.drain(timeout_s=30)
        assert await _count(dsn) == (300, 300)
        page = await store.history("c1", T0, T0 + timedelta(hours=1), limit=1000)
        assert len(page.items) == 300
    finally:
        await store.close()


async def test_a_stalled_database_sends_writes_to_the_spool_within_the_timeout(
    own_server: PostgresServer, tmp_path: Path
) -> None:
    dsn = await fresh_database(own_server.dsn)
    store = SpooledStore(
        PostgresStore(dsn, PgOptions(max_connections=2, acquire_timeout=1.0)),
        Spool(tmp_path / "spool"),
        FAST_RETRY,
        write_timeout_s=1.0,
    )
    await store.open()
    try:
        await store.add_measurements([measurement(0)])
        stalled = _server_processes(own_server)
        for pid in stalled:
            os.kill(pid, signal.SIGSTOP)  # alive but silent: no RST, no error
        try:
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            assert await store.add_measurements([measurement(1)]) == [measurement(1)]
            assert loop.time() - t0 < 3
            assert store.degraded
        finally:
            for pid in stalled:
                os.kill(pid, signal.SIGCONT)
        assert await store.drain(timeout_s=60)
        assert await _count(dsn) == (2, 2)
    finally:
        await store.close()


async def test_instances_starting_together_on_a_new_database_migrate_it_once(
    postgres: PostgresServer,
) -> None:
    name = f"race_{os.getpid()}_{id(postgres) % 1000}"
    async with await psycopg.AsyncConnection.connect(postgres.dsn, autocommit=True) as conn:
        await conn.execute(f"DROP DATABASE IF EXISTS {name}")
        await conn.execute(f"CREATE DATABASE {name}")
    dsn = with_database(postgres.dsn, name)
    stores = [PostgresStore(dsn, PgOptions(max_connections=1, schema="plant")) for _ in range(6)]

    await asyncio.gather(*(s.open() for s in stores))
    try:
        applied = [s.schema_state.applied for s in stores if s.schema_state]
        assert sorted(applied) == [[], [], [], [], [], list(range(1, LATEST_VERSION + 1))]
    finally:
        await asyncio.gather(*(s.close() for s in stores))


def _server_processes(server: PostgresServer) -> list[int]:
    """The postmaster and its children (every backend): all must stop to stall a server."""
    postmaster = int((server.data_dir / "postmaster.pid").read_text().split()[0])
    children = [
        int(stat.name)
        for stat in Path("/proc").iterdir()
        if stat.name.isdigit() and _parent(stat) == postmaster
    ]
    return [postmaster, *children]


def _parent(proc_dir: Path) -> int | None:
    try:
        fields = (proc_dir / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1])
