"""The Store contract: one suite, run over every backend by the parametrised `connect` fixture.

To add a backend, write an ``async def _<name>(request) -> Connect`` that prepares an empty
database (using whatever fixtures it needs) and returns a function opening a new handle on
it, and list it under the name its store reports as ``kind`` in ``BACKENDS``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from ingest.errors import StoreError
from ingest.model import CostCategory, DeadLetter, InspectionVerdict, Measurement, Quality
from ingest.pg_store import PgOptions, PostgresStore
from ingest.sqlite_store import SqliteStore
from ingest.store import (
    Acknowledgement,
    AlarmEvent,
    AlarmRecord,
    CapabilityBucket,
    CostTotal,
    Evidence,
    FirstPassCount,
    GradeSnapshot,
    IncidentDetails,
    Resolution,
    Store,
    StoredLimits,
)
from spc import LimitSet
from spc.capability_sums import CapabilitySums
from tests.ingest.records import T0, characteristic, cost_event, measurement, verdict
from tests.support.databases import fresh_database, fresh_schema_name
from tests.support.pglite import PgliteServer
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.anyio

Connect = Callable[[], Awaitable[Store]]
"""Open a new handle on the backend's database (the same database on every call)."""


async def _sqlite(request: pytest.FixtureRequest) -> Connect:
    path = request.getfixturevalue("tmp_path") / "spcmon.sqlite3"

    async def connect() -> Store:
        store = SqliteStore(path)
        await store.open()
        return store

    return connect


async def _postgresql(request: pytest.FixtureRequest) -> Connect:
    server: PostgresServer = request.getfixturevalue("postgres")
    dsn = await fresh_database(server.dsn)

    async def connect() -> Store:
        store = PostgresStore(dsn, PgOptions(max_connections=2))
        await store.open()
        return store

    return connect


async def _timescaledb(request: pytest.FixtureRequest) -> Connect:
    """TimescaleDB on PGlite: one database and one session, so each test gets a schema."""
    server: PgliteServer = request.getfixturevalue("pglite")
    options = PgOptions(
        min_connections=1, max_connections=1, timescaledb="require", schema=fresh_schema_name()
    )

    async def connect() -> Store:
        store = PostgresStore(server.dsn, options)
        await store.open()
        return store

    return connect


BACKENDS: dict[str, Callable[[pytest.FixtureRequest], Awaitable[Connect]]] = {
    "sqlite": _sqlite,
    "postgresql": _postgresql,
    "timescaledb": _timescaledb,
}


@pytest.fixture(params=sorted(BACKENDS))
async def connect(request: pytest.FixtureRequest, anyio_backend: str) -> Connect:
    return await BACKENDS[request.param](request)


@pytest.fixture
async def store(connect: Connect) -> AsyncIterator[Store]:
    opened = await connect()
    yield opened
    await opened.close()


def _limits(version: int, center: float = 25.0) -> LimitSet:
    return LimitSet(
        version=version,
        center=center,
        ucl=center + 0.03,
        lcl=center - 0.03,
        sigma=0.01,
        mr_center=0.0113,
        mr_ucl=0.0369,
        baseline_n=25,
    )


def _alarm(**overrides: object) -> AlarmRecord:
    alarm = AlarmRecord(
        characteristic="c1",
        rule="1",
        chart="i",
        state="open",
        opened_at=T0,
        last_at=T0,
        count=1,
        limit_version=1,
        last_value=25.04,
        message="Rule 1: point above UCL",
    )
    return replace(alarm, **overrides)  # type: ignore[arg-type]


ACK = Acknowledgement(
    by="anna",
    at=T0 + timedelta(minutes=3, microseconds=7),
    comment="insert worn, replaced",
    cause="tool wear",
    action="new insert; first part measured",
)


def _letter(i: int) -> DeadLetter:
    return DeadLetter(T0 + timedelta(seconds=i), "mqtt:t", f"reason {i}", f'{{"n": {i}}}')


# characteristics ---------------------------------------------------------------------


async def test_upserted_characteristics_are_listed_in_line_process_id_order(store: Store) -> None:
    records = [
        characteristic("b", line="line2", process="vision", source_kind="mqtt"),
        characteristic("a2", lsl=None, target=None, source_kind=None, source_address=None),
        characteristic("a1", rules=("1", "2"), origin="api"),
    ]

    await store.upsert_characteristics(records)

    assert await store.list_characteristics() == [records[2], records[1], records[0]]


async def test_upserting_the_same_id_replaces_the_characteristic(store: Store) -> None:
    await store.upsert_characteristics([characteristic("c1"), characteristic("c2")])

    changed = characteristic("c1", name="Renamed", usl=25.04, origin="api")
    await store.upsert_characteristics([changed])

    listed = await store.list_characteristics()
    assert listed == [changed, characteristic("c2")]


# measurements ------------------------------------------------------------------------


async def test_add_measurements_returns_the_stored_ones(store: Store) -> None:
    batch = [measurement(i) for i in range(3)]

    assert await store.add_measurements(batch) == batch
    assert await store.count_measurements() == 3


async def test_add_measurements_returns_only_those_not_stored_before(store: Store) -> None:
    await store.add_measurements([measurement(0), measurement(1)])

    fresh = await store.add_measurements([measurement(1), measurement(2), measurement(0)])

    assert fresh == [measurement(2)]
    assert await store.count_measurements() == 3


async def test_a_duplicate_within_one_batch_is_stored_once(store: Store) -> None:
    first = measurement(0)
    copy = measurement(0, value=99.0)  # same ingest id: the first one wins

    fresh = await store.add_measurements([first, measurement(1), copy])

    assert fresh == [first, measurement(1)]
    assert await store.count_measurements() == 2
    assert [m.value for m in await store.recent_measurements("c1", 10)] == [10.0, 10.01]


async def test_an_empty_batch_stores_nothing(store: Store) -> None:
    assert await store.add_measurements([]) == []
    assert await store.count_measurements() == 0


async def test_a_large_batch_is_stored_whole(store: Store) -> None:
    batch = [measurement(i) for i in range(1200)]

    assert len(await store.add_measurements(batch)) == 1200
    assert await store.add_measurements(batch) == []


async def test_recent_measurements_are_the_newest_ones_oldest_first(store: Store) -> None:
    # stored out of time order, and with another characteristic mixed in
    order = [3, 0, 4, 1, 2]
    await store.add_measurements([measurement(i) for i in order])
    await store.add_measurements([measurement(9, characteristic="c2", ingest_id="other")])

    recent = await store.recent_measurements("c1", 3)

    assert recent == [measurement(2), measurement(3), measurement(4)]
    assert await store.recent_measurements("c1", 100) == [measurement(i) for i in range(5)]
    assert await store.recent_measurements("c3", 10) == []


async def test_measurements_round_trip_with_every_field(store: Store) -> None:
    stored = measurement(
        0, value=-0.125, part=None, lot=None, quality=Quality.BAD, source="opcua:ns=2;s=x"
    )
    await store.add_measurements([stored])

    assert await store.recent_measurements("c1", 1) == [stored]


async def test_measurements_are_counted_per_characteristic_and_in_total(store: Store) -> None:
    await store.add_measurements(
        [measurement(i) for i in range(4)]
        + [measurement(i, characteristic="c2", ingest_id=f"c2-{i}") for i in range(2)]
    )

    assert await store.count_measurements("c1") == 4
    assert await store.count_measurements("c2") == 2
    assert await store.count_measurements("c3") == 0
    assert await store.count_measurements() == 6


# verdicts and cost events ------------------------------------------------------------


async def test_verdicts_are_stored_once_per_ingest_id(store: Store) -> None:
    assert await store.add_verdicts([verdict(0), verdict(1, ok=False, defects=("gap",))]) == 2
    assert await store.add_verdicts([verdict(1), verdict(2), verdict(2)]) == 1
    assert await store.count_verdicts() == 3


async def test_cost_events_are_stored_once_per_ingest_id(store: Store) -> None:
    claim = cost_event(1, category=CostCategory.CLAIM, note="customer 42")

    assert await store.add_cost_events([cost_event(0), claim]) == 2
    assert await store.add_cost_events([claim, cost_event(2), cost_event(2)]) == 1


async def test_ingest_ids_are_unique_per_kind_of_record_only(store: Store) -> None:
    assert len(await store.add_measurements([measurement(0, ingest_id="same")])) == 1
    assert await store.add_verdicts([verdict(0, ingest_id="same")]) == 1
    assert await store.add_cost_events([cost_event(0, ingest_id="same")]) == 1


# limits ------------------------------------------------------------------------------


async def test_no_limits_are_active_before_any_are_saved(store: Store) -> None:
    assert await store.active_limits("c1") is None


async def test_the_highest_limit_version_is_active(store: Store) -> None:
    v1 = StoredLimits("c1", _limits(1), T0, "baseline of 25 points")
    v3 = StoredLimits("c1", _limits(3, center=25.01), T0 + timedelta(days=2), "recomputed")
    v2 = StoredLimits("c1", _limits(2, center=25.02), T0 + timedelta(days=1), "new tool")
    other = StoredLimits("c2", _limits(7, center=1.5), T0, "baseline")

    for item in (v1, v3, v2, other):
        await store.save_limits(item)

    assert await store.active_limits("c1") == v3
    assert await store.active_limits("c2") == other


async def test_saving_the_same_limit_version_twice_is_refused(store: Store) -> None:
    await store.save_limits(StoredLimits("c1", _limits(1), T0, "baseline"))

    with pytest.raises(StoreError):
        await store.save_limits(StoredLimits("c1", _limits(1, center=9.0), T0, "again"))


# alarms ------------------------------------------------------------------------------


async def test_saving_a_new_alarm_gives_it_an_id_and_saving_it_again_updates_it(
    store: Store,
) -> None:
    opened = await store.save_alarm(_alarm())
    assert opened.id is not None
    assert opened == _alarm(id=opened.id)

    updated = replace(opened, count=3, last_at=T0 + timedelta(seconds=9), last_value=25.05)
    assert await store.save_alarm(updated) == updated

    assert await store.list_alarms() == [updated]


async def test_each_new_alarm_gets_its_own_id(store: Store) -> None:
    a = await store.save_alarm(_alarm())
    b = await store.save_alarm(_alarm(chart="mr"))

    assert a.id != b.id
    assert await store.list_alarms() == [a, b]


async def test_list_alarms_gives_open_ones_by_default_and_all_when_asked(store: Store) -> None:
    open_c1 = await store.save_alarm(_alarm())
    acked_c2 = await store.save_alarm(_alarm(characteristic="c2", state="acknowledged"))
    resolved = await store.save_alarm(_alarm(rule="2", state="resolved"))

    assert await store.list_alarms() == [open_c1, acked_c2]
    assert await store.list_alarms(open_only=False) == [open_c1, acked_c2, resolved]
    assert await store.list_alarms("c1") == [open_c1]
    assert await store.list_alarms("c1", open_only=False) == [open_c1, resolved]
    assert await store.list_alarms("c9", open_only=False) == []


async def test_a_resolved_alarm_leaves_the_open_list(store: Store) -> None:
    alarm = await store.save_alarm(_alarm())

    await store.save_alarm(replace(alarm, state="resolved"))

    assert await store.list_alarms() == []


async def test_an_incident_keeps_its_process_severity_and_details(store: Store) -> None:
    evidence = (
        Evidence(T0, "c1", "1", "i", 25.04, 25.03, 1, "Rule 1: point above UCL"),
        Evidence(T0 + timedelta(seconds=2), "c2", "cusum", "cusum", 0.4, None, 1, "CUSUM"),
    )
    details = IncidentDetails(("c1", "c2"), evidence)
    incident = _alarm(line="l1", process="l1.p1", severity="critical", details=details)

    saved = await store.save_alarm(incident)

    assert await store.get_alarm(saved.id or 0) == saved
    assert saved.characteristics == ("c1", "c2")
    # a characteristic grouped into an incident finds it, an unrelated one does not
    assert await store.list_alarms("c2") == [saved]
    assert await store.list_alarms("c") == []


async def test_alarms_saved_together_get_ids_and_one_event_each(store: Store) -> None:
    a, b = await store.save_alarms([_alarm(), _alarm(characteristic="c2")])
    assert a.id is not None
    assert b.id is not None
    assert a.id != b.id
    both = await store.save_alarms([replace(a, count=2), replace(b, count=3)])

    assert await store.list_alarms() == both
    assert [e.count for e in await store.alarm_events(b.id)] == [1, 3]
    assert await store.save_alarms([]) == []


async def test_resolving_and_escalating_are_audited_with_who_and_why(store: Store) -> None:
    alarm = await store.save_alarm(_alarm())
    assert alarm.id is not None
    later = T0 + timedelta(minutes=15)
    escalated = replace(
        alarm, severity="critical", details=replace(alarm.details, escalated_at=later)
    )
    await store.save_alarm(escalated)
    done = Resolution("system", later + timedelta(minutes=5), "25 points in control")
    await store.save_alarm(
        replace(escalated, state="resolved", details=replace(escalated.details, resolution=done))
    )

    events = await store.alarm_events(alarm.id)
    assert [(e.recorded_at, e.state, e.actor, e.note) for e in events] == [
        (T0, "open", None, None),
        (later, "open", "system", "escalated: critical"),
        (done.at, "resolved", "system", "25 points in control"),
    ]


# dead letters ------------------------------------------------------------------------


async def test_dead_letters_are_listed_newest_first_up_to_the_limit(store: Store) -> None:
    await store.add_dead_letters([_letter(0), _letter(1)])
    await store.add_dead_letters([_letter(2)])
    await store.add_dead_letters([])

    assert await store.list_dead_letters() == [_letter(2), _letter(1), _letter(0)]
    assert await store.list_dead_letters(limit=2) == [_letter(2), _letter(1)]


async def test_a_dead_letter_keeps_its_payload_verbatim(store: Store) -> None:
    letter = DeadLetter(T0, "http:mes", "payload: not valid JSON", '{"a": "\\u00e9\n\x00 ü"')

    await store.add_dead_letters([letter])

    assert await store.list_dead_letters(1) == [letter]


# characteristics: delete ---------------------------------------------------------------


async def test_deleting_a_characteristic_forgets_its_definition_but_keeps_its_data(
    store: Store,
) -> None:
    await store.upsert_characteristics([characteristic("c1"), characteristic("c2")])
    await store.add_measurements([measurement(0)])

    assert await store.delete_characteristic("c1") is True
    assert await store.delete_characteristic("c1") is False

    assert [c.id for c in await store.list_characteristics()] == ["c2"]
    assert await store.count_measurements("c1") == 1


# history and buckets -------------------------------------------------------------------


async def test_history_pages_through_a_time_range_in_time_order(store: Store) -> None:
    await store.add_measurements([measurement(i) for i in (4, 0, 3, 1, 2, 5)])
    await store.add_measurements([measurement(2, characteristic="c2", ingest_id="x")])
    start, end = T0 + timedelta(seconds=1), T0 + timedelta(seconds=5)  # 1..4, half-open

    first = await store.history("c1", start, end, limit=3)
    assert first.items == [measurement(1), measurement(2), measurement(3)]
    assert first.next_after is not None
    second = await store.history("c1", start, end, limit=3, after=first.next_after)
    assert second.items == [measurement(4)]
    assert second.next_after is None
    whole = await store.history("c1", start, end, limit=4)
    assert whole.items == [measurement(i) for i in range(1, 5)]
    assert whole.next_after is None


async def test_history_pages_do_not_skip_rows_that_share_a_time(store: Store) -> None:
    same = [measurement(0, ingest_id=f"same-{i}", value=float(i)) for i in range(5)]
    await store.add_measurements(same)

    seen: list[float] = []
    page = await store.history("c1", T0, T0 + timedelta(seconds=1), limit=2)
    seen += [m.value for m in page.items]
    while page.next_after is not None:
        page = await store.history(
            "c1", T0, T0 + timedelta(seconds=1), limit=2, after=page.next_after
        )
        seen += [m.value for m in page.items]

    assert seen == [0.0, 1.0, 2.0, 3.0, 4.0]  # storage order breaks the tie


async def test_history_includes_every_quality(store: Store) -> None:
    bad = measurement(1, quality=Quality.BAD)
    await store.add_measurements([measurement(0), bad])

    page = await store.history("c1", T0, T0 + timedelta(minutes=1))

    assert page.items == [measurement(0), bad]


async def test_history_refuses_a_page_size_below_one(store: Store) -> None:
    with pytest.raises(StoreError, match="limit"):
        await store.history("c1", T0, T0 + timedelta(seconds=1), limit=0)


def _values_at(seconds_and_values: list[tuple[float, float]]) -> list[Measurement]:
    return [
        measurement(i, time=_HOUR + timedelta(seconds=s), value=v)
        for i, (s, v) in enumerate(seconds_and_values)
    ]


_HOUR = datetime(2025, 3, 14, 8, 0, tzinfo=UTC)  # aligned to every bucket width used below


async def test_buckets_hold_the_sufficient_statistics_of_good_measurements(store: Store) -> None:
    points = [(0, 1.0), (30, 3.0), (59.999999, 2.0), (60, 10.0), (150, -4.0), (170, 6.0)]
    await store.add_measurements(
        [*_values_at(points), measurement(99, time=_HOUR, value=1e6, quality=Quality.BAD)]
    )

    got = await store.buckets("c1", _HOUR, _HOUR + timedelta(hours=1), timedelta(minutes=1))

    assert [b.start for b in got] == [_HOUR + timedelta(minutes=k) for k in (0, 1, 2)]
    assert [b.n for b in got] == [3, 1, 2]
    first = got[0]
    assert (first.minimum, first.maximum) == (1.0, 3.0)
    assert first.total == pytest.approx(6.0)
    assert first.total_sq == pytest.approx(14.0)
    assert first.mean == pytest.approx(2.0)
    assert (got[2].minimum, got[2].maximum) == (-4.0, 6.0)
    assert got[2].mean == pytest.approx(1.0)


async def test_buckets_of_wider_widths_add_up_the_narrow_ones(store: Store) -> None:
    points = [(k * 37.0, float(k % 7)) for k in range(200)]  # about two hours of data
    await store.add_measurements(_values_at(points))
    end = _HOUR + timedelta(hours=3)

    for width in (timedelta(seconds=90), timedelta(minutes=5), timedelta(hours=1)):
        got = await store.buckets("c1", _HOUR, end, width)
        assert sum(b.n for b in got) == 200, width
        assert sum(b.total for b in got) == pytest.approx(sum(v for _, v in points))
        assert all((b.start - _HOUR) % width == timedelta(0) for b in got)
    hourly = await store.buckets("c1", _HOUR, end, timedelta(hours=1))
    in_first_hour = [v for s, v in points if s < 3600]
    assert hourly[0].n == len(in_first_hour)
    assert hourly[0].total_sq == pytest.approx(sum(v * v for v in in_first_hour))


async def test_resent_measurements_are_not_counted_twice_in_buckets(store: Store) -> None:
    first = _values_at([(0, 1.0), (10, 2.0)])
    await store.add_measurements(first)
    await store.add_measurements([*first, *_values_at([(0, 1.0), (10, 2.0), (20, 4.0)])])

    [bucket] = await store.buckets("c1", _HOUR, _HOUR + timedelta(hours=1), timedelta(minutes=1))

    assert (bucket.n, bucket.total, bucket.maximum) == (3, pytest.approx(7.0), 4.0)


async def test_buckets_are_whole_and_start_inside_the_range(store: Store) -> None:
    await store.add_measurements(_values_at([(10, 1.0), (70, 2.0), (130, 3.0)]))

    # from 00:30 to 02:30: the bucket starting 01:00 and the one starting 02:00, both whole
    got = await store.buckets(
        "c1", _HOUR + timedelta(seconds=30), _HOUR + timedelta(seconds=150), timedelta(minutes=1)
    )

    assert [(b.start, b.n) for b in got] == [
        (_HOUR + timedelta(minutes=1), 1),
        (_HOUR + timedelta(minutes=2), 1),
    ]


async def test_buckets_refuse_a_width_that_is_not_whole_seconds(store: Store) -> None:
    for width in (timedelta(0), timedelta(milliseconds=1500), timedelta(seconds=-60)):
        with pytest.raises(StoreError, match="width"):
            await store.buckets("c1", _HOUR, _HOUR + timedelta(hours=1), width)


async def test_buckets_of_an_unknown_characteristic_are_empty(store: Store) -> None:
    assert await store.buckets("c9", _HOUR, _HOUR + timedelta(days=1), timedelta(hours=1)) == []


# verdict and cost summaries ------------------------------------------------------------


async def test_first_pass_counts_use_first_submissions_in_the_period(store: Store) -> None:
    await store.add_verdicts(
        [
            verdict(0),
            verdict(1, ok=False),
            verdict(2, ok=True, first_pass=False),  # re-inspection after rework: not counted
            verdict(3, process="line1.turning"),
            verdict(3600, ok=False),  # outside the period
        ]
    )

    got = await store.first_pass_counts(T0, T0 + timedelta(minutes=10))

    assert got == [FirstPassCount("line1.turning", 1, 1), FirstPassCount("line2.vision", 2, 1)]
    assert await store.first_pass_counts(T0 - timedelta(days=1), T0) == []


async def test_verdicts_of_a_process_are_read_in_time_order_earliest_or_newest(
    store: Store,
) -> None:
    gap = verdict(0, ok=False, defects=("gap", "burr"))
    await store.add_verdicts(
        [
            verdict(2),
            gap,
            verdict(1, first_pass=False),  # a re-inspection
            verdict(3, process="line1.turning"),  # another process
            verdict(4, ingest_id="v-4b"),  # same time as v-4: the ingest_id breaks the tie
            verdict(4),
            verdict(3600),  # outside the period
        ]
    )
    period = (T0, T0 + timedelta(minutes=10))

    def ids(found: list[InspectionVerdict]) -> list[str]:
        return [v.ingest_id for v in found]

    every = await store.verdicts("line2.vision", *period)
    assert ids(every) == ["v-0", "v-1", "v-2", "v-4", "v-4b"]
    assert every[0] == gap  # every field round-trips, times to the microsecond
    assert every[1].first_pass is False
    assert ids(await store.verdicts("line2.vision", *period, limit=2, first_pass_only=True)) == [
        "v-0",
        "v-2",
    ]
    newest = await store.verdicts("line2.vision", *period, limit=3, newest=True)
    assert ids(newest) == ["v-2", "v-4", "v-4b"]  # the latest three, oldest first
    newest_first_pass = await store.verdicts(
        "line2.vision", *period, limit=4, newest=True, first_pass_only=True
    )
    assert ids(newest_first_pass) == ["v-0", "v-2", "v-4", "v-4b"]
    assert await store.verdicts("line9.none", *period) == []
    all_time = (datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC))
    assert ids(await store.verdicts("line2.vision", *all_time, limit=1, newest=True)) == ["v-3600"]
    assert await store.first_pass_counts(*all_time) == [
        FirstPassCount("line1.turning", 1, 1),
        FirstPassCount("line2.vision", 5, 4),
    ]
    with pytest.raises(StoreError, match="limit"):
        await store.verdicts("line2.vision", *period, limit=0)


async def test_cost_totals_sum_per_scope_category_and_currency(store: Store) -> None:
    await store.add_cost_events(
        [
            cost_event(0, amount=100.0),
            cost_event(1, amount=20.5),
            cost_event(2, category=CostCategory.CLAIM, amount=1000.0),
            cost_event(3, scope="line2", amount=7.0, currency="EUR"),
            cost_event(7200, amount=1e9),  # outside the period
        ]
    )

    got = await store.cost_totals(T0, T0 + timedelta(hours=1))

    assert got == [
        CostTotal("line1", CostCategory.CLAIM, "CNY", 1000.0, 1),
        CostTotal("line1", CostCategory.SCRAP, "CNY", 120.5, 2),
        CostTotal("line2", CostCategory.SCRAP, "EUR", 7.0, 1),
    ]


# limit history, alarm history, grade snapshots ----------------------------------------


async def test_limit_history_lists_every_version_oldest_first_with_its_author(
    store: Store,
) -> None:
    v2 = StoredLimits("c1", _limits(2, center=25.01), T0 + timedelta(days=1), "new tool", "li.wei")
    v1 = StoredLimits("c1", _limits(1), T0, "baseline of 25 points")
    await store.save_limits(v2)
    await store.save_limits(v1)
    await store.save_limits(StoredLimits("c2", _limits(1), T0, "other"))

    assert await store.limit_history("c1") == [v1, v2]
    assert v1.author == "system"
    assert await store.limit_history("c9") == []


async def test_the_time_limits_take_effect_is_kept_to_the_microsecond(store: Store) -> None:
    effective = T0 - timedelta(hours=3, microseconds=7)
    saved = StoredLimits("c1", _limits(1), T0, "baseline", effective_at=effective)
    await store.save_limits(saved)
    (loaded,) = await store.limit_history("c1")
    assert loaded.effective_at == effective
    assert loaded.effective_at.tzinfo is not None
    assert loaded.in_force_after == effective
    assert (await store.active_limits("c1")) == saved


async def test_every_saved_state_of_an_alarm_is_its_history(store: Store) -> None:
    opened = await store.save_alarm(_alarm())
    assert opened.id is not None
    later = T0 + timedelta(minutes=5)
    repeated = await store.save_alarm(replace(opened, count=2, last_at=later, last_value=25.06))
    await store.save_alarm(replace(repeated, state="acknowledged"))
    other = await store.save_alarm(_alarm(characteristic="c2"))

    events = await store.alarm_events(opened.id)

    assert [(e.state, e.count, e.recorded_at) for e in events] == [
        ("open", 1, T0),
        ("open", 2, later),
        ("acknowledged", 2, later),
    ]
    assert events[1].last_value == 25.06
    assert all(e.alarm_id == opened.id for e in events)
    assert other.id is not None
    assert len(await store.alarm_events(other.id)) == 1


async def test_updating_an_alarm_that_was_never_saved_is_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="alarm 12345"):
        await store.save_alarm(_alarm(id=12345))
    assert await store.alarm_events(12345) == []


async def test_an_acknowledged_alarm_keeps_who_acknowledged_when_and_why(store: Store) -> None:
    opened = await store.save_alarm(_alarm())
    assert opened.id is not None

    acked = await store.save_alarm(replace(opened, state="acknowledged", ack=ACK))

    assert acked.ack == ACK
    assert await store.get_alarm(opened.id) == acked
    assert await store.list_alarms() == [acked]
    assert await store.list_alarms(open_only=False) == [acked]


async def test_the_acknowledging_event_names_who_and_why_at_the_acknowledgement_time(
    store: Store,
) -> None:
    opened = await store.save_alarm(_alarm())
    assert opened.id is not None
    acked = await store.save_alarm(replace(opened, state="acknowledged", ack=ACK))
    later = ACK.at + timedelta(minutes=1)
    await store.save_alarm(replace(acked, count=2, last_at=later, last_value=25.07))

    events = await store.alarm_events(opened.id)

    assert events == [
        AlarmEvent(opened.id, T0, "open", 1, 25.04),
        AlarmEvent(opened.id, ACK.at, "acknowledged", 1, 25.04, "anna", "insert worn, replaced"),
        AlarmEvent(opened.id, later, "acknowledged", 2, 25.07),  # a repeat: no actor
    ]
    assert await store.get_alarm(opened.id) == replace(
        acked, count=2, last_at=later, last_value=25.07
    )


async def test_an_alarm_saved_already_acknowledged_records_who_in_its_first_event(
    store: Store,
) -> None:
    alarm = await store.save_alarm(_alarm(state="acknowledged", ack=replace(ACK, cause=None)))
    assert alarm.id is not None

    [event] = await store.alarm_events(alarm.id)

    assert (event.recorded_at, event.actor, event.note) == (ACK.at, "anna", ACK.comment)
    assert await store.get_alarm(alarm.id) == alarm


async def test_get_alarm_finds_an_alarm_in_any_state_and_none_for_an_unknown_id(
    store: Store,
) -> None:
    opened = await store.save_alarm(_alarm())
    resolved = await store.save_alarm(_alarm(rule="2", state="resolved"))
    assert opened.id is not None
    assert resolved.id is not None

    assert await store.get_alarm(opened.id) == opened
    assert await store.get_alarm(resolved.id) == resolved
    assert await store.get_alarm(max(opened.id, resolved.id) + 1) is None
    assert await store.get_alarm(2**63) is None  # beyond any backend's integer ids
    assert await store.alarm_events(2**63) == []
    with pytest.raises(StoreError, match="no such alarm"):
        await store.save_alarm(_alarm(id=-(2**63) - 1))


async def test_grade_snapshots_are_kept_per_entity_in_time_order(store: Store) -> None:
    def snap(hours: int, grade: int | None, entity: str = "line1") -> GradeSnapshot:
        metrics = {"cpk": 1.41 + hours / 100, "fpy": None}
        return GradeSnapshot(
            T0 + timedelta(hours=hours), "line", entity, grade, "cpk" if grade else None, metrics
        )

    await store.add_grade_snapshots([snap(2, 3), snap(0, None), snap(1, 3, "line2")])
    await store.add_grade_snapshots([snap(1, 4)])
    await store.add_grade_snapshots([])

    got = await store.grade_history("line", "line1", T0, T0 + timedelta(hours=2))

    assert got == [snap(0, None), snap(1, 4)]  # end is exclusive
    assert got[1].metrics == {"cpk": 1.42, "fpy": None}
    assert await store.grade_history("process", "line1", T0, T0 + timedelta(days=1)) == []


async def test_capability_sums_add_up_per_characteristic_in_the_period(store: Store) -> None:
    def bucket(char: str, hour: int, n: int, shift: float = 10.0, oos: int = 0) -> CapabilityBucket:
        sums = CapabilitySums(n, shift, 0.5 * n, 0.25 * n, 0.1 * n, n - 1, oos)
        return CapabilityBucket(char, T0 + timedelta(hours=hour), sums)

    await store.add_capability_sums([bucket("c1", 0, 10), bucket("c1", 1, 20, oos=1)])
    await store.add_capability_sums([bucket("c1", 1, 5), bucket("c2", 0, 7)])  # adds to hour 1
    await store.add_capability_sums([bucket("c1", 1, 4, shift=9.0)])  # another shift, same hour
    await store.add_capability_sums([bucket("c1", 2, 100)])  # outside [T0, T0 + 2 h)
    await store.add_capability_sums([])

    totals = await store.capability_totals(T0, T0 + timedelta(hours=2))

    assert set(totals) == {"c1", "c2"}
    c1 = totals["c1"]
    assert (c1.n, c1.dispersion_n, c1.out_of_spec) == (39, 9 + 19 + 4 + 3, 1)
    # the values' sum is exact whatever the shifts: 35 values about 10 and 4 about 9
    assert c1.shift + c1.sum_d / c1.n == pytest.approx((35 * 10.5 + 4 * 9.5) / 39)
    assert c1.dispersion_sum == pytest.approx(3.9)
    assert totals["c2"].n == 7
    assert await store.capability_totals(T0 + timedelta(days=1), T0 + timedelta(days=2)) == {}


# times, durability, lifecycle --------------------------------------------------------


async def test_times_round_trip_to_the_microsecond_in_utc(store: Store) -> None:
    local = datetime(2025, 3, 14, 10, 0, 0, 999_999, tzinfo=timezone(timedelta(hours=2)))
    before_epoch = datetime(1969, 12, 31, 23, 59, 59, 1, tzinfo=UTC)

    await store.add_measurements([measurement(0, time=local), measurement(1, time=before_epoch)])
    await store.save_limits(StoredLimits("c1", _limits(1), local, "baseline"))
    ack = Acknowledgement("anna", local, "checked")
    await store.save_alarm(_alarm(opened_at=local, last_at=before_epoch, ack=ack))
    await store.add_dead_letters([DeadLetter(local, "s", "r", "p")])

    times = [m.time for m in await store.recent_measurements("c1", 2)]
    limits = await store.active_limits("c1")
    [alarm] = await store.list_alarms()
    [letter] = await store.list_dead_letters()
    expected = datetime(2025, 3, 14, 8, 0, 0, 999_999, tzinfo=UTC)
    assert times == [before_epoch, expected]
    assert limits is not None
    assert limits.created_at == expected
    assert (alarm.opened_at, alarm.last_at) == (expected, before_epoch)
    assert alarm.ack is not None
    assert alarm.ack.at == expected
    assert letter.received_at == expected
    for t in (*times, limits.created_at, alarm.opened_at, alarm.ack.at, letter.received_at):
        assert t.utcoffset() == timedelta(0)


async def test_stored_data_survives_closing_and_reopening(connect: Connect) -> None:
    first = await connect()
    await first.upsert_characteristics([characteristic("c1")])
    await first.add_measurements([measurement(0), measurement(1)])
    await first.add_verdicts([verdict(0)])
    await first.save_limits(StoredLimits("c1", _limits(2), T0, "baseline"))
    alarm = await first.save_alarm(_alarm())
    acked = await first.save_alarm(_alarm(rule="2", state="acknowledged", ack=ACK))
    await first.add_dead_letters([_letter(0)])
    await first.close()

    second = await connect()
    try:
        assert await second.list_characteristics() == [characteristic("c1")]
        assert await second.recent_measurements("c1", 5) == [measurement(0), measurement(1)]
        assert await second.add_measurements([measurement(1)]) == []
        assert await second.count_verdicts() == 1
        assert await second.active_limits("c1") == StoredLimits("c1", _limits(2), T0, "baseline")
        assert await second.list_alarms() == [alarm, acked]
        assert await second.list_dead_letters() == [_letter(0)]
    finally:
        await second.close()


async def test_operations_after_close_raise_store_error(connect: Connect) -> None:
    closed = await connect()
    await closed.close()

    with pytest.raises(StoreError):
        await closed.count_measurements()
    with pytest.raises(StoreError):
        await closed.add_measurements([measurement(0)])


async def test_the_store_names_its_backend(store: Store) -> None:
    assert store.kind in BACKENDS


# SQLite only, then restart replay -----------------------------------------------------


async def test_the_sqlite_store_runs_in_wal_mode(tmp_path: Path, anyio_backend: str) -> None:
    path = tmp_path / "wal.sqlite3"
    store = SqliteStore(path)
    await store.open()
    try:
        await store.add_measurements([measurement(0)])
        conn = sqlite3.connect(path)
        try:
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            # another connection sees the committed row while the store stays open
            assert conn.execute("SELECT count(*) FROM measurements").fetchone() == (1,)
        finally:
            conn.close()
    finally:
        await store.close()


async def test_charted_tail_ends_with_a_late_arriving_old_measurement(store: Store) -> None:
    await store.add_measurements([measurement(i) for i in range(5)])
    late = measurement(9, time=T0 - timedelta(days=30))  # yesterday's batch, resent today
    await store.add_measurements([late])

    assert await store.charted_tail("c1", 3) == [measurement(3), measurement(4), late]


async def test_charted_tail_replays_good_measurements_in_storage_order(store: Store) -> None:
    order = [3, 0, 4, 1, 2]  # stored out of time order: the replay keeps storage order
    await store.add_measurements([measurement(i) for i in order])
    await store.add_measurements([measurement(5, quality=Quality.BAD)])

    assert await store.count_charted("c1") == 5
    assert await store.charted_tail("c1", 3) == [measurement(4), measurement(1), measurement(2)]
    assert await store.charted_tail("c9", 3) == []
