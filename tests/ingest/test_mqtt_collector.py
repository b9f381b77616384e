"""The MQTT collector against a real mosquitto broker, feeding a pipeline on SQLite."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import anyio
import anyio.to_thread
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ingest.mqtt import MqttCollector, MqttOptions, covers
from ingest.mqtt_payload import TopicBinding
from ingest.pipeline import Pipeline
from ingest.sqlite_store import SqliteStore
from tests.ingest.pipelines import RecordingEvaluator, running, wait_until
from tests.support.mosquitto import Broker

pytestmark = pytest.mark.anyio

TOPIC = "demo/line2/vision/result"
PROBE = "spcmon-test/probe"
RETIRED = "demo/line3/vision/result"
CAMERA = TopicBinding(
    TOPIC,
    (("features.gap_mm", "line2.vision.gap"), ("features.offset_mm", "line2.vision.offset")),
    verdict_field="verdict",
    process="line2.vision",
)
BINDINGS = {TOPIC: CAMERA, PROBE: TopicBinding(PROBE)}
KNOWN = frozenset({"line2.vision.gap", "line2.vision.offset"})


def _result(n: int, gap: float = 1.503, verdict: str = "OK") -> bytes:
    return json.dumps(
        {
            "serial": f"line2-{n:06d}",
            "station": "line2.vision",
            "time": f"2025-03-14T08:00:{n:02d}.250000Z",
            "features": {"gap_mm": gap, "offset_mm": 0.01},
            "verdict": verdict,
            "defects": [] if verdict == "OK" else ["gap_mm"],
            "inspection": "first",
        }
    ).encode()


def _publish_blocking(host: str, port: int, messages: list[tuple[str, bytes]]) -> None:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"test-camera-{uuid.uuid4().hex[:8]}",
        protocol=mqtt.MQTTv311,
    )
    client.connect(host, port, keepalive=10)
    client.loop_start()
    try:
        for topic, payload in messages:
            client.publish(topic, payload, qos=1).wait_for_publish(timeout=5)
    finally:
        client.disconnect()
        client.loop_stop()


async def _publish(broker: Broker, *messages: tuple[str, bytes]) -> None:
    """Publish with QoS 1 and return once the broker has acknowledged every message."""
    await anyio.to_thread.run_sync(_publish_blocking, broker.host, broker.port, list(messages))


@asynccontextmanager
async def _collecting(
    broker: Broker,
    pipeline: Pipeline,
    bindings: Mapping[str, TopicBinding] = BINDINGS,
    client_id: str = "spcmon-test",
    protocol: str = "3.1.1",
) -> AsyncIterator[MqttCollector]:
    """A started collector whose subscriptions are known to be live (a probe came through)."""
    options = MqttOptions(
        broker.host, broker.port, client_id=client_id, keepalive_s=10, protocol=protocol
    )
    collector = MqttCollector(options, bindings, pipeline)
    collector.start()
    try:
        await wait_until(lambda: collector.connected, what="the collector to connect")
        with anyio.fail_after(5):
            while collector.messages_received == 0:
                await _publish(broker, (PROBE, b"{}"))
                with anyio.move_on_after(0.3):
                    while collector.messages_received == 0:
                        await anyio.sleep(0.02)
        yield collector
    finally:
        await anyio.to_thread.run_sync(collector.stop)


def _stored(
    store: SqliteStore, measurements: int, verdicts: int = 0
) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return (
            await store.count_measurements() >= measurements
            and await store.count_verdicts() >= verdicts
        )

    return check


async def test_camera_results_are_stored_as_measurements_and_verdicts(
    mosquitto: Broker, sqlite_store: SqliteStore
) -> None:
    evaluator = RecordingEvaluator()
    pipeline = Pipeline(sqlite_store, KNOWN, evaluator)

    async with running(pipeline), _collecting(mosquitto, pipeline):
        await _publish(mosquitto, (TOPIC, _result(1)), (TOPIC, _result(2, 1.62, "NOK")))
        await wait_until(_stored(sqlite_store, 4, 2), what="4 measurements and 2 verdicts")
        await pipeline.drain()

    gaps = await sqlite_store.recent_measurements("line2.vision.gap", 10)
    assert [(m.value, m.part, m.source) for m in gaps] == [
        (1.503, "line2-000001", f"mqtt:{TOPIC}"),
        (1.62, "line2-000002", f"mqtt:{TOPIC}"),
    ]
    assert gaps[0].time == datetime(2025, 3, 14, 8, 0, 1, 250000, tzinfo=UTC)
    assert await sqlite_store.count_measurements() == 4
    assert await sqlite_store.count_verdicts() == 2
    assert await sqlite_store.list_dead_letters() == []
    assert len(evaluator.evaluated) == 4


async def test_a_malformed_payload_is_dead_lettered_and_the_next_message_still_stored(
    mosquitto: Broker, sqlite_store: SqliteStore
) -> None:
    pipeline = Pipeline(sqlite_store, KNOWN, RecordingEvaluator())

    async with running(pipeline), _collecting(mosquitto, pipeline):
        await _publish(mosquitto, (TOPIC, b'{"serial": "line2-0'), (TOPIC, _result(3)))
        await wait_until(_stored(sqlite_store, 2, 1), what="the good message")
        await pipeline.drain()

    [letter] = await sqlite_store.list_dead_letters()
    assert letter.source == f"mqtt:{TOPIC}"
    assert letter.reason.startswith("payload: not valid JSON")
    assert letter.payload == '{"serial": "line2-0'
    assert await sqlite_store.count_measurements() == 2


async def test_a_bad_feature_is_dead_lettered_and_the_rest_of_its_message_stored(
    mosquitto: Broker, sqlite_store: SqliteStore
) -> None:
    pipeline = Pipeline(sqlite_store, KNOWN, RecordingEvaluator())
    payload = _result(4).replace(b"1.503", b'"n/a"')

    async with running(pipeline), _collecting(mosquitto, pipeline):
        await _publish(mosquitto, (TOPIC, payload))
        await wait_until(_stored(sqlite_store, 1, 1), what="the good feature and the verdict")
        await pipeline.drain()

    [letter] = await sqlite_store.list_dead_letters()
    assert letter.reason.startswith("features.gap_mm: must be a number")
    assert await sqlite_store.count_measurements("line2.vision.offset") == 1
    assert await sqlite_store.count_measurements("line2.vision.gap") == 0


async def test_a_topic_dropped_from_the_config_is_dead_lettered(
    mosquitto: Broker, sqlite_store: SqliteStore
) -> None:
    # The persistent session still holds the subscription of the old configuration.
    pipeline = Pipeline(sqlite_store, KNOWN, RecordingEvaluator())
    old_bindings = {**BINDINGS, RETIRED: TopicBinding(RETIRED, (("gap", "line3.gap"),))}

    async with running(pipeline):
        async with _collecting(mosquitto, pipeline, old_bindings):
            pass
        async with _collecting(mosquitto, pipeline, BINDINGS):
            await _publish(mosquitto, (RETIRED, b'{"gap": 1.5}'))

            async def dead_lettered() -> bool:
                return len(await sqlite_store.list_dead_letters()) == 1

            await wait_until(dead_lettered, what="the dead letter")

    [letter] = await sqlite_store.list_dead_letters()
    assert letter.source == f"mqtt:{RETIRED}"
    assert letter.reason == f"topic: no characteristic is configured for {RETIRED!r}"
    assert letter.payload == '{"gap": 1.5}'


async def test_messages_published_while_the_collector_is_down_are_stored_after_restart(
    mosquitto: Broker, sqlite_store: SqliteStore
) -> None:
    pipeline = Pipeline(sqlite_store, KNOWN, RecordingEvaluator())

    async with running(pipeline):
        async with _collecting(mosquitto, pipeline, client_id="spcmon-line2"):
            pass
        await _publish(mosquitto, *[(TOPIC, _result(n)) for n in range(10, 13)])
        async with _collecting(mosquitto, pipeline, client_id="spcmon-line2"):
            await wait_until(_stored(sqlite_store, 6, 3), what="the missed messages")
            await pipeline.drain()

    assert await sqlite_store.count_measurements() == 6
    assert await sqlite_store.count_verdicts() == 3


async def test_a_message_received_but_never_stored_is_redelivered_to_the_next_session(
    mosquitto: Broker, sqlite_store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    # The first collector feeds a pipeline that is not running: the message cannot be
    # handed over, so it must stay unacknowledged and come back to the next session.
    idle = Pipeline(sqlite_store, KNOWN, RecordingEvaluator())
    pipeline = Pipeline(sqlite_store, KNOWN, RecordingEvaluator())

    async with running(pipeline):
        async with _collecting(mosquitto, idle, client_id="spcmon-ack"):
            await _publish(mosquitto, (TOPIC, _result(20)))
            await wait_until(
                lambda: f"handling an MQTT message on {TOPIC} failed" in caplog.text,
                what="the message to reach the first collector",
            )
        assert await sqlite_store.count_measurements() == 0

        async with _collecting(mosquitto, pipeline, client_id="spcmon-ack"):
            await wait_until(_stored(sqlite_store, 2, 1), what="the redelivered message")
            await pipeline.drain()

    assert await sqlite_store.count_measurements() == 2
    assert await sqlite_store.count_verdicts() == 1


STATIONS = "demo/line2/+/result"  # one filter for every vision station of line 2
EVERYTHING = "demo/#"


def _offline(bindings: Mapping[str, TopicBinding]) -> MqttCollector:
    """A collector never started: its message mapping (``to_submission``) is pure."""
    return MqttCollector(MqttOptions("127.0.0.1"), bindings, Pipeline.__new__(Pipeline))


def test_a_topic_filter_maps_every_matching_topic_and_names_the_real_one() -> None:
    bindings = {STATIONS: TopicBinding(STATIONS, (("features.gap_mm", "line2.vision.gap"),))}
    collector = _offline(bindings)
    now = datetime.now(UTC)

    east = collector.to_submission("demo/line2/east/result", _result(1), now)
    west = collector.to_submission("demo/line2/west/result", _result(1), now)
    [a], [b] = east.measurements, west.measurements
    assert (a.source, b.source) == ("mqtt:demo/line2/east/result", "mqtt:demo/line2/west/result")
    assert a.ingest_id != b.ingest_id  # the same serial at two stations: two readings
    # the exact topic keeps the identity it had before filters existed
    exact = _offline(BINDINGS)
    [same] = [m for m in exact.to_submission(TOPIC, _result(1), now).measurements
              if m.characteristic == "line2.vision.gap"]  # fmt: skip
    assert (
        same.ingest_id == collector.to_submission(TOPIC, _result(1), now).measurements[0].ingest_id
    )

    for outside in ("demo/line2/east/result/raw", "demo/line3/east/result", "demo/line2/result"):
        [letter] = collector.to_submission(outside, _result(1), now).dead_letters
        assert letter.reason == f"topic: no characteristic is configured for {outside!r}"


def test_overlapping_filters_give_each_characteristic_once() -> None:
    bindings = {
        TOPIC: CAMERA,
        STATIONS: TopicBinding(STATIONS, (("features.gap_mm", "line2.vision.gap"),)),
        EVERYTHING: TopicBinding(EVERYTHING, (("features.offset_mm", "line2.vision.offset"),)),
    }
    collector = _offline(bindings)

    sub = collector.to_submission(TOPIC, _result(3), datetime.now(UTC))

    assert sorted(m.characteristic for m in sub.measurements) == sorted(KNOWN)
    assert len(sub.verdicts) == 1
    assert sub.dead_letters == []
    # a bad payload is refused once, not once per matching filter
    [letter] = collector.to_submission(TOPIC, b"not json", datetime.now(UTC)).dead_letters
    assert letter.reason.startswith("payload: not valid JSON")


async def test_a_wildcard_subscription_stores_each_stations_results(
    mosquitto: Broker, sqlite_store: SqliteStore
) -> None:
    gap = TopicBinding(STATIONS, (("features.gap_mm", "line2.vision.gap"),))
    pipeline = Pipeline(sqlite_store, KNOWN, RecordingEvaluator())

    async with running(pipeline), _collecting(mosquitto, pipeline, {**BINDINGS, STATIONS: gap}):
        await _publish(
            mosquitto,
            ("demo/line2/east/result", _result(1, 1.51)),
            ("demo/line2/west/result", _result(1, 1.52)),
            ("demo/line2/west/result/raw", _result(2, 9.99)),  # a level deeper: not matched
        )
        await wait_until(_stored(sqlite_store, 2), what="both stations' gaps")
        await pipeline.drain()

    gaps = await sqlite_store.recent_measurements("line2.vision.gap", 10)
    assert sorted((m.value, m.source) for m in gaps) == [
        (1.51, "mqtt:demo/line2/east/result"),
        (1.52, "mqtt:demo/line2/west/result"),
    ]
    assert await sqlite_store.list_dead_letters() == []  # never subscribed to the deeper one


@pytest.mark.parametrize(
    ("general", "specific", "covered"),
    [
        ("demo/#", "demo/line2/+/result", True),
        ("demo/#", "demo", True),  # '#' matches the parent level too
        ("demo/+/+/result", "demo/line2/+/result", True),
        ("demo/line2/+/result", "demo/line2/vision/result", True),
        ("demo/line2/vision/result", "demo/line2/+/result", False),
        ("demo/+", "demo/#", False),
        ("demo/+/result", "demo/line2/+/result", False),
        ("#", "$SYS/broker/load", False),  # wildcards never match a $-topic's first level
        ("+/a", "$x/a", False),
    ],
)
def test_which_filter_covers_which(general: str, specific: str, covered: bool) -> None:
    assert covers(general, specific) is covered


def test_only_filters_no_other_covers_are_subscribed() -> None:
    bindings = {
        TOPIC: CAMERA,
        STATIONS: TopicBinding(STATIONS, (("features.gap_mm", "line2.vision.gap"),)),
        EVERYTHING: TopicBinding(EVERYTHING, (("features.offset_mm", "line2.vision.offset"),)),
        PROBE: TopicBinding(PROBE),
    }
    assert _offline(bindings).subscriptions == sorted([EVERYTHING, PROBE])


async def test_overlapping_filters_store_one_copy_over_mqtt_5(
    mosquitto: Broker, sqlite_store: SqliteStore
) -> None:
    # MQTT 5 brokers deliver a message once per matching subscription; a result without
    # serial or time is keyed on its receive time, so each copy would be a new reading
    bindings = {
        **BINDINGS,
        STATIONS: TopicBinding(STATIONS, (("features.gap_mm", "line2.vision.gap"),)),
        EVERYTHING: TopicBinding(EVERYTHING, (("features.offset_mm", "line2.vision.offset"),)),
    }
    pipeline = Pipeline(sqlite_store, KNOWN, RecordingEvaluator())
    anonymous = json.dumps({"features": {"gap_mm": 1.5, "offset_mm": 0.02}}).encode()

    async with running(pipeline), _collecting(mosquitto, pipeline, bindings, protocol="5"):
        await _publish(mosquitto, (TOPIC, anonymous))
        await wait_until(_stored(sqlite_store, 2), what="the gap and the offset")
        await anyio.sleep(0.5)  # time for any further copy to arrive
        await pipeline.drain()

    assert await sqlite_store.count_measurements("line2.vision.gap") == 1
    assert await sqlite_store.count_measurements("line2.vision.offset") == 1
