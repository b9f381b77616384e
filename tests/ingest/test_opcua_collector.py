"""The OPC UA collector against the line simulator's real asyncua server."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asyncua import ua
from asyncua.ua.status_codes import StatusCodes

from ingest.model import Quality
from ingest.opcua import OpcuaCollector, quality_of, to_submission
from ingest.pipeline import Pipeline
from ingest.sqlite_store import SqliteStore
from simulators import OpcuaLineSimulator, Scenario
from tests.ingest.pipelines import RecordingEvaluator, running, wait_until
from tests.support.mosquitto import free_port

pytestmark = pytest.mark.anyio

DIAMETER = "line1.turning.diameter"
LENGTH = "line1.turning.length"
NODES = {
    "ns=2;s=Demo/line1/turning/diameter": DIAMETER,
    "ns=2;s=Demo/line1/turning/length": LENGTH,
}
ENDPOINT = "opc.tcp://127.0.0.1:4840/spcmon/sim"
WHEN = datetime(2025, 3, 14, 8, 0, 0, 123456)  # asyncua hands out naive UTC


def _simulator(config: Path, port: int) -> OpcuaLineSimulator:
    return OpcuaLineSimulator(config, port, Scenario("in-control", seed=1), takt_s=None)


@asynccontextmanager
async def _collecting(endpoint: str, pipeline: Pipeline) -> AsyncIterator[OpcuaCollector]:
    collector = OpcuaCollector(endpoint, NODES, pipeline, publishing_interval_ms=20)
    collector.start()
    try:
        yield collector
    finally:
        await collector.stop()


def _value_stored(
    store: SqliteStore, characteristic: str, value: float
) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        recent = await store.recent_measurements(characteristic, 50)
        return any(m.value == value for m in recent)

    return check


def _dv(status: int = StatusCodes.Good, source: datetime | None = WHEN) -> ua.DataValue:
    return ua.DataValue(
        Value=ua.Variant(25.01, ua.VariantType.Double),
        StatusCode=ua.StatusCode(ua.UInt32(status)),
        # asyncua annotates timestamps with its DateTime marker class; datetimes are what it uses
        SourceTimestamp=source,  # type: ignore[arg-type]
        ServerTimestamp=WHEN + timedelta(seconds=1),  # type: ignore[arg-type]
    )


async def test_published_values_arrive_as_good_measurements_with_source_timestamps(
    demo_config_path: Path, sqlite_store: SqliteStore
) -> None:
    evaluator = RecordingEvaluator()
    pipeline = Pipeline(sqlite_store, set(NODES.values()), evaluator)

    async with (
        _simulator(demo_config_path, free_port()) as sim,
        running(pipeline),
        _collecting(sim.endpoint, pipeline) as collector,
    ):
        await wait_until(lambda: collector.connected, what="the subscription")
        before = datetime.now(UTC)
        await sim.publish_part({DIAMETER: 25.01, LENGTH: 120.05})
        after = datetime.now(UTC)
        await wait_until(_value_stored(sqlite_store, DIAMETER, 25.01), what="25.01")
        await wait_until(_value_stored(sqlite_store, LENGTH, 120.05), what="120.05")
        await pipeline.drain()

    [diameter] = [
        m for m in await sqlite_store.recent_measurements(DIAMETER, 50) if m.value == 25.01
    ]
    assert before <= diameter.time <= after
    assert diameter.quality is Quality.GOOD
    assert diameter.source == "opcua:ns=2;s=Demo/line1/turning/diameter"
    assert diameter in evaluator.evaluated
    assert collector.changes_received >= 2


@pytest.mark.parametrize(
    ("status", "quality"),
    [
        (None, Quality.GOOD),
        (StatusCodes.Good, Quality.GOOD),
        (StatusCodes.GoodClamped, Quality.GOOD),
        (StatusCodes.GoodLocalOverride, Quality.GOOD),
        (StatusCodes.Uncertain, Quality.UNCERTAIN),
        (StatusCodes.UncertainLastUsableValue, Quality.UNCERTAIN),
        (StatusCodes.UncertainSensorNotAccurate, Quality.UNCERTAIN),
        (StatusCodes.Bad, Quality.BAD),
        (StatusCodes.BadSensorFailure, Quality.BAD),
        (StatusCodes.BadCommunicationError, Quality.BAD),
    ],
)
def test_quality_follows_the_status_code_class(status: int | None, quality: Quality) -> None:
    code = None if status is None else ua.StatusCode(ua.UInt32(status))

    assert quality_of(code) is quality


def test_a_data_change_maps_to_a_measurement_in_utc() -> None:
    sub = to_submission(ENDPOINT, "ns=2;s=x", DIAMETER, 25.01, _dv(), datetime.now(UTC))

    [m] = sub.measurements
    assert (m.characteristic, m.value, m.quality) == (DIAMETER, 25.01, Quality.GOOD)
    assert m.time == WHEN.replace(tzinfo=UTC)
    assert m.source == "opcua:ns=2;s=x"
    assert sub.dead_letters == []


def test_a_value_with_a_bad_status_is_kept_flagged() -> None:
    sub = to_submission(
        ENDPOINT, "ns=2;s=x", DIAMETER, 25.01, _dv(StatusCodes.BadSensorFailure), datetime.now(UTC)
    )

    assert sub.measurements[0].quality is Quality.BAD


def test_without_a_source_timestamp_the_server_timestamp_is_used() -> None:
    sub = to_submission(ENDPOINT, "ns=2;s=x", DIAMETER, 1, _dv(source=None), datetime.now(UTC))

    assert sub.measurements[0].time == (WHEN + timedelta(seconds=1)).replace(tzinfo=UTC)


def test_the_same_reading_resent_after_a_reconnect_gets_the_same_ingest_id() -> None:
    first = to_submission(ENDPOINT, "ns=2;s=x", DIAMETER, 25.01, _dv(), datetime.now(UTC))
    again = to_submission(ENDPOINT, "ns=2;s=x", DIAMETER, 25.01, _dv(), datetime.now(UTC))
    later = to_submission(
        ENDPOINT, "ns=2;s=x", DIAMETER, 25.01, _dv(source=WHEN + timedelta(1)), datetime.now(UTC)
    )
    other_node = to_submission(ENDPOINT, "ns=2;s=y", DIAMETER, 25.01, _dv(), datetime.now(UTC))

    key = first.measurements[0].ingest_id
    assert again.measurements[0].ingest_id == key
    assert later.measurements[0].ingest_id != key
    assert other_node.measurements[0].ingest_id != key


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        pytest.param("25.01", "node value must be numeric, got str", id="string"),
        pytest.param(True, "node value must be numeric, got bool", id="bool"),
        pytest.param(None, "node value must be numeric, got NoneType", id="null"),
        pytest.param([25.0, 25.1], "node value must be numeric, got list", id="array"),
        pytest.param(math.nan, "must be finite", id="NaN"),
        pytest.param(-math.inf, "must be finite", id="-inf"),
    ],
)
def test_a_non_numeric_value_becomes_a_dead_letter(value: object, problem: str) -> None:
    now = datetime.now(UTC)

    sub = to_submission(ENDPOINT, "ns=2;s=x", DIAMETER, value, _dv(), now)

    assert sub.measurements == []
    [letter] = sub.dead_letters
    assert letter.reason.startswith("value: ")
    assert problem in letter.reason
    assert (letter.source, letter.received_at, letter.payload) == (
        "opcua:ns=2;s=x",
        now,
        repr(value),
    )


async def test_the_collector_reconnects_after_the_server_restarts(
    demo_config_path: Path, sqlite_store: SqliteStore
) -> None:
    port = free_port()
    pipeline = Pipeline(sqlite_store, set(NODES.values()), RecordingEvaluator())

    async with running(pipeline):
        async with _simulator(demo_config_path, port) as sim:
            collector = OpcuaCollector(sim.endpoint, NODES, pipeline, publishing_interval_ms=20)
            collector.start()
            try:
                await wait_until(lambda: collector.connected, what="the first session")
                await sim.publish_part({DIAMETER: 25.011})
                await wait_until(_value_stored(sqlite_store, DIAMETER, 25.011), what="25.011")
            except BaseException:
                await collector.stop()
                raise
        try:
            await wait_until(lambda: not collector.connected, what="the connection loss")
            async with _simulator(demo_config_path, port) as restarted:
                await wait_until(lambda: collector.connected, timeout_s=10, what="reconnection")
                await restarted.publish_part({DIAMETER: 25.022})
                await wait_until(_value_stored(sqlite_store, DIAMETER, 25.022), what="25.022")
        finally:
            await collector.stop()
