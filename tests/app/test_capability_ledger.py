"""The hourly capability sums: what the ledger adds, flushes and keeps when the store fails.

A real SQLite store; expected indices from the batch reference ``spc.capability``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from app.capability_ledger import CapabilityLedger, hour_of, shift_of
from ingest.model import Measurement
from ingest.sqlite_store import SqliteStore
from ingest.store import CapabilityBucket
from ingest.store_proxy import StoreProxy
from spc import capability
from spc.capability_sums import period_capability
from tests.ingest.records import T0, characteristic, measurement

pytestmark = pytest.mark.anyio
HOUR = hour_of(T0)
DAY = timedelta(days=1)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "spcmon.sqlite3")
    await s.open()
    yield s
    await s.close()


def values_of(
    char: str, values: np.ndarray, first: int = 0, step_s: float = 1.0
) -> list[Measurement]:
    return [
        measurement(
            first + i,
            characteristic=char,
            value=float(v),
            time=T0 + timedelta(seconds=(first + i) * step_s),
            ingest_id=f"{char}-{first + i}",
        )
        for i, v in enumerate(values)
    ]


async def test_individuals_in_batches_give_the_reference_cpk(store: SqliteStore) -> None:
    record = characteristic("c1")
    values = np.random.default_rng(1).normal(25.0, 0.01, 300)
    ledger = CapabilityLedger(store)
    ledger.observe({"c1": record}, values_of("c1", values[:100]))
    assert await ledger.flush() == 1
    ledger.observe({"c1": record}, values_of("c1", values[100:], first=100))  # not flushed

    totals = await ledger.totals(HOUR, HOUR + DAY)  # the store's and the memory's

    ours = period_capability(totals["c1"], record.lsl, record.usl)
    ref = capability(values, record.lsl, record.usl)
    assert ours.n == 300
    assert ours.cpk == pytest.approx(ref.cpk, rel=1e-9)
    assert ours.ppk == pytest.approx(ref.ppk, rel=1e-9)


@pytest.mark.parametrize(("chart", "method"), [("xbar_r", "rbar"), ("xbar_s", "sbar")])
async def test_subgroups_form_across_batches(store: SqliteStore, chart: str, method: str) -> None:
    record = characteristic("c1", chart=chart, subgroup_size=5)
    values = np.random.default_rng(2).normal(25.0, 0.01, 200)
    ledger = CapabilityLedger(store)
    for a, b in ((0, 7), (7, 133), (133, 200)):  # batches that split subgroups
        ledger.observe({"c1": record}, values_of("c1", values[a:b], first=a))
    await ledger.flush()

    totals = await store.capability_totals(HOUR, HOUR + DAY)

    ours = period_capability(totals["c1"], record.lsl, record.usl, method, 5)  # type: ignore[arg-type]
    ref = capability(values, record.lsl, record.usl, subgroup_size=5, sigma_within=method)
    assert ours.subgroups == 40
    assert ours.cpk == pytest.approx(ref.cpk, rel=1e-9)
    assert ours.cpk_ci == pytest.approx(ref.cpk_ci, rel=1e-9)


async def test_values_go_to_the_hour_they_were_measured_in(store: SqliteStore) -> None:
    record = characteristic("c1")
    ledger = CapabilityLedger(store)
    # 240 values 30 s apart: two hours; T0 is 08:00:00.123456
    ledger.observe({"c1": record}, values_of("c1", np.full(240, 25.0), step_s=30.0))
    await ledger.flush()

    first = await store.capability_totals(HOUR, HOUR + timedelta(hours=1))
    both = await store.capability_totals(HOUR, HOUR + timedelta(hours=2))

    assert first["c1"].n == 120
    assert both["c1"].n == 240


async def test_values_beyond_a_limit_are_counted_and_unknown_ones_skipped(
    store: SqliteStore,
) -> None:
    record = characteristic("c1", lsl=24.95, usl=25.05)
    ledger = CapabilityLedger(store)
    values = np.array([25.0, 24.94, 25.06, 25.05, 24.95])  # on a limit is inside
    ledger.observe({"c1": record}, values_of("c1", values) + values_of("gone", values))

    totals = await ledger.totals(HOUR, HOUR + DAY)

    assert set(totals) == {"c1"}
    assert (totals["c1"].n, totals["c1"].out_of_spec) == (5, 2)
    assert totals["c1"].shift == shift_of(record, 0.0) == pytest.approx(25.0)


async def test_a_failed_flush_keeps_the_sums_for_the_next(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "spcmon.sqlite3")
    await store.open()
    record = characteristic("c1")
    ledger = CapabilityLedger(store)
    ledger.observe({"c1": record}, values_of("c1", np.linspace(24.99, 25.01, 50)))
    await store.close()  # the store is away: the flush fails, nothing is lost

    assert await ledger.flush() == 0
    ledger.observe({"c1": record}, values_of("c1", np.full(10, 25.0), first=50))
    await store.open()
    assert await ledger.flush() == 1

    totals = await store.capability_totals(HOUR, HOUR + DAY)
    assert (totals["c1"].n, totals["c1"].dispersion_n) == (60, 59)
    await store.close()


async def test_a_forgotten_characteristic_starts_a_new_chain(store: SqliteStore) -> None:
    record = characteristic("c1")
    ledger = CapabilityLedger(store)
    ledger.observe({"c1": record}, values_of("c1", np.array([25.0, 25.01])))
    ledger.forget("c1")  # redefined: the next value is no moving range from the last
    ledger.observe({"c1": record}, values_of("c1", np.array([25.04]), first=2))

    totals = await ledger.totals(HOUR, HOUR + DAY)

    assert (totals["c1"].n, totals["c1"].dispersion_n) == (3, 1)
    assert totals["c1"].dispersion_sum == pytest.approx(0.01)


async def test_after_a_restart_subgroups_realign_on_the_stored_count(store: SqliteStore) -> None:
    record = characteristic("c1", chart="xbar_s", subgroup_size=4)
    values = np.random.default_rng(4).normal(25.0, 0.01, 800) + np.repeat(
        np.random.default_rng(5).normal(0.0, 0.02, 200), 4
    )  # covers that differ: between-subgroup variation the within sigma must not see
    first = CapabilityLedger(store)
    first.observe({"c1": record}, values_of("c1", values[:402]))
    await first.flush()
    # a restart after 402 values: the engine realigns on 402 % 4 = 2 values into a subgroup
    second = CapabilityLedger(store)
    second.align("c1", 402, 4)
    second.observe({"c1": record}, values_of("c1", values[402:], first=402))
    await second.flush()

    totals = await store.capability_totals(HOUR, HOUR + DAY)

    # the subgroup spanning the restart is the only one lost
    assert (totals["c1"].n, totals["c1"].dispersion_n) == (800, 199)
    ours = period_capability(totals["c1"], record.lsl, record.usl, "sbar", 4)
    ref = capability(values, record.lsl, record.usl, subgroup_size=4, sigma_within="sbar")
    assert ours.cpk == pytest.approx(ref.cpk, rel=0.02)


async def test_sums_a_stop_could_not_write_wait_in_a_file_for_the_next_start(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "spcmon.sqlite3")
    await store.open()
    record = characteristic("c1")
    ledger = CapabilityLedger(store)
    ledger.observe({"c1": record}, values_of("c1", np.linspace(24.99, 25.01, 60)))
    await store.close()  # the database is away at stop
    assert await ledger.flush() == 0
    kept = tmp_path / "data" / "capability-pending.json"
    assert ledger.save_pending(kept) == 1

    await store.open()
    restarted = CapabilityLedger(store)
    assert restarted.load_pending(kept) == 1
    assert not kept.exists()
    assert await restarted.flush() == 1
    totals = await store.capability_totals(HOUR, HOUR + DAY)
    assert (totals["c1"].n, totals["c1"].dispersion_n) == (60, 59)
    await store.close()


class _SlowWrites(StoreProxy):
    """The real store, whose capability writes wait for a signal (to catch a read mid-write)."""

    def __init__(self, inner: SqliteStore) -> None:
        super().__init__(inner)
        self.release = asyncio.Event()

    async def add_capability_sums(self, items: Sequence[CapabilityBucket]) -> None:
        await self.release.wait()
        await self.inner.add_capability_sums(items)


async def test_totals_read_during_a_flush_count_its_values_once(store: SqliteStore) -> None:
    slow = _SlowWrites(store)
    ledger = CapabilityLedger(slow)
    ledger.observe({"c1": characteristic("c1")}, values_of("c1", np.full(50, 25.0)))
    flushing = asyncio.create_task(ledger.flush())
    await asyncio.sleep(0.05)  # the flush has taken the increments and waits on the write
    reading = asyncio.create_task(ledger.totals(HOUR, HOUR + DAY))
    await asyncio.sleep(0.05)
    slow.release.set()
    assert await flushing == 1
    assert (await reading)["c1"].n == 50
