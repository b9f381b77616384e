"""The vision camera: message building, and publishing to a real mosquitto broker."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from simulators.faults import FaultKind
from simulators.plant import load_plant
from simulators.scenario import Scenario
from simulators.vision_camera import VisionCamera
from simulators.vision_payload import build_payload
from tests.support.mosquitto import Broker, free_port

TOPIC = "demo/line2/vision/result"


class _Subscriber:
    """A paho client that collects decoded JSON messages from one topic."""

    def __init__(self, broker: Broker, topic: str) -> None:
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-subscriber")
        self._client.on_connect = lambda client, *_: client.subscribe(topic, qos=1)
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._client.on_message = lambda _c, _u, msg: self.messages.put(json.loads(msg.payload))
        self._client.connect(broker.host, broker.port)
        self._client.loop_start()
        assert self._subscribed.wait(5), "subscription was not acknowledged"

    def take(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        return [self.messages.get(timeout=timeout) for _ in range(count)]

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


@pytest.fixture
def subscriber(mosquitto: Broker) -> Iterator[_Subscriber]:
    subscriber = _Subscriber(mosquitto, TOPIC)
    yield subscriber
    subscriber.close()


def test_camera_publishes_one_valid_json_result_per_part(
    demo_config_path: Path, mosquitto: Broker, subscriber: _Subscriber
) -> None:
    camera = VisionCamera(
        demo_config_path, mosquitto.host, mosquitto.port, Scenario("in-control", 1), takt_s=None
    )

    with camera:
        good = camera.publish_part()[TOPIC]
        bad = camera.publish_part({"line2.vision.gap": 1.75})[TOPIC]
        assert camera.wait_published(timeout=5)

    received = subscriber.take(2)
    assert received == [good, bad]
    assert camera.parts_published == 2
    assert list(good) == [
        "serial",
        "station",
        "time",
        "features",
        "verdict",
        "defects",
        "inspection",
    ]
    assert (good["serial"], bad["serial"]) == ("line2-000000", "line2-000001")
    assert good["station"] == "line2.vision"
    assert good["inspection"] == "first"
    assert datetime.strptime(good["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert set(good["features"]) == {"gap_mm", "offset_mm"}
    assert (good["verdict"], good["defects"]) == ("OK", [])
    assert bad["features"]["gap_mm"] == 1.75
    assert (bad["verdict"], bad["defects"]) == ("NOK", ["gap_mm"])


def test_camera_publishes_every_takt_until_stopped(
    demo_config_path: Path, mosquitto: Broker, subscriber: _Subscriber
) -> None:
    camera = VisionCamera(
        demo_config_path, mosquitto.host, mosquitto.port, Scenario("in-control", 2), takt_s=0.03
    )

    camera.start()
    deadline = time.monotonic() + 5
    while camera.parts_published < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    camera.stop()

    received = subscriber.take(camera.parts_published)
    assert camera.parts_published >= 5
    assert [m["serial"] for m in received] == [
        f"line2-{index:06d}" for index in range(camera.parts_published)
    ]
    assert subscriber.messages.empty()


@pytest.mark.parametrize(
    ("gap", "offset", "verdict", "defects"),
    [
        (1.50, 0.00, "OK", []),
        (1.40, 0.30, "OK", []),
        (1.399, 0.00, "NOK", ["gap_mm"]),
        (1.50, -0.31, "NOK", ["offset_mm"]),
        (1.61, 0.31, "NOK", ["gap_mm", "offset_mm"]),
    ],
)
def test_verdict_is_nok_exactly_when_a_feature_is_outside_its_limits(
    demo_config_path: Path, gap: float, offset: float, verdict: str, defects: list[str]
) -> None:
    plant = load_plant(demo_config_path)
    [inspection] = plant.inspections
    at = datetime(2026, 11, 22, 19, 0, 0, 123456, tzinfo=UTC)
    values = {"line2.vision.gap": gap, "line2.vision.offset": offset}

    payload = build_payload(inspection, plant.characteristics_on(TOPIC), values, 123, at)

    assert payload == {
        "serial": "line2-000123",
        "station": "line2.vision",
        "time": "2026-11-22T19:00:00.123456Z",
        "features": {"gap_mm": gap, "offset_mm": offset},
        "verdict": verdict,
        "defects": defects,
        "inspection": "first",
    }


def test_unreachable_broker_is_a_connection_error(demo_config_path: Path) -> None:
    camera = VisionCamera(demo_config_path, "127.0.0.1", free_port(), Scenario("in-control", 1))

    with pytest.raises(ConnectionError, match="cannot reach MQTT broker"):
        camera.start()


def test_a_feature_left_out_of_the_values_is_left_out_of_the_result_and_its_verdict(
    demo_config_path: Path,
) -> None:
    plant = load_plant(demo_config_path)
    [inspection] = plant.inspections
    at = datetime(2026, 11, 22, 19, 0, tzinfo=UTC)
    judged = {"line2.vision.offset": 0.31}  # the gap was lost, or came with bad quality

    payload = build_payload(inspection, plant.characteristics_on(TOPIC), judged, "s-1", at)

    assert payload["features"] == {"offset_mm": 0.31}
    assert (payload["verdict"], payload["defects"]) == ("NOK", ["offset_mm"])


@pytest.mark.parametrize("kind", ["lost-connection", "bad-quality"])
def test_the_camera_leaves_out_a_feature_it_lost_or_read_badly(
    demo_config_path: Path, mosquitto: Broker, subscriber: _Subscriber, kind: FaultKind
) -> None:
    scenario = Scenario(kind, 6, start_part=1, end_part=2, affected=("line2.vision.gap",))
    camera = VisionCamera(demo_config_path, mosquitto.host, mosquitto.port, scenario, None)

    with camera:
        parts = [camera.publish_part()[TOPIC] for _ in range(3)]
        assert camera.wait_published(timeout=5)

    received = subscriber.take(3)
    assert received == parts
    both = {"gap_mm", "offset_mm"}
    assert [set(m["features"]) for m in received] == [both, {"offset_mm"}, both]
    assert received[1]["defects"] in ([], ["offset_mm"])


def test_the_camera_sends_nothing_for_a_part_whose_every_feature_is_lost(
    demo_config_path: Path, mosquitto: Broker, subscriber: _Subscriber
) -> None:
    scenario = Scenario("lost-connection", 6, start_part=1, end_part=2)
    camera = VisionCamera(demo_config_path, mosquitto.host, mosquitto.port, scenario, None)

    with camera:
        parts = [camera.publish_part() for _ in range(3)]
        assert camera.wait_published(timeout=5)

    received = subscriber.take(2)
    assert parts[1] == {}
    assert [m["serial"] for m in received] == ["line2-000000", "line2-000002"]
    assert camera.parts_published == 2
