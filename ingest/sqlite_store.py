"""Embedded SQLite store: the zero-set-up default (one file, WAL mode).

sqlite3 is blocking, so every call runs on one dedicated worker thread that owns the
connection; the event loop only awaits. Each write batch is one transaction.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

from ingest import sqlite_alarms
from ingest.capability_sql import SQLITE_ADD, SQLITE_TOTALS, sums_row, totals_from_rows
from ingest.errors import StoreError
from ingest.model import (
    CostCategory,
    CostEvent,
    DeadLetter,
    InspectionVerdict,
    Measurement,
)
from ingest.sqlite_rows import (
    Transaction,
    add_missing_columns,
    first_of_each,
    from_us,
    limits_from_row,
    measurement_from_row,
    measurement_tail,
    measurement_values,
    monitoring_from_json,
    to_us,
    unseen,
)
from ingest.sqlite_schema import SCHEMA, SCHEMA_VERSION
from ingest.store import (
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
    characteristic_values,
)
from ingest.time_buckets import bucket_range, whole_seconds
from spc.capability_sums import CapabilitySums

_log = logging.getLogger(__name__)
T = TypeVar("T")
_IN_CHUNK = 500  # stays under SQLite's bound-parameter limit
_PRAGMAS = (
    "journal_mode=WAL",
    # a commit is durable once in the WAL file, which is synced at each checkpoint: a
    # power cut can lose the last commits, a crash of the service cannot
    "synchronous=NORMAL",
    "foreign_keys=ON",
    # a batch dirties about one page of each index per characteristic: keep the hot
    # pages in memory (64 MiB at most) and copy them back to the file once per ~16 MiB
    # of WAL instead of once per 4 MiB, so that a page rewritten by every batch is
    # checkpointed once, not once per batch or two
    "cache_size=-65536",
    "wal_autocheckpoint=4000",
)
_INSERT_MEASUREMENTS = (
    "INSERT INTO measurements "
    "(ingest_id, characteristic, time_us, value, part, lot, source, quality) "
    "VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (ingest_id) DO NOTHING"
)


class SqliteStore:
    """The ``Store`` protocol over one SQLite file."""

    kind = "sqlite"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._executor is None:
            raise StoreError(f"the SQLite store {self.path} is not open")

        def call() -> T:
            if self._conn is None:
                raise StoreError("the SQLite store is not open")
            try:
                return fn(self._conn)
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite {self.path}: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def open(self) -> None:
        def connect() -> None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None)
            for pragma in _PRAGMAS:
                conn.execute(f"PRAGMA {pragma}")
            conn.executescript(SCHEMA)
            add_missing_columns(conn)
            conn.execute("DELETE FROM schema_version")
            conn.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
            self._conn = conn

        if self._executor is not None:
            return  # already open
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, connect)
        except (sqlite3.Error, OSError) as exc:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise StoreError(f"cannot open the SQLite store {self.path}: {exc}") from exc
        _log.info("SQLite store open at %s (WAL mode)", self.path)

    async def close(self) -> None:
        def disconnect() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        executor, self._executor = self._executor, None
        if executor is None:
            return  # closing twice is harmless
        await asyncio.get_running_loop().run_in_executor(executor, disconnect)
        executor.shutdown(wait=True)

    # characteristics -----------------------------------------------------------------
    async def upsert_characteristics(self, records: Sequence[CharacteristicRecord]) -> None:
        rows = [characteristic_values(r, json.dumps) for r in records]

        def write(conn: sqlite3.Connection) -> None:
            with Transaction(conn):
                conn.executemany(
                    "INSERT OR REPLACE INTO characteristics VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    rows,
                )

        await self._run(write)

    async def delete_characteristic(self, characteristic: str) -> bool:
        def write(conn: sqlite3.Connection) -> bool:
            with Transaction(conn):
                cur = conn.execute("DELETE FROM characteristics WHERE id = ?", (characteristic,))
                return cur.rowcount > 0

        return await self._run(write)

    async def list_characteristics(self) -> list[CharacteristicRecord]:
        def read(conn: sqlite3.Connection) -> list[CharacteristicRecord]:
            cur = conn.execute("SELECT * FROM characteristics ORDER BY line, process, id")
            return [
                CharacteristicRecord(
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
                    rules=tuple(json.loads(r[10])),
                    source_kind=r[11],
                    source_address=r[12],
                    origin=r[13],
                    **monitoring_from_json(r[14]),
                )
                for r in cur.fetchall()
            ]

        return await self._run(read)

    # measurements, verdicts, costs -------------------------------------------------------
    async def add_measurements(self, items: Sequence[Measurement]) -> list[Measurement]:
        rows = [measurement_values(m) for m in items]

        def write(conn: sqlite3.Connection) -> list[Measurement]:
            if not rows:
                return []
            # rows already stored (or repeated in the batch) are skipped by the unique
            # ingest_id; the new ones are told by their ids, which only grow
            with Transaction(conn):
                last = conn.execute("SELECT max(id) FROM measurements").fetchone()[0]
                conn.executemany(_INSERT_MEASUREMENTS, rows)
                new = conn.execute(
                    "SELECT ingest_id FROM measurements WHERE id > ?", (last or 0,)
                ).fetchall()
            return first_of_each(items, {r[0] for r in new})

        return await self._run(write)

    async def add_verdicts(self, items: Sequence[InspectionVerdict]) -> int:
        def write(conn: sqlite3.Connection) -> int:
            fresh = unseen(conn, "verdicts", items)
            with Transaction(conn):
                conn.executemany(
                    "INSERT INTO verdicts (ingest_id, process, time_us, part, ok, first_pass, "
                    "defects, source) VALUES (?,?,?,?,?,?,?,?)",
                    [
                        (
                            v.ingest_id,
                            v.process,
                            to_us(v.time),
                            v.part,
                            int(v.ok),
                            int(v.first_pass),
                            json.dumps(list(v.defects)),
                            v.source,
                        )
                        for v in fresh
                    ],
                )
            return len(fresh)

        return await self._run(write)

    async def add_cost_events(self, items: Sequence[CostEvent]) -> int:
        def write(conn: sqlite3.Connection) -> int:
            fresh = unseen(conn, "cost_events", items)
            with Transaction(conn):
                conn.executemany(
                    "INSERT INTO cost_events (ingest_id, scope, time_us, category, amount, "
                    "currency, source, note) VALUES (?,?,?,?,?,?,?,?)",
                    [
                        (
                            c.ingest_id,
                            c.scope,
                            to_us(c.time),
                            c.category.value,
                            c.amount,
                            c.currency,
                            c.source,
                            c.note,
                        )
                        for c in fresh
                    ],
                )
            return len(fresh)

        return await self._run(write)

    async def recent_measurements(self, characteristic: str, limit: int) -> list[Measurement]:
        return await self._run(
            lambda conn: measurement_tail(conn, characteristic, limit, "", "time_us DESC, id DESC")
        )

    async def count_measurements(self, characteristic: str | None = None) -> int:
        def read(conn: sqlite3.Connection) -> int:
            if characteristic is None:
                return int(conn.execute("SELECT count(*) FROM measurements").fetchone()[0])
            sql = "SELECT count(*) FROM measurements WHERE characteristic = ?"
            return int(conn.execute(sql, (characteristic,)).fetchone()[0])

        return await self._run(read)

    async def count_charted(self, characteristic: str) -> int:
        sql = "SELECT count(*) FROM measurements WHERE characteristic = ? AND quality = 'good'"
        return await self._run(lambda conn: int(conn.execute(sql, (characteristic,)).fetchone()[0]))

    async def charted_tail(self, characteristic: str, limit: int) -> list[Measurement]:
        return await self._run(
            lambda conn: measurement_tail(
                conn, characteristic, limit, "AND quality = 'good'", "id DESC"
            )
        )

    async def count_verdicts(self) -> int:
        return await self._run(
            lambda conn: int(conn.execute("SELECT count(*) FROM verdicts").fetchone()[0])
        )

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
        order = "DESC" if newest else "ASC"
        sql = (
            "SELECT time_us, process, part, ok, first_pass, ingest_id, source, defects "
            "FROM verdicts WHERE process = ? AND time_us >= ? AND time_us < ? "
            + ("AND first_pass = 1 " if first_pass_only else "")
            + f"ORDER BY time_us {order}, ingest_id {order} LIMIT ?"
        )
        params = (process, to_us(start), to_us(end), limit)
        rows = await self._run(lambda conn: conn.execute(sql, params).fetchall())
        found = [
            InspectionVerdict(
                from_us(r[0]), r[1], r[2], bool(r[3]), bool(r[4]), r[5], r[6],
                tuple(json.loads(r[7])),
            )
            for r in rows
        ]  # fmt: skip
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
        cursor = (to_us(after.time), after.seq) if after else (to_us(start), -1)
        sql = (
            "SELECT time_us, characteristic, value, ingest_id, source, part, lot, quality, id "
            "FROM measurements WHERE characteristic = ? AND time_us >= ? AND time_us < ? "
            "AND (time_us > ? OR (time_us = ? AND id > ?)) ORDER BY time_us, id LIMIT ?"
        )
        params = (characteristic, to_us(start), to_us(end), cursor[0], *cursor, limit + 1)
        rows = await self._run(lambda conn: conn.execute(sql, params).fetchall())
        page = rows[:limit]
        nxt = HistoryCursor(from_us(page[-1][0]), page[-1][8]) if len(rows) > limit else None
        return HistoryPage([measurement_from_row(r) for r in page], nxt)

    async def buckets(
        self, characteristic: str, start: datetime, end: datetime, width: timedelta
    ) -> list[Bucket]:
        step = whole_seconds(width) * 1_000_000
        lo, hi = (to_us(t) for t in bucket_range(start, end, width))
        sql = (
            "SELECT (time_us - ?) / ? AS b, count(*), sum(value), sum(value * value), "
            "min(value), max(value) FROM measurements WHERE characteristic = ? "
            "AND quality = 'good' AND time_us >= ? AND time_us < ? GROUP BY b ORDER BY b"
        )
        # offsets from the aligned ``lo`` are never negative, so integer division floors
        params = (lo, step, characteristic, lo, hi)
        rows = await self._run(lambda conn: conn.execute(sql, params).fetchall())
        return [
            Bucket(from_us(lo + r[0] * step), r[1], r[2] / r[1], r[4], r[5], r[2], r[3])
            for r in rows
        ]

    async def first_pass_counts(self, start: datetime, end: datetime) -> list[FirstPassCount]:
        sql = (
            "SELECT process, count(*), sum(ok) FROM verdicts WHERE first_pass = 1 "
            "AND time_us >= ? AND time_us < ? GROUP BY process ORDER BY process"
        )
        params = (to_us(start), to_us(end))
        rows = await self._run(lambda conn: conn.execute(sql, params).fetchall())
        return [FirstPassCount(r[0], r[1], int(r[2])) for r in rows]

    async def cost_totals(self, start: datetime, end: datetime) -> list[CostTotal]:
        sql = (
            "SELECT scope, category, currency, sum(amount), count(*) FROM cost_events "
            "WHERE time_us >= ? AND time_us < ? GROUP BY scope, category, currency "
            "ORDER BY scope, category, currency"
        )
        params = (to_us(start), to_us(end))
        rows = await self._run(lambda conn: conn.execute(sql, params).fetchall())
        return [CostTotal(r[0], CostCategory(r[1]), r[2], float(r[3]), r[4]) for r in rows]

    # limits --------------------------------------------------------------------------
    async def save_limits(self, item: StoredLimits) -> None:
        lim = item.limits
        row = (
            item.characteristic,
            lim.version,
            lim.center,
            lim.ucl,
            lim.lcl,
            lim.sigma,
            lim.mr_center,
            lim.mr_ucl,
            lim.baseline_n,
            to_us(item.created_at),
            item.reason,
            lim.dispersion_lcl,
            item.author,
            to_us(item.effective_at) if item.effective_at is not None else None,
        )

        def write(conn: sqlite3.Connection) -> None:
            with Transaction(conn):
                conn.execute(
                    "INSERT INTO limit_sets (characteristic, version, center, ucl, lcl, sigma, "
                    "mr_center, mr_ucl, baseline_n, created_us, reason, disp_lcl, author, "
                    "effective_us) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    row,
                )

        await self._run(write)

    async def active_limits(self, characteristic: str) -> StoredLimits | None:
        def read(conn: sqlite3.Connection) -> StoredLimits | None:
            r = conn.execute(
                "SELECT * FROM limit_sets WHERE characteristic = ? ORDER BY version DESC LIMIT 1",
                (characteristic,),
            ).fetchone()
            return None if r is None else limits_from_row(r)

        return await self._run(read)

    async def limit_history(self, characteristic: str) -> list[StoredLimits]:
        sql = "SELECT * FROM limit_sets WHERE characteristic = ? ORDER BY version"
        return await self._run(
            lambda conn: [limits_from_row(r) for r in conn.execute(sql, (characteristic,))]
        )

    # alarms --------------------------------------------------------------------------
    async def save_alarm(self, alarm: AlarmRecord) -> AlarmRecord:
        return await self._run(lambda conn: sqlite_alarms.save_alarm(conn, alarm))

    async def save_alarms(self, alarms: Sequence[AlarmRecord]) -> list[AlarmRecord]:
        batch = list(alarms)
        return await self._run(lambda conn: sqlite_alarms.save_alarms(conn, batch))

    async def get_alarm(self, alarm_id: int) -> AlarmRecord | None:
        return await self._run(lambda conn: sqlite_alarms.get_alarm(conn, alarm_id))

    async def list_alarms(
        self, characteristic: str | None = None, open_only: bool = True
    ) -> list[AlarmRecord]:
        return await self._run(
            lambda conn: sqlite_alarms.list_alarms(conn, characteristic, open_only)
        )

    async def alarm_events(self, alarm_id: int) -> list[AlarmEvent]:
        return await self._run(lambda conn: sqlite_alarms.alarm_events(conn, alarm_id))

    # dead letters --------------------------------------------------------------------
    async def add_dead_letters(self, items: Sequence[DeadLetter]) -> None:
        rows = [(to_us(d.received_at), d.source, d.reason, d.payload) for d in items]

        def write(conn: sqlite3.Connection) -> None:
            with Transaction(conn):
                conn.executemany(
                    "INSERT INTO dead_letters (received_us, source, reason, payload) "
                    "VALUES (?,?,?,?)",
                    rows,
                )

        await self._run(write)

    async def list_dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        def read(conn: sqlite3.Connection) -> list[DeadLetter]:
            cur = conn.execute(
                "SELECT received_us, source, reason, payload FROM dead_letters "
                "ORDER BY id DESC LIMIT ?",
                (limit,),
            )
            return [DeadLetter(from_us(r[0]), r[1], r[2], r[3]) for r in cur.fetchall()]

        return await self._run(read)

    # grades --------------------------------------------------------------------------
    async def add_grade_snapshots(self, items: Sequence[GradeSnapshot]) -> None:
        rows = [
            (
                to_us(g.taken_at),
                g.level,
                g.entity,
                g.grade,
                g.limiting_metric,
                json.dumps(dict(g.metrics)),
            )
            for g in items
        ]

        def write(conn: sqlite3.Connection) -> None:
            with Transaction(conn):
                conn.executemany(
                    "INSERT INTO grade_snapshots (taken_us, level, entity, grade, "
                    "limiting_metric, metrics) VALUES (?,?,?,?,?,?)",
                    rows,
                )

        await self._run(write)

    async def add_capability_sums(self, items: Sequence[CapabilityBucket]) -> None:
        rows = [(b.characteristic, to_us(b.start), *sums_row(b.sums)) for b in items]

        def write(conn: sqlite3.Connection) -> None:
            with Transaction(conn):
                conn.executemany(SQLITE_ADD, rows)

        if rows:
            await self._run(write)

    async def capability_totals(self, start: datetime, end: datetime) -> dict[str, CapabilitySums]:
        params = (to_us(start), to_us(end))
        rows = await self._run(lambda conn: conn.execute(SQLITE_TOTALS, params).fetchall())
        return totals_from_rows(rows)

    async def grade_history(
        self, level: str, entity: str, start: datetime, end: datetime
    ) -> list[GradeSnapshot]:
        sql = (
            "SELECT taken_us, level, entity, grade, limiting_metric, metrics FROM grade_snapshots "
            "WHERE level = ? AND entity = ? AND taken_us >= ? AND taken_us < ? "
            "ORDER BY taken_us, id"
        )
        params = (level, entity, to_us(start), to_us(end))
        rows = await self._run(lambda conn: conn.execute(sql, params).fetchall())
        return [
            GradeSnapshot(from_us(r[0]), r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows
        ]
