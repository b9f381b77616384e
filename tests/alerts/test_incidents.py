"""The incident manager over a real SQLite store: grouping, lifecycle, escalation, limits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from alerts.incident_policy import IncidentPolicy
from alerts.incidents import AlarmStateError, IncidentManager, UnknownAlarm
from alerts.signals import ChartSignal
from ingest.sqlite_store import SqliteStore
from ingest.store import Acknowledgement, AlarmRecord

pytestmark = pytest.mark.anyio
T0 = datetime(2025, 3, 14, 8, 0, tzinfo=UTC)
DIA, LEN, ROUGH, GAP = (
    "line1.turning.diameter",
    "line1.turning.length",
    "line1.grinding.roughness",
    "line2.vision.gap",
)


def _locate(characteristic: str) -> tuple[str, str]:
    line, process, _ = characteristic.split(".")
    return line, f"{line}.{process}"


def _signal(i: float = 0, char: str = DIA, **overrides: Any) -> ChartSignal:
    signal = ChartSignal(char, T0 + timedelta(seconds=i), 25.04, "1", "i", "high", 25.031, 1)
    return replace(signal, **overrides)


def _points(char: str, first: int, count: int) -> list[tuple[str, datetime]]:
    return [(char, T0 + timedelta(seconds=first + k)) for k in range(count)]


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def store(tmp_path: Path, anyio_backend: str) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "incidents.sqlite3")
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


BOTH = frozenset({("1", "i"), ("cusum", "cusum")})


def _manager(store: SqliteStore, clock: Clock, **policy: Any) -> IncidentManager:
    """A manager paging on rule 1 (critical) and the CUSUM (warning), unless told otherwise."""
    return IncidentManager(store, _locate, IncidentPolicy(**{"paging": BOTH, **policy}),
                           clock=clock)  # fmt: skip


async def test_by_default_only_the_cusum_pages(store: SqliteStore, clock: Clock) -> None:
    manager = IncidentManager(store, _locate, clock=clock)

    assert await manager.handle([_signal(0), _signal(1, chart="mr")]) == []
    [incident] = await manager.handle([_signal(2, rule="cusum", chart="cusum")])
    [grown] = await manager.handle([_signal(3)])

    assert (incident.rule, incident.severity) == ("cusum", "warning")
    assert grown.severity == "critical"  # a point beyond the limits joined it


async def test_a_paging_signal_opens_a_critical_incident_with_its_evidence(
    store: SqliteStore, clock: Clock
) -> None:
    manager = _manager(store, clock)

    [incident] = await manager.handle([_signal(0)])

    assert incident.id is not None
    assert (incident.state, incident.severity, incident.count) == ("open", "critical", 1)
    assert (incident.line, incident.process, incident.characteristics) == (
        "line1", "line1.turning", (DIA,),
    )  # fmt: skip
    [evidence] = incident.details.evidence
    assert (evidence.rule, evidence.chart, evidence.value) == ("1", "i", 25.04)
    assert await store.get_alarm(incident.id) == incident


async def test_chart_only_signals_page_nobody_but_join_an_open_incident_as_evidence(
    store: SqliteStore, clock: Clock
) -> None:
    manager = _manager(store, clock)
    pattern = _signal(0, rule="2", side="none", limit=None)

    assert await manager.handle([pattern]) == []
    [incident] = await manager.handle([_signal(1, rule="cusum", chart="cusum")])
    [grown] = await manager.handle([_signal(2, rule="2", side="none", limit=None)])

    assert incident.severity == "warning"  # CUSUM pages, as a warning
    assert (grown.id, grown.count, grown.severity) == (incident.id, 2, "warning")
    assert [e.rule for e in grown.details.evidence] == ["cusum", "2"]


async def test_repeated_signals_on_one_characteristic_are_one_incident(
    store: SqliteStore, clock: Clock
) -> None:
    manager = _manager(store, clock)

    [first] = await manager.handle([_signal(0, rule="cusum", chart="cusum")])
    [same] = await manager.handle([_signal(1), _signal(2), _signal(3)])

    assert same.id == first.id
    assert (same.count, same.severity) == (4, "critical")  # rule 1 raised it
    assert await store.list_alarms() == [same]


async def test_signals_of_one_process_within_the_window_are_grouped(
    store: SqliteStore, clock: Clock
) -> None:
    manager = _manager(store, clock, group_window=timedelta(seconds=30))

    saved = await manager.handle([_signal(0), _signal(10, LEN), _signal(12, GAP)])
    [later] = await manager.handle([_signal(100, LEN, rule="cusum", chart="cusum")])

    turning, vision = sorted(saved, key=lambda i: i.process)
    assert turning.characteristics == (DIA, LEN)  # same process, 10 s apart
    assert vision.process == "line2.vision"  # another process: its own incident
    assert later.id == turning.id  # LEN already belongs to the turning incident
    assert len(await store.list_alarms()) == 2


async def test_a_signal_outside_the_window_opens_another_incident(
    store: SqliteStore, clock: Clock
) -> None:
    manager = _manager(store, clock, group_window=timedelta(seconds=30))

    [a] = await manager.handle([_signal(0)])
    [b] = await manager.handle([_signal(31, LEN)])

    assert a.id != b.id
    assert (a.characteristics, b.characteristics) == ((DIA,), (LEN,))


async def test_an_incident_resolves_itself_after_a_run_of_in_control_points(
    store: SqliteStore, clock: Clock
) -> None:
    manager = _manager(store, clock, resolve_after=5)
    [opened] = await manager.handle([_signal(0)], _points(DIA, 0, 1))
    clock.now = T0 + timedelta(minutes=1)

    assert await manager.handle([], _points(DIA, 1, 4)) == []  # 4 calm points: not yet
    [resolved] = await manager.handle([], _points(DIA, 5, 1))

    assert resolved.id == opened.id
    assert resolved.state == "resolved"
    assert resolved.details.resolution is not None
    assert resolved.details.resolution.by == "system"
    assert manager.open_alarms() == []
    [*_, event] = await store.alarm_events(opened.id or 0)
    assert (event.state, event.actor) == ("resolved", "system")
    [again] = await manager.handle([_signal(20)])
    assert again.id != opened.id  # a new problem after resolution is a new incident


async def test_a_resolved_incident_restarts_the_detection_of_each_characteristic(
    store: SqliteStore, clock: Clock
) -> None:
    manager = _manager(store, clock, resolve_after=2)
    restarted: list[str] = []
    manager.on_resolved = restarted.append
    await manager.handle([_signal(0), _signal(1, LEN)])

    await manager.handle([], _points(DIA, 2, 2) + _points(LEN, 2, 2))

    assert restarted == [DIA, LEN]


async def test_a_grouped_incident_resolves_only_when_every_characteristic_is_calm(
    store: SqliteStore, clock: Clock
) -> None:
    manager = _manager(store, clock, resolve_after=3)
    await manager.handle([_signal(0), _signal(1, LEN)])

    assert await manager.handle([], _points(DIA, 2, 10)) == []  # LEN has no new points
    [resolved] = await manager.handle([], _points(LEN, 2, 3))
    assert resolved.state == "resolved"


async def test_points_before_a_paging_signal_in_the_batch_do_not_count_as_calm(
    store: SqliteStore, clock: Clock
) -> None:
    manager = _manager(store, clock, resolve_after=3)
    await manager.handle([_signal(0)])

    # 5 calm points, then a signal at 5, then 2 calm points: the run is 2, not 7
    saved = await manager.handle([_signal(5)], _points(DIA, 0, 8))

    assert [i.state for i in saved] == ["open"]


async def test_an_unacknowledged_incident_escalates_once(store: SqliteStore, clock: Clock) -> None:
    manager = _manager(store, clock, escalate_after=timedelta(minutes=15))
    [opened] = await manager.handle([_signal(0, rule="cusum", chart="cusum")])
    clock.now = T0 + timedelta(minutes=14)
    assert await manager.escalate_due() == []

    clock.now = T0 + timedelta(minutes=16)
    [up] = await manager.escalate_due()
    assert (up.id, up.severity, up.details.escalated_at) == (opened.id, "critical", clock.now)
    assert await manager.escalate_due() == []
    [*_, event] = await store.alarm_events(opened.id or 0)
    assert (event.actor, event.note) == ("system", "escalated: critical")


async def test_an_acknowledged_incident_does_not_escalate(store: SqliteStore, clock: Clock) -> None:
    manager = _manager(store, clock)
    [opened] = await manager.handle([_signal(0)])
    await manager.acknowledge(opened.id or 0, "anna", "on it", "tool wear", "insert changed")
    clock.now = T0 + timedelta(hours=2)

    assert await manager.escalate_due() == []


async def test_a_process_opens_at_most_its_hourly_limit_then_reopens_the_latest(
    store: SqliteStore, clock: Clock
) -> None:
    manager = _manager(store, clock, resolve_after=1, max_new_per_hour=2,
                       group_window=timedelta(0))  # fmt: skip
    ids = []
    for k in range(3):  # open, resolve, open, resolve, then one over the limit
        [incident] = await manager.handle([_signal(k * 60)])
        ids.append(incident.id)
        [done] = await manager.handle([], _points(DIA, k * 60 + 1, 1))
        assert done.state == "resolved"

    assert ids[0] != ids[1]
    assert ids[2] == ids[1]  # the third problem within the hour re-opened the second
    reopened = await store.get_alarm(ids[2] or 0)
    assert reopened is not None
    assert reopened.count == 2
    assert len(await store.list_alarms(open_only=False)) == 2


async def test_acknowledge_and_resolve_keep_who_and_why_across_a_restart(
    tmp_path: Path, anyio_backend: str, clock: Clock
) -> None:
    path = tmp_path / "restart.sqlite3"
    store = SqliteStore(path)
    await store.open()
    manager = _manager(store, clock)
    [opened] = await manager.handle([_signal(0)])
    clock.now = T0 + timedelta(minutes=3)
    acked = await manager.acknowledge(opened.id or 0, "anna", "insert worn", "tool wear", "swap")
    assert acked.ack == Acknowledgement("anna", clock.now, "insert worn", "tool wear", "swap")
    await store.close()

    store = SqliteStore(path)
    await store.open()
    try:
        restarted = _manager(store, clock)
        await restarted.load()
        assert restarted.open_alarms() == [acked]
        [grown] = await restarted.handle([_signal(1)])
        assert (grown.id, grown.state, grown.count) == (opened.id, "acknowledged", 2)
        done = await restarted.resolve(opened.id or 0, "bob", "insert replaced, checked")
        assert done.state == "resolved"
        assert done.details.resolution is not None
        assert done.details.resolution.by == "bob"
        with pytest.raises(AlarmStateError, match="is resolved"):
            await restarted.acknowledge(opened.id or 0, "anna", "late")
        with pytest.raises(UnknownAlarm, match="no alarm with id 999"):
            await restarted.resolve(999, "bob", "?")
    finally:
        await store.close()


async def test_observers_hear_every_saved_state_and_each_transition(
    store: SqliteStore, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[AlarmRecord] = []
    moves: list[tuple[str, int | None]] = []
    manager = IncidentManager(store, _locate, IncidentPolicy(paging=BOTH, resolve_after=1),
                              on_change=seen.append,
                              on_transition=lambda kind, i: moves.append((kind, i.id)),
                              clock=clock)  # fmt: skip

    [opened] = await manager.handle([_signal(0)])
    await manager.handle([_signal(1)])
    await manager.acknowledge(opened.id or 0, "op", "looking")
    await manager.handle([], _points(DIA, 2, 1))

    assert [(i.state, i.count) for i in seen] == [
        ("open", 1), ("open", 2), ("acknowledged", 2), ("resolved", 2),
    ]  # fmt: skip
    assert moves == [("opened", opened.id), ("acknowledged", opened.id), ("resolved", opened.id)]


async def test_a_failing_observer_does_not_cost_the_incident(
    store: SqliteStore, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(_: AlarmRecord) -> None:
        raise RuntimeError("observer bug")

    manager = IncidentManager(store, _locate, IncidentPolicy(paging=BOTH), on_change=broken,
                              clock=clock)  # fmt: skip

    [opened] = await manager.handle([_signal(0)])

    assert await store.list_alarms() == [opened]
    assert "incident observer failed" in caplog.text


def test_a_policy_that_cannot_work_is_refused() -> None:
    with pytest.raises(ValueError, match="resolve_after must be >= 1"):
        IncidentPolicy(resolve_after=0)
    with pytest.raises(ValueError, match="max_new_per_hour must be >= 1"):
        IncidentPolicy(max_new_per_hour=0)


async def test_an_acknowledgement_racing_a_batch_is_not_overwritten(
    store: SqliteStore, clock: Clock
) -> None:
    import asyncio

    manager = _manager(store, clock)
    [opened] = await manager.handle([_signal(0)])
    gate = asyncio.Event()
    saving = store.save_alarms

    async def slow_save(alarms: Any) -> Any:  # the batch's save waits while the ack comes in
        await gate.wait()
        return await saving(alarms)

    store.save_alarms = slow_save  # type: ignore[method-assign]
    batch = asyncio.create_task(manager.handle([_signal(1)]))
    await asyncio.sleep(0)
    ack = asyncio.create_task(manager.acknowledge(opened.id or 0, "anna", "on it"))
    await asyncio.sleep(0.05)
    gate.set()
    await batch
    acked = await ack

    stored = await store.get_alarm(opened.id or 0)
    assert stored is not None
    assert (stored.state, stored.count) == ("acknowledged", 2)
    assert acked.count == 2  # the acknowledgement waited for the batch, then kept its signal
