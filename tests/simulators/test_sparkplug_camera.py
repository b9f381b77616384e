"""The vision camera as a Sparkplug B edge node on a real broker, alone and in ``run``."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulators.cli import main
from simulators.plant import load_plant
from simulators.production import Production
from simulators.scenario import Scenario
from simulators.sparkplug_edge import SparkplugEdge
from simulators.vision_camera import VisionCamera
from tests.simulators.sparkplug_host import (
    DEVICE,
    FEATURE_ALIASES,
    JSON_TOPIC,
    NODE,
    OPTIONS,
    REBIRTH,
    Schema,
    SparkplugHost,
    compile_schema,
    ms,
)
from tests.support.mosquitto import Broker
from tests.support.relay import CuttableRelay


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> Schema:
    return compile_schema(tmp_path_factory.mktemp("sparkplug"))


@pytest.fixture
def host(mosquitto: Broker) -> Iterator[SparkplugHost]:
    subscriber = SparkplugHost(mosquitto)
    yield subscriber
    subscriber.close()


def _camera(config: Path, port: int, takt_s: float | None = None) -> VisionCamera:
    scenario = Scenario("in-control", 3)
    return VisionCamera(config, "127.0.0.1", port, scenario, takt_s, sparkplug=OPTIONS)


def test_camera_births_then_sends_one_ddata_per_part_equal_to_its_json(
    demo_config_path: Path, mosquitto: Broker, host: SparkplugHost, schema: Schema
) -> None:
    with _camera(demo_config_path, mosquitto.port) as camera:
        parts = [camera.publish_part()[JSON_TOPIC] for _ in range(2)]
        parts.append(camera.publish_part({"line2.vision.gap": 1.75})[JSON_TOPIC])
        assert camera.wait_published(timeout=5)

    received = host.take(2 + 2 * 3)
    nbirth, dbirth = (schema.decode(m.payload) for m in received[:2])
    json_messages = [m for m in received[2:] if m.topic == JSON_TOPIC]
    ddata = [m for m in received[2:] if m.topic != JSON_TOPIC]
    assert [m.topic for m in received[:2]] == [NODE.format("NBIRTH"), DEVICE.format("DBIRTH")]
    assert {(m.qos, m.retain) for m in received[:2] + ddata} == {(0, False)}
    assert (nbirth.seq, nbirth.metrics[0].name, nbirth.metrics[0].long_value) == (0, "bdSeq", 0)
    assert (nbirth.metrics[1].name, nbirth.metrics[1].boolean_value) == (REBIRTH, False)
    assert dbirth.seq == 1
    assert {m.name: (m.alias, m.datatype) for m in dbirth.metrics if m.datatype == 10} == {
        name: (alias, 10) for name, alias in FEATURE_ALIASES.items()
    }
    assert [json.loads(m.payload) for m in json_messages] == parts
    assert [m.topic for m in ddata] == [DEVICE.format("DDATA")] * 3
    for part, message in zip(parts, ddata, strict=True):
        data = schema.decode(message.payload)
        by_alias = {m.alias: getattr(m, m.WhichOneof("value")) for m in data.metrics}
        assert all(not m.HasField("name") for m in data.metrics)
        assert {m.timestamp for m in data.metrics} == {ms(part["time"])}
        assert {k: by_alias[a] for k, a in FEATURE_ALIASES.items()} == {
            f"features/{k}": v for k, v in part["features"].items()
        }
        assert by_alias[1] == part["serial"]
        assert (by_alias[2], by_alias[3]) == (part["verdict"], ",".join(part["defects"]))
    assert [schema.decode(m.payload).seq for m in ddata] == [2, 3, 4]


def test_sequence_numbers_wrap_from_255_to_0_on_the_wire(
    demo_config_path: Path, mosquitto: Broker, host: SparkplugHost, schema: Schema
) -> None:
    with _camera(demo_config_path, mosquitto.port) as camera:
        for _ in range(260):
            camera.publish_part()
        assert camera.wait_published(timeout=5)

    sparkplug = [m for m in host.take(2 + 2 * 260 + 2) if m.topic.startswith("spBv1.0/")]
    seqs = [schema.decode(m.payload).seq for m in sparkplug[:-1]]
    assert seqs == [i % 256 for i in range(2 + 260 + 1)]  # births, DDATA, DDEATH


def test_clean_stop_sends_ddeath_then_ndeath_with_the_births_bdseq(
    demo_config_path: Path, mosquitto: Broker, host: SparkplugHost, schema: Schema
) -> None:
    with _camera(demo_config_path, mosquitto.port):
        pass

    births_and_deaths = host.take(4)
    assert [m.topic for m in births_and_deaths] == [
        NODE.format("NBIRTH"),
        DEVICE.format("DBIRTH"),
        DEVICE.format("DDEATH"),
        NODE.format("NDEATH"),
    ]
    ddeath, ndeath = (schema.decode(m.payload) for m in births_and_deaths[2:])
    assert ddeath.seq == 2
    assert not ndeath.HasField("seq")
    assert [(m.name, m.long_value) for m in ndeath.metrics] == [("bdSeq", 0)]
    assert births_and_deaths[3].qos == 1


def test_lost_connection_makes_the_broker_send_the_will_ndeath_then_births_anew(
    demo_config_path: Path, mosquitto: Broker, host: SparkplugHost, schema: Schema
) -> None:
    link = CuttableRelay(mosquitto)
    try:
        with _camera(demo_config_path, link.port) as camera:
            first_births = host.take(2)
            link.cut()
            after_cut = host.take_until(NODE.format("NBIRTH"), timeout=10)
            rebirth = host.take(1)[0]
            camera.publish_part()
            assert camera.wait_published(timeout=5)
            data = host.take(2)
    finally:
        link.close()

    [will] = [m for m in after_cut if m.topic == NODE.format("NDEATH")]
    first_bd_seq = schema.decode(first_births[0].payload).metrics[0].long_value
    will_payload = schema.decode(will.payload)
    assert (will.qos, will.retain) == (1, False)
    assert not will_payload.HasField("seq")
    assert [(m.name, m.long_value) for m in will_payload.metrics] == [("bdSeq", first_bd_seq)]
    new_birth = schema.decode(after_cut[-1].payload)
    assert (new_birth.seq, new_birth.metrics[0].long_value) == (0, first_bd_seq + 1)
    assert (rebirth.topic, schema.decode(rebirth.payload).seq) == (DEVICE.format("DBIRTH"), 1)
    assert [m.topic for m in data] == [JSON_TOPIC, DEVICE.format("DDATA")]


def test_rebirth_command_republishes_births_with_the_same_bdseq_and_last_values(
    demo_config_path: Path, mosquitto: Broker, host: SparkplugHost, schema: Schema
) -> None:
    command = schema.payload(timestamp=1)
    command.metrics.add(name=REBIRTH, datatype=11, boolean_value=True)

    with _camera(demo_config_path, mosquitto.port) as camera:
        part = camera.publish_part()[JSON_TOPIC]
        assert camera.wait_published(timeout=5)
        before = host.take(4)
        host.client.publish(NODE.format("NCMD"), command.SerializeToString(), qos=0)
        command_echo, *births = host.take(3)  # the host hears its own NCMD on spBv1.0/#

    assert [m.topic for m in before] == [
        NODE.format("NBIRTH"),
        DEVICE.format("DBIRTH"),
        JSON_TOPIC,
        DEVICE.format("DDATA"),
    ]
    assert command_echo.topic == NODE.format("NCMD")
    assert [m.topic for m in births] == [NODE.format("NBIRTH"), DEVICE.format("DBIRTH")]
    nbirth, dbirth = (schema.decode(m.payload) for m in births)
    assert (nbirth.seq, nbirth.metrics[0].long_value) == (0, 0)
    assert dbirth.seq == 1
    values = {m.name: getattr(m, m.WhichOneof("value")) for m in dbirth.metrics}
    assert values["serial"] == part["serial"]
    assert values["features/gap_mm"] == part["features"]["gap_mm"]
    assert {m.timestamp for m in dbirth.metrics} == {ms(part["time"])}


def test_the_run_command_publishes_sparkplug_births_data_and_deaths(
    demo_config_path: Path, mosquitto: Broker, host: SparkplugHost, schema: Schema
) -> None:
    args = ["run", "--config", str(demo_config_path), "--mqtt", mosquitto.url,
            "--sparkplug-group", "demo", "--sparkplug-node", "camera1", "--fast", "--parts", "4",
            "--log-level", "WARNING"]  # fmt: skip

    assert main(args) == 0

    received = host.take_until(NODE.format("NDEATH"))
    topics = [m.topic for m in received]
    assert topics[:2] == [NODE.format("NBIRTH"), DEVICE.format("DBIRTH")]
    assert topics[-2:] == [DEVICE.format("DDEATH"), NODE.format("NDEATH")]
    results = [json.loads(m.payload) for m in received if m.topic == JSON_TOPIC]
    ddata = [schema.decode(m.payload) for m in received if m.topic == DEVICE.format("DDATA")]
    assert len(ddata) == len(results) >= 4
    assert [d.metrics[0].string_value for d in ddata] == [r["serial"] for r in results]


def test_plant_results_leave_out_a_lost_feature_and_keep_the_judged_ones(
    demo_config_path: Path, mosquitto: Broker, host: SparkplugHost, schema: Schema
) -> None:
    scenario = Scenario("lost-connection", 4, start_part=0, affected=("line2.vision.gap",))
    production = Production(load_plant(demo_config_path), scenario)
    [station] = [s for s in production.next_part().stations if s.station == "line2.vision"]

    with _camera(demo_config_path, mosquitto.port) as camera:
        sent = camera.publish_results([station])
        assert camera.wait_published(timeout=5)

    births, received = host.take(2), host.take(2 * sent)
    results = [json.loads(m.payload) for m in received if m.topic == JSON_TOPIC]
    assert [m.topic for m in births] == [NODE.format("NBIRTH"), DEVICE.format("DBIRTH")]
    assert sent == len(station.inspections) == len(results) >= 1
    first = results[0]
    assert first["features"] == {"offset_mm": station.inspections[0].values["line2.vision.offset"]}
    assert first["verdict"] == ("OK" if station.inspections[0].ok else "NOK")
    ddata = schema.decode(next(m for m in received if m.topic == DEVICE.format("DDATA")).payload)
    by_alias = {m.alias: m for m in ddata.metrics}
    gap, offset = (by_alias[FEATURE_ALIASES[f"features/{k}"]] for k in ("gap_mm", "offset_mm"))
    assert gap.is_null
    assert offset.double_value == first["features"]["offset_mm"]


class _FakeLink:
    """An `EdgeLink` that keeps what it is given."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.wills: list[bytes] = []

    def send(self, topic: str, payload: str | bytes, qos: int = 1) -> None:
        self.sent.append(topic)

    def will_set(self, topic: str, payload: bytes, qos: int) -> None:
        self.wills.append(payload)

    def subscribe(self, topic: str, qos: int) -> None:
        pass


def test_births_of_a_connection_lost_meanwhile_never_mark_the_node_born(
    demo_config_path: Path, schema: Schema
) -> None:
    plant = load_plant(demo_config_path)
    stations = {i.topic: (i, plant.characteristics_on(i.topic)) for i in plant.inspections}
    link = _FakeLink()
    edge = SparkplugEdge(OPTIONS, stations, link, threading.Lock())
    losses: list[threading.Thread] = []

    class _LostJustBeforeSet(threading.Event):
        """The connection drops between the births' session check and their `set`."""

        def set(self) -> None:
            loss = threading.Thread(target=edge.on_lost)  # as on paho's thread
            losses.append(loss)
            loss.start()
            loss.join(0.3)  # the births hold the state lock: the loss waits its turn
            super().set()

    edge.born = _LostJustBeforeSet()
    edge.publish_births(0)
    for loss in losses:
        loss.join(5)

    assert link.sent == [NODE.format("NBIRTH"), DEVICE.format("DBIRTH")]
    assert len(losses) == 1
    assert not edge.born.is_set()
    will = schema.decode(link.wills[-1])
    assert [(m.name, m.long_value) for m in will.metrics] == [("bdSeq", 1)]  # the next CONNECT's
