"""Alarm lifecycle: pure apply_signals, and AlarmManager over a real SQLite store."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from alerts.alarms import (
    AlarmManager,
    AlarmStateError,
    UnknownAlarm,
    alarm_key,
    apply_signals,
)
from alerts.signals import ChartSignal
from ingest.sqlite_store import SqliteStore
from ingest.store import Acknowledgement, AlarmRecord

T0 = datetime(2025, 3, 14, 8, 0, tzinfo=UTC)


def _signal(i: int = 0, **overrides: Any) -> ChartSignal:
    signal = ChartSignal(
        characteristic="line1.turning.diameter",
        time=T0 + timedelta(seconds=i),
        value=25.04 + i / 1000,
        rule="1",
        chart="i",
        side="high",
        limit=25.031,
        limit_version=1,
    )
    return replace(signal, **overrides)


def test_the_first_signal_opens_an_alarm() -> None:
    signal = _signal()

    [alarm] = apply_signals([signal], {})

    assert alarm == AlarmRecord(
        characteristic="line1.turning.diameter",
        rule="1",
        chart="i",
        state="open",
        opened_at=T0,
        last_at=T0,
        count=1,
        limit_version=1,
        last_value=25.04,
        message=signal.describe(),
        id=None,
    )


def test_repeated_signals_in_one_batch_update_one_alarm() -> None:
    [alarm] = apply_signals([_signal(0), _signal(1), _signal(2)], {})

    assert (alarm.count, alarm.opened_at, alarm.last_at) == (3, T0, T0 + timedelta(seconds=2))
    assert alarm.last_value == _signal(2).value
    assert alarm.message == _signal(2).describe()


def test_a_signal_on_an_open_alarm_updates_it_instead_of_opening_another() -> None:
    open_alarm = replace(apply_signals([_signal(0)], {})[0], id=7, state="acknowledged")
    later = _signal(5, value=25.05, limit_version=2)

    [updated] = apply_signals([later], {alarm_key(open_alarm.characteristic, "1", "i"): open_alarm})

    assert updated.id == 7
    assert updated.state == "acknowledged"
    assert (updated.count, updated.opened_at, updated.last_at) == (2, T0, later.time)
    assert (updated.last_value, updated.limit_version) == (25.05, 2)


def test_a_late_signal_does_not_move_last_at_backwards() -> None:
    [alarm] = apply_signals([_signal(10), _signal(3)], {})

    assert alarm.last_at == T0 + timedelta(seconds=10)
    assert alarm.count == 2


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(
            _signal(1, chart="mr", side="high", value=0.05, limit=0.037), id="other chart"
        ),
        pytest.param(_signal(1, rule="2"), id="other rule"),
        pytest.param(_signal(1, characteristic="line1.turning.length"), id="other characteristic"),
    ],
)
def test_signals_with_another_key_open_a_separate_alarm(other: ChartSignal) -> None:
    alarms = apply_signals([_signal(0), other, _signal(2)], {})

    assert [(a.characteristic, a.rule, a.chart, a.count) for a in alarms] == [
        ("line1.turning.diameter", "1", "i", 2),
        (other.characteristic, other.rule, other.chart, 1),
    ]


def test_apply_signals_leaves_its_inputs_alone() -> None:
    open_alarm = replace(apply_signals([_signal(0)], {})[0], id=1)
    open_alarms = {alarm_key(open_alarm.characteristic, "1", "i"): open_alarm}
    before = copy.deepcopy(open_alarms)

    first = apply_signals([_signal(1)], open_alarms)
    second = apply_signals([_signal(1)], open_alarms)

    assert open_alarms == before
    assert first == second  # same input, same output
    assert apply_signals([], open_alarms) == []


@pytest.mark.parametrize(
    ("signal", "fragments"),
    [
        pytest.param(
            _signal(),
            ["Rule 1", "above UCL", "individuals", "25.04", "25.031", "v1"],
            id="high point",
        ),
        pytest.param(
            _signal(side="low", value=24.96, limit=24.969, limit_version=3),
            ["below LCL", "24.96", "24.969", "v3"],
            id="low point",
        ),
        pytest.param(
            _signal(chart="mr", value=0.0512, limit=0.0369),
            ["moving range", "0.0512", "above its UCL", "0.0369"],
            id="moving range",
        ),
    ],
)
def test_describe_mentions_the_value_and_the_limit(
    signal: ChartSignal, fragments: list[str]
) -> None:
    text = signal.describe()

    for fragment in fragments:
        assert fragment in text


class ServiceRuns:
    """Successive runs of the service on one SQLite file: open, then close at a restart."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.open_stores: list[SqliteStore] = []

    async def start(self) -> SqliteStore:
        store = SqliteStore(self.path)
        await store.open()
        self.open_stores.append(store)
        return store

    async def stop(self, store: SqliteStore) -> None:
        self.open_stores.remove(store)
        await store.close()


@pytest.fixture
async def runs(tmp_path: Path, anyio_backend: str) -> AsyncIterator[ServiceRuns]:
    service = ServiceRuns(tmp_path / "alarms.sqlite3")
    yield service
    for store in list(service.open_stores):
        await service.stop(store)


@pytest.mark.anyio
async def test_alarm_manager_persists_alarms_and_reloads_the_open_ones_after_a_restart(
    runs: ServiceRuns,
) -> None:
    store = await runs.start()
    manager = AlarmManager(store)
    await manager.load()

    [opened] = await manager.handle([_signal(0)])
    [updated] = await manager.handle([_signal(1)])
    [other] = await manager.handle([_signal(2, chart="mr", value=0.05, limit=0.037)])
    assert opened.id is not None
    assert updated.id == opened.id
    assert updated.count == 2
    assert await store.list_alarms() == [updated, other]
    await store.save_alarm(replace(other, state="resolved"))
    await runs.stop(store)

    restarted = AlarmManager(await runs.start())
    await restarted.load()

    assert restarted.open_alarms() == [updated]
    assert restarted.open_alarms("line1.turning.length") == []
    [continued] = await restarted.handle([_signal(3)])
    assert (continued.id, continued.count) == (opened.id, 3)


@pytest.mark.anyio
async def test_a_signal_after_resolution_opens_a_new_alarm(
    runs: ServiceRuns,
) -> None:
    store = await runs.start()
    manager = AlarmManager(store)
    [first] = await manager.handle([_signal(0)])
    await store.save_alarm(replace(first, state="resolved"))
    await manager.load()

    [second] = await manager.handle([_signal(1)])

    assert second.id != first.id
    assert second.count == 1
    assert len(await store.list_alarms(open_only=False)) == 2


@pytest.mark.anyio
async def test_an_acknowledgement_is_saved_with_who_when_and_why_and_kept_after_a_restart(
    runs: ServiceRuns,
) -> None:
    acked_at = T0 + timedelta(minutes=10)
    store = await runs.start()
    manager = AlarmManager(store, clock=lambda: acked_at)
    [opened] = await manager.handle([_signal(0)])
    assert opened.id is not None

    acked = await manager.acknowledge(opened.id, "anna", "insert worn", "tool wear", None)

    assert acked == replace(
        opened,
        state="acknowledged",
        ack=Acknowledgement("anna", acked_at, "insert worn", "tool wear", None),
    )
    assert await store.get_alarm(opened.id) == acked
    [*_, event] = await store.alarm_events(opened.id)
    assert (event.recorded_at, event.actor, event.note) == (acked_at, "anna", "insert worn")
    await runs.stop(store)

    restarted = AlarmManager(await runs.start())
    await restarted.load()
    assert restarted.open_alarms() == [acked]
    [repeated] = await restarted.handle([_signal(1)])
    assert (repeated.state, repeated.count, repeated.ack) == ("acknowledged", 2, acked.ack)


@pytest.mark.anyio
async def test_acknowledging_an_unknown_or_resolved_alarm_is_refused(runs: ServiceRuns) -> None:
    store = await runs.start()
    manager = AlarmManager(store)
    [opened] = await manager.handle([_signal(0)])
    resolved = await store.save_alarm(replace(opened, state="resolved"))
    await manager.load()
    assert resolved.id is not None

    with pytest.raises(UnknownAlarm, match="no alarm with id 999"):
        await manager.acknowledge(999, "anna", "looking")
    with pytest.raises(AlarmStateError, match="is resolved"):
        await manager.acknowledge(resolved.id, "anna", "looking")
    assert await store.get_alarm(resolved.id) == resolved
