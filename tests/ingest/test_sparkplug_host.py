"""The Sparkplug B host application against a real mosquitto, the simulators' real edge node
(the vision camera) and hand-driven edge sessions, feeding a pipeline on SQLite."""

from __future__ import annotations

import json
import queue
import threading
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from app.metrics import SparkplugCollector
from ingest.model import Quality
from ingest.mqtt import MqttOptions
from ingest.pipeline import Pipeline
from ingest.sparkplug_host import SparkplugHost, SparkplugHostOptions
from ingest.sparkplug_payload import MetricAddress
from ingest.sqlite_store import SqliteStore
from simulators.plant import load_plant
from simulators.scenario import Scenario
from simulators.sparkplug import (
    Message,
    SparkplugNode,
    SparkplugOptions,
    build_devices,
    epoch_ms,
    is_rebirth_request,
    ndeath_payload,
)
from simulators.sparkplug_b_pb2 import Payload
from simulators.vision_camera import VisionCamera
from tests.ingest.pipelines import RecordingEvaluator, running, wait_until
from tests.support.mosquitto import Broker
from tests.support.relay import CuttableRelay

pytestmark = pytest.mark.anyio

EDGE = SparkplugOptions(group_id="demo", edge_node_id="camera1")  # the camera's, as in the demo
DEVICE = "line2.vision"
JSON_TOPIC = "demo/line2/vision/result"
GAP, OFFSET, VERDICT = "line2.vision.gap", "line2.vision.offset", "line2.vision.verdict"
BINDINGS = {
    MetricAddress("demo", "camera1", DEVICE, "features/gap_mm"): (GAP,),
    MetricAddress("demo", "camera1", DEVICE, "features/offset_mm"): (OFFSET,),
}
KNOWN = frozenset({GAP, OFFSET, VERDICT})
HOST_ID = "spcmon-test"
STATE = f"spBv1.0/STATE/{HOST_ID}"
NCMD = "spBv1.0/demo/NCMD/camera1"
SOURCE = f"sparkplug:demo/camera1/{DEVICE}"
REORDER_S = 0.5


@asynccontextmanager
async def _hosting(
    port: int,
    pipeline: Pipeline,
    bindings: Mapping[MetricAddress, Sequence[str]] = BINDINGS,
    client_id: str = "spcmon-sparkplug-test",
) -> AsyncIterator[SparkplugHost]:
    """A started host whose subscriptions are live (its STATE birth is out)."""
    options = MqttOptions("127.0.0.1", port, client_id=client_id, keepalive_s=10)
    host = SparkplugHost(options, SparkplugHostOptions(HOST_ID, REORDER_S), bindings, pipeline)
    host.start()
    try:
        await wait_until(lambda: host.online, what="the host's STATE birth")
        yield host
    finally:
        await anyio.to_thread.run_sync(host.stop)


class _Client:
    """A paho client of the test: publishes, and records what arrives on its subscriptions."""

    def __init__(self, broker: Broker, *topics: str, port: int | None = None) -> None:
        self.received: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex}")
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = lambda _c, _u, msg: self.received.put(msg)
        self.client.connect(broker.host, port or broker.port)
        self.client.loop_start()
        if topics:
            self.client.subscribe([(t, 1) for t in topics])
            assert subscribed.wait(5), "subscription was not acknowledged"

    def send(self, *messages: Message | tuple[str, bytes]) -> None:
        """Publish with QoS 0, as Sparkplug edge nodes do, in order; return once written."""
        for topic, payload in messages:
            self.client.publish(topic, payload, qos=0).wait_for_publish(5)

    def take(self, timeout: float = 5.0) -> mqtt.MQTTMessage:
        return self.received.get(timeout=timeout)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def node(demo_config_path: Path) -> SparkplugNode:
    """The camera's Sparkplug session without the camera: the test sends its messages."""
    plant = load_plant(demo_config_path)
    stations = [(i, plant.characteristics_on(i.topic)) for i in plant.inspections]
    return SparkplugNode(EDGE, build_devices(stations))


@pytest.fixture
def edge(mosquitto: Broker) -> Iterator[_Client]:
    """A hand-driven edge node's connection, listening to the commands sent to it."""
    client = _Client(mosquitto, NCMD)
    yield client
    client.close()


def _part(n: int, gap: float | None = 1.5, offset: float = 0.01) -> tuple[dict[str, Any], datetime]:
    at = datetime(2026, 3, 14, 8, 0, tzinfo=UTC) + timedelta(seconds=n)
    features = {"offset_mm": offset} if gap is None else {"gap_mm": gap, "offset_mm": offset}
    result = {"serial": f"line2-{n:06d}", "features": features, "verdict": "OK", "defects": []}
    return {**result, "inspection": "first"}, at


def _data(node: SparkplugNode, n: int, gap: float | None = 1.5) -> Message:
    result, at = _part(n, gap)
    return node.data(DEVICE, result, at)


async def _gaps(store: SqliteStore) -> list[float]:
    return [m.value for m in await store.recent_measurements(GAP, 100)]


def _stored(store: SqliteStore, characteristic: str, count: int) -> Any:
    async def check() -> bool:
        return await store.count_measurements(characteristic) >= count

    return check


def _dead_lettered(store: SqliteStore, count: int) -> Any:
    async def check() -> bool:
        return len(await store.list_dead_letters()) >= count

    return check


def _camera(config: Path, port: int) -> VisionCamera:
    return VisionCamera(config, "127.0.0.1", port, Scenario("in-control", 3), None, sparkplug=EDGE)


def _json_time(part: dict[str, Any]) -> datetime:
    parsed = datetime.strptime(part["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=epoch_ms(parsed))


# --- with the simulators' camera as the edge node -----------------------------------------


async def test_camera_data_by_alias_is_stored_with_the_characteristic_time_and_value(
    demo_config_path: Path, mosquitto: Broker, sqlite_store: SqliteStore
) -> None:
    evaluator = RecordingEvaluator()
    pipeline = Pipeline(sqlite_store, KNOWN, evaluator)
    camera = _camera(demo_config_path, mosquitto.port)

    async with running(pipeline), _hosting(mosquitto.port, pipeline):
        await anyio.to_thread.run_sync(camera.start)  # NBIRTH, DBIRTH: every metric null
        try:
            parts = [camera.publish_part()[JSON_TOPIC] for _ in range(3)]
            await wait_until(_stored(sqlite_store, OFFSET, 3), what="3 parts")
            await pipeline.drain()
        finally:
            await anyio.to_thread.run_sync(camera.stop)

    gaps = await sqlite_store.recent_measurements(GAP, 10)
    assert [(m.value, m.time, m.source) for m in gaps] == [
        (p["features"]["gap_mm"], _json_time(p), SOURCE) for p in parts
    ]
    offsets = await sqlite_store.recent_measurements(OFFSET, 10)
    assert [m.value for m in offsets] == [p["features"]["offset_mm"] for p in parts]
    assert await sqlite_store.list_dead_letters() == []
    assert {live for _, live in evaluator.calls} == {True}
    assert len(evaluator.evaluated) == 6


async def test_a_node_born_before_the_host_is_asked_to_rebirth_and_its_part_is_kept(
    demo_config_path: Path, mosquitto: Broker, sqlite_store: SqliteStore
) -> None:
    pipeline = Pipeline(sqlite_store, KNOWN, RecordingEvaluator())
    camera = _camera(demo_config_path, mosquitto.port)
    await anyio.to_thread.run_sync(camera.start)  # births before the host listens
    assert await anyio.to_thread.run_sync(camera.wait_published, 5.0)
    try:
        async with running(pipeline), _hosting(mosquitto.port, pipeline) as host:
            second = camera.publish_part()[JSON_TOPIC]  # DDATA without a birth: refused...
            await wait_until(_stored(sqlite_store, GAP, 1), what="the rebirth's DBIRTH")
            third = camera.publish_part()[JSON_TOPIC]
            await wait_until(_stored(sqlite_store, GAP, 2), what="the next part")
            await pipeline.drain()
    finally:
        await anyio.to_thread.run_sync(camera.stop)

    # ... kept as a dead letter, and its values stored from the DBIRTH's last values
    assert await _gaps(sqlite_store) == [second["features"]["gap_mm"], third["features"]["gap_mm"]]
    [letter] = await sqlite_store.list_dead_letters()
    assert letter.reason == "birth: no NBIRTH yet; rebirth requested"
    assert letter.source == f"sparkplug:spBv1.0/demo/DDATA/camera1/{DEVICE}"
    assert json.loads(letter.payload)["metrics"][0]["string_value"] == second["serial"]
    assert host.rebirths_requested == 1
    exposed = _exposed(host)  # what Prometheus scrapes
    assert exposed[("spcmon_sparkplug_rebirths_requested_total", ())] == 1
    assert exposed[("spcmon_sparkplug_messages_total", ())] == host.messages_received >= 3


def _exposed(host: SparkplugHost) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The host's samples as the service's /metrics shows them: (name, labels) -> value."""
    registry = CollectorRegistry()
    registry.register(SparkplugCollector(host))
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_a_clean_camera_stop_makes_its_characteristics_stale_until_its_next_birth(
    demo_config_path: Path, mosquitto: Broker, sqlite_store: SqliteStore
) -> None:
    pipeline = Pipeline(sqlite_store, KNOWN, RecordingEvaluator())
    camera, successor = (_camera(demo_config_path, mosquitto.port) for _ in range(2))
    deaths: list[list[str]] = []

    try:
        async with running(pipeline), _hosting(mosquitto.port, pipeline) as host:
            host.on_death = deaths.append
            await anyio.to_thread.run_sync(camera.start)
            await anyio.to_thread.run_sync(camera.stop)  # DDEATH, then NDEATH with the bdSeq
            await wait_until(lambda: host.dropped.get("node_death") == 1, what="the NDEATH")
            stale = host.stale_characteristics()
            await anyio.to_thread.run_sync(successor.start)  # the node back: new births
            await wait_until(lambda: not host.stale_characteristics(), what="the new births")
    finally:
        await anyio.to_thread.run_sync(successor.stop)

    assert stale == {GAP, OFFSET}
    assert deaths == [[GAP, OFFSET]]  # by the DDEATH; the NDEATH finds them stale already
    exposed = _exposed(host)
    assert exposed[("spcmon_sparkplug_dropped_messages_total", (("reason", "node_death"),))] == 1
    assert exposed[("spcmon_sparkplug_stale_characteristics", ())] == 0  # reborn since


# --- with hand-driven edge sessions -------------------------------------------------------


async def test_null_metrics_are_stored_bad_and_not_evaluated_historical_ones_not_live(
    mosquitto: Broker, sqlite_store: SqliteStore, node: SparkplugNode, edge: _Client
) -> None:
    evaluator = RecordingEvaluator()
    pipeline = Pipeline(sqlite_store, KNOWN, evaluator)
    replay = Payload(timestamp=epoch_ms(datetime.now(UTC)), seq=3)  # store and forward
    replay.metrics.add(alias=5, double_value=1.45, timestamp=1_773_475_100_000, is_historical=True)

    async with running(pipeline), _hosting(mosquitto.port, pipeline):
        edge.send(*node.births(epoch_ms(datetime.now(UTC))), _data(node, 1, gap=None))
        edge.send((node.topic("DDATA", DEVICE), replay.SerializeToString()))
        await wait_until(_stored(sqlite_store, GAP, 2), what="the null and the replayed gap")
        await pipeline.drain()

    replayed, null = await sqlite_store.recent_measurements(GAP, 10)
    assert (replayed.value, replayed.quality) == (1.45, Quality.GOOD)
    assert replayed.time == datetime(2026, 3, 14, 7, 58, 20, tzinfo=UTC)
    assert (null.value, null.quality, null.time) == (0.0, Quality.BAD, _part(1)[1])
    evaluated = sorted((m.characteristic, live) for batch, live in evaluator.calls for m in batch)
    assert evaluated == [(GAP, False), (OFFSET, True)]


async def test_a_seq_gap_asks_a_rebirth_after_the_reorder_timeout_and_data_waits_for_it(
    mosquitto: Broker, sqlite_store: SqliteStore, node: SparkplugNode, edge: _Client
) -> None:
    pipeline = Pipeline(sqlite_store, KNOWN, RecordingEvaluator())

    async with running(pipeline), _hosting(mosquitto.port, pipeline) as host:
        edge.send(*node.births(epoch_ms(datetime.now(UTC))), _data(node, 1, gap=1.1))
        _lost = _data(node, 2)  # seq 3 never reaches the broker
        sent_at = anyio.current_time()
        edge.send(_data(node, 3, gap=1.3), _data(node, 4, gap=1.4))
        command = await anyio.to_thread.run_sync(edge.take)
        waited = anyio.current_time() - sent_at
        edge.send(_data(node, 5, gap=1.5))  # before the new NBIRTH: refused
        await wait_until(_dead_lettered(sqlite_store, 3), what="3 refused messages")
        edge.send(*node.births(epoch_ms(datetime.now(UTC))), _data(node, 6, gap=1.6))
        await wait_until(_stored(sqlite_store, GAP, 3), what="data after the rebirth")
        await pipeline.drain()

    assert (command.topic, is_rebirth_request(command.payload), command.retain) == (NCMD, True, 0)
    assert REORDER_S - 0.05 <= waited < REORDER_S + 2.0
    assert host.rebirths_requested == 1
    # part 5 is not lost: the DBIRTH brings the last values
    assert await _gaps(sqlite_store) == [1.1, 1.5, 1.6]
    reasons = sorted(d.reason for d in await sqlite_store.list_dead_letters())
    assert reasons == [
        "birth: ignored until the NBIRTH of the rebirth requested",
        "seq: 3 never came; rebirth requested",
        "seq: 3 never came; rebirth requested",
    ]


async def test_messages_reordered_within_the_timeout_are_taken_in_seq_order(
    mosquitto: Broker, sqlite_store: SqliteStore, node: SparkplugNode, edge: _Client
) -> None:
    evaluator = RecordingEvaluator()
    pipeline = Pipeline(sqlite_store, KNOWN, evaluator)

    async with running(pipeline), _hosting(mosquitto.port, pipeline) as host:
        edge.send(*node.births(epoch_ms(datetime.now(UTC))))
        first, second, third = (_data(node, n, gap=1.0 + n / 10) for n in (1, 2, 3))
        edge.send(first, third, second)
        await wait_until(_stored(sqlite_store, GAP, 3), what="3 parts")
        await anyio.sleep(REORDER_S + 0.2)  # the timer that started must not fire
        await pipeline.drain()

    assert [m.value for m in evaluator.evaluated if m.characteristic == GAP] == [1.1, 1.2, 1.3]
    assert host.rebirths_requested == 0
    assert edge.received.empty()
    assert await sqlite_store.list_dead_letters() == []


async def test_only_an_ndeath_with_the_births_bdseq_makes_the_node_stale(
    mosquitto: Broker, sqlite_store: SqliteStore, node: SparkplugNode, edge: _Client
) -> None:
    pipeline = Pipeline(sqlite_store, KNOWN, RecordingEvaluator())
    deaths: list[list[str]] = []
    node.bd_seq = 7

    async with running(pipeline), _hosting(mosquitto.port, pipeline) as host:
        host.on_death = deaths.append
        edge.send(*node.births(epoch_ms(datetime.now(UTC))))
        edge.send((node.topic("NDEATH"), ndeath_payload(6, 0)))  # a late Will of bdSeq 6
        await wait_until(lambda: host.dropped.get("stale_death") == 1, what="the stale NDEATH")
        stale_after_old = host.stale_characteristics()
        edge.send(node.death(0))
        await wait_until(lambda: bool(host.stale_characteristics()), what="the NDEATH")

    assert stale_after_old == frozenset()
    assert host.stale_characteristics() == {GAP, OFFSET}
    assert deaths == [[GAP, OFFSET]]


async def test_unknown_aliases_non_numeric_metrics_and_garbage_are_dead_lettered(
    mosquitto: Broker, sqlite_store: SqliteStore, node: SparkplugNode, edge: _Client
) -> None:
    pipeline = Pipeline(sqlite_store, KNOWN, RecordingEvaluator())
    bindings = {**BINDINGS, MetricAddress("demo", "camera1", DEVICE, "verdict"): (VERDICT,)}
    odd = Payload(timestamp=epoch_ms(datetime.now(UTC)), seq=3)
    odd.metrics.add(alias=99, double_value=1.0)
    odd.metrics.add(alias=6, double_value=0.02)
    topic = node.topic("DDATA", DEVICE)

    async with running(pipeline), _hosting(mosquitto.port, pipeline, bindings):
        edge.send(*node.births(epoch_ms(datetime.now(UTC))), _data(node, 1))
        edge.send((topic, odd.SerializeToString()))
        edge.client.publish(topic, b"\xff\xfe not protobuf", qos=1).wait_for_publish(5)
        await wait_until(_dead_lettered(sqlite_store, 3), what="3 dead letters")
        await pipeline.drain()

    letters = {
        d.reason.partition(": Error parsing")[0]: d for d in await sqlite_store.list_dead_letters()
    }
    assert sorted(letters) == [
        "metric 'verdict': datatype String is not a measurement (only Int8..UInt64, Float and "
        "Double are)",
        "metric alias 99: no birth declared this alias",
        "payload: not a Sparkplug B protobuf payload",
    ]
    garbage = letters["payload: not a Sparkplug B protobuf payload"]
    assert (garbage.source, garbage.payload) == (
        f"sparkplug:{topic}",
        "base64://4gbm90IHByb3RvYnVm",
    )
    assert json.loads(letters["metric alias 99: no birth declared this alias"].payload) == {
        "alias": "99",
        "double_value": 1.0,
    }
    assert [m.value for m in await sqlite_store.recent_measurements(OFFSET, 10)] == [0.01, 0.02]


# --- the host's own STATE, and losing the broker ------------------------------------------


def _state(message: mqtt.MQTTMessage) -> tuple[bool, int]:
    document = json.loads(message.payload)
    assert set(document) == {"online", "timestamp"}
    return document["online"], document["timestamp"]


def _retained_state(broker: Broker) -> tuple[tuple[bool, int], bool]:
    late = _Client(broker, STATE)
    try:
        message = late.take()
        return _state(message), bool(message.retain)
    finally:
        late.close()


async def test_state_birth_will_and_reconnect_with_rebirth_after_a_lost_connection(
    demo_config_path: Path, mosquitto: Broker, sqlite_store: SqliteStore
) -> None:
    pipeline = Pipeline(sqlite_store, KNOWN, RecordingEvaluator())
    watcher = _Client(mosquitto, STATE)
    relay = CuttableRelay(mosquitto)
    camera = _camera(demo_config_path, mosquitto.port)
    deaths: list[list[str]] = []
    try:
        async with running(pipeline), _hosting(relay.port, pipeline) as host:
            host.on_death = deaths.append
            birth = _state(await anyio.to_thread.run_sync(watcher.take))
            retained_birth = await anyio.to_thread.run_sync(_retained_state, mosquitto)
            await anyio.to_thread.run_sync(camera.start)
            camera.publish_part()
            await wait_until(_stored(sqlite_store, GAP, 1), what="the first part")
            relay.cut()
            will = _state(await anyio.to_thread.run_sync(watcher.take))
            retained_will = await anyio.to_thread.run_sync(_retained_state, mosquitto)
            await wait_until(lambda: bool(deaths), what="the host to notice the cut")
            stale = host.stale_characteristics()
            back_online = _state(await anyio.to_thread.run_sync(lambda: watcher.take(10.0)))
            await wait_until(lambda: not host.stale_characteristics(), what="the camera's rebirth")
            camera.publish_part()
            await wait_until(_stored(sqlite_store, GAP, 2), what="a part after reconnecting")
            await pipeline.drain()
        goodbye = _state(await anyio.to_thread.run_sync(watcher.take))
    finally:
        await anyio.to_thread.run_sync(camera.stop)
        relay.close()
        watcher.close()

    assert birth[0] is True
    assert abs(birth[1] - epoch_ms(datetime.now(UTC))) < 60_000
    assert retained_birth == (birth, True)
    assert will == (False, birth[1])  # the Will carries the birth's timestamp
    assert retained_will == (will, True)
    assert stale == {GAP, OFFSET}
    assert deaths == [[GAP, OFFSET]]
    assert back_online[0] is True
    assert back_online[1] >= birth[1]
    assert host.rebirths_requested == 1  # the camera, known before the cut
    assert goodbye == (False, back_online[1])  # a clean stop publishes the death itself
    assert len(await _gaps(sqlite_store)) == 2
