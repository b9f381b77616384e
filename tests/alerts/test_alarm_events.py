"""AlarmManager's change hook: every saved alarm state is told to the observer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.alarms import AlarmManager
from alerts.signals import ChartSignal
from ingest.sqlite_store import SqliteStore
from ingest.store import AlarmRecord

pytestmark = pytest.mark.anyio
T0 = datetime(2025, 3, 14, 8, 0, tzinfo=UTC)


def _signal(i: int) -> ChartSignal:
    return ChartSignal(
        "line1.turning.diameter", T0 + timedelta(seconds=i), 25.04, "1", "i", "high", 25.03, 1
    )


@pytest.fixture
async def store(tmp_path: Path, anyio_backend: str) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "alarms.sqlite3")
    await opened.open()
    yield opened
    await opened.close()


async def test_opening_updating_and_acknowledging_an_alarm_each_tell_the_observer(
    store: SqliteStore,
) -> None:
    seen: list[AlarmRecord] = []
    manager = AlarmManager(store, on_change=seen.append)

    [opened] = await manager.handle([_signal(0)])
    [updated] = await manager.handle([_signal(1)])
    assert opened.id is not None
    acknowledged = await manager.acknowledge(opened.id, by="op", comment="looking")

    assert seen == [opened, updated, acknowledged]
    assert [(a.state, a.count) for a in seen] == [("open", 1), ("open", 2), ("acknowledged", 2)]
    assert all(a.id == opened.id for a in seen)


async def test_a_failing_observer_does_not_stop_the_alarm_from_being_saved(
    store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(alarm: AlarmRecord) -> None:
        raise RuntimeError("observer bug")

    manager = AlarmManager(store, on_change=broken)

    [opened] = await manager.handle([_signal(0)])

    assert await store.list_alarms() == [opened]
    assert manager.open_alarms() == [opened]
    assert "alarm change observer failed" in caplog.text
