"""PostgreSQL store: sustained write rate through the interface, against raw COPY, and the
latency of the dashboard's bucketed query on a 10-million-row table.

    .venv/bin/python -m benchmarks.store_write [--rows 500000] [--repeat 3] [--big 10000000]

Without ``--dsn`` it starts a throwaway PostgreSQL server from the installed binaries
(durable settings: fsync and synchronous commit on, as in production). Each measurement
of a run uses a freshly migrated database, so both write paths start from the same empty
table with the same indexes:

1. the interface: ``PostgresStore.add_measurements`` in batches of 5,000 (the pipeline's
   largest batch), which stages by binary COPY and inserts with ON CONFLICT DO NOTHING
   RETURNING, so that resends are dropped and the caller learns which rows were new;
2. the ceiling: raw binary ``COPY`` of the same rows straight into ``measurements``
   (no duplicate check), the fastest way PostgreSQL takes rows.

Then ``--big`` rows (100 characteristics, one reading per second each) are generated
server-side and the last 24 h of one characteristic, bucketed by minute, are queried
``--queries`` times through ``PostgresStore.buckets``; p50 and p95 are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg

from ingest.model import Measurement
from ingest.pg_store import PostgresStore
from tests.support.databases import fresh_database
from tests.support.postgres import DURABLE_SETTINGS, running_postgres

# Durable (fsync, full-page writes and synchronous commit on, as PostgreSQL ships) with
# the memory and WAL sizing a tuning tool such as timescaledb-tune gives a small server.
SERVER_SETTINGS = {
    **DURABLE_SETTINGS,
    "shared_buffers": "1GB",
    "wal_buffers": "64MB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "15min",
    "work_mem": "32MB",
}
N_CHARS = 100
T_END = datetime(2026, 11, 1, tzinfo=UTC)


def _rows(n: int) -> list[Measurement]:
    start = T_END - timedelta(seconds=n // N_CHARS + 1)
    return [
        Measurement(
            start + timedelta(seconds=i // N_CHARS),
            f"char{i % N_CHARS:03d}",
            25.0 + (i % 97) * 1e-4,
            f"bench-{i}",
            "bench",
            f"S{i:09d}",
            "L1",
        )
        for i in range(n)
    ]


async def _through_interface(dsn: str, rows: list[Measurement], batch: int) -> float:
    store = PostgresStore(dsn)
    await store.open()
    try:
        t0 = time.perf_counter()
        for k in range(0, len(rows), batch):
            await store.add_measurements(rows[k : k + batch])
        return time.perf_counter() - t0
    finally:
        await store.close()


async def _raw_copy(dsn: str, rows: list[Measurement], batch: int) -> float:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        t0 = time.perf_counter()
        for k in range(0, len(rows), batch):
            async with (
                conn.transaction(),
                conn.cursor() as cur,
                cur.copy(
                    "COPY measurements (time, characteristic, value, ingest_id, source, part, "
                    "lot, quality) FROM STDIN (FORMAT BINARY)"
                ) as copy,
            ):
                copy.set_types(
                    ["timestamptz", "text", "float8", "text", "text", "text", "text", "text"]
                )
                for m in rows[k : k + batch]:
                    await copy.write_row(
                        (m.time, m.characteristic, m.value, m.ingest_id, m.source, m.part,
                         m.lot, m.quality.value)
                    )  # fmt: skip
        return time.perf_counter() - t0


async def _query_latency(dsn: str, big: int, queries: int) -> tuple[float, float, int]:
    seconds = big // N_CHARS
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO measurements (time, characteristic, value, ingest_id, source, quality) "
            "SELECT %s - make_interval(secs => s), 'char' || lpad(c::text, 3, '0'), "
            "25 + random() * 0.01, 'g-' || c || '-' || s, 'bench', 'good' "
            "FROM generate_series(1, %s) AS s, generate_series(0, %s) AS c",
            (T_END, seconds, N_CHARS - 1),
        )
        await conn.execute("VACUUM ANALYZE measurements")
        count = await (await conn.execute("SELECT count(*) FROM measurements")).fetchone()
    store = PostgresStore(dsn)
    await store.open()
    try:
        latencies = []
        buckets = 0
        for q in range(queries):
            char = f"char{q % N_CHARS:03d}"
            t0 = time.perf_counter()
            got = await store.buckets(char, T_END - timedelta(days=1), T_END, timedelta(minutes=1))
            latencies.append(time.perf_counter() - t0)
            buckets = len(got)
    finally:
        await store.close()
    assert count is not None
    print(f"  table rows: {count[0]:,}; buckets per answer: {buckets}")
    ordered = sorted(latencies)
    return statistics.median(ordered), ordered[int(0.95 * (len(ordered) - 1))], int(count[0])


@contextlib.contextmanager
def _server(dsn: str | None) -> Iterator[str]:
    if dsn:
        yield dsn
        return
    with running_postgres(settings=SERVER_SETTINGS) as server:
        yield server.dsn


async def _main(args: argparse.Namespace) -> None:
    with _server(args.dsn) as server_dsn:
        rows = _rows(args.rows)
        print(f"writing {len(rows):,} measurements of {N_CHARS} characteristics, "
              f"batches of {args.batch:,}; median of {args.repeat} alternating runs")  # fmt: skip
        times: dict[str, list[float]] = {"interface": [], "raw": []}
        for _ in range(args.repeat):  # alternate, so drift on a shared machine hits both
            times["interface"].append(
                await _through_interface(await fresh_database(server_dsn), rows, args.batch)
            )
            times["raw"].append(await _raw_copy(await fresh_database(server_dsn), rows, args.batch))
        r_if = len(rows) / statistics.median(times["interface"])
        r_raw = len(rows) / statistics.median(times["raw"])
        print(f"  interface (add_measurements): {r_if:>10,.0f} rows/s")
        print(f"  raw binary COPY (ceiling):    {r_raw:>10,.0f} rows/s")
        print(f"  ratio interface / raw COPY:   {r_if / r_raw:>10.2f}")
        print(f"bucketed query, {args.big:,} rows, last 24 h of one characteristic by minute")
        p50, p95, _ = await _query_latency(await fresh_database(server_dsn), args.big, args.queries)
        print(f"  p50 {p50 * 1e3:.1f} ms, p95 {p95 * 1e3:.1f} ms over {args.queries} queries")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--big", type=int, default=10_000_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--dsn", help="an existing server (superuser DSN); default: start one")
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
