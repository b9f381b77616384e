"""Sparkplug B output of the vision camera: the encoder, and the camera on a real broker.

Payloads are decoded with classes built from ``simulators/sparkplug_b.proto`` compiled here
(protoc into tmp, a private descriptor pool), never with the simulator's generated module,
and the schema's field numbers are held to the Sparkplug 3.0 specification's.
"""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import FieldDescriptor
from grpc_tools import protoc
from paho.mqtt.enums import CallbackAPIVersion

import simulators.sparkplug_b_pb2 as generated
from simulators.plant import SimInspection, load_plant
from simulators.scenario import Scenario
from simulators.sparkplug import (
    DataType,
    SparkplugNode,
    SparkplugOptions,
    build_devices,
    dbirth_payload,
    ddata_payload,
    device_topic,
    epoch_ms,
    is_rebirth_request,
    nbirth_payload,
    ndeath_payload,
    node_topic,
    sanitise_id,
)
from simulators.vision_camera import VisionCamera
from tests.support.mosquitto import Broker

REPO_ROOT = Path(__file__).resolve().parents[2]
PROTO = "simulators/sparkplug_b.proto"
JSON_TOPIC = "demo/line2/vision/result"
OPTIONS = SparkplugOptions(group_id="demo", edge_node_id="camera1")
NODE = "spBv1.0/demo/{}/camera1"
DEVICE = "spBv1.0/demo/{}/camera1/line2.vision"
REBIRTH = "Node Control/Rebirth"
FEATURE_ALIASES = {"features/gap_mm": 5, "features/offset_mm": 6}

# Sparkplug 3.0, payload chapter: Payload and Payload.Metric field numbers and wire types
SPEC_PAYLOAD_FIELDS = {
    "timestamp": (1, FieldDescriptor.TYPE_UINT64),
    "metrics": (2, FieldDescriptor.TYPE_MESSAGE),
    "seq": (3, FieldDescriptor.TYPE_UINT64),
    "uuid": (4, FieldDescriptor.TYPE_STRING),
    "body": (5, FieldDescriptor.TYPE_BYTES),
}
SPEC_METRIC_FIELDS = {
    "name": (1, FieldDescriptor.TYPE_STRING),
    "alias": (2, FieldDescriptor.TYPE_UINT64),
    "timestamp": (3, FieldDescriptor.TYPE_UINT64),
    "datatype": (4, FieldDescriptor.TYPE_UINT32),
    "is_historical": (5, FieldDescriptor.TYPE_BOOL),
    "is_transient": (6, FieldDescriptor.TYPE_BOOL),
    "is_null": (7, FieldDescriptor.TYPE_BOOL),
    "metadata": (8, FieldDescriptor.TYPE_MESSAGE),
    "properties": (9, FieldDescriptor.TYPE_MESSAGE),
    "int_value": (10, FieldDescriptor.TYPE_UINT32),
    "long_value": (11, FieldDescriptor.TYPE_UINT64),
    "float_value": (12, FieldDescriptor.TYPE_FLOAT),
    "double_value": (13, FieldDescriptor.TYPE_DOUBLE),
    "boolean_value": (14, FieldDescriptor.TYPE_BOOL),
    "string_value": (15, FieldDescriptor.TYPE_STRING),
    "bytes_value": (16, FieldDescriptor.TYPE_BYTES),
    "dataset_value": (17, FieldDescriptor.TYPE_MESSAGE),
    "template_value": (18, FieldDescriptor.TYPE_MESSAGE),
    "extension_value": (19, FieldDescriptor.TYPE_MESSAGE),
}
SPEC_PROPERTY_VALUE_FIELDS = {"type": 1, "is_null": 2, "string_value": 8}
# Sparkplug 3.0 datatype codes: UInt64 8, Double 10, Boolean 11, String 12
SPEC_DATATYPES = {"UINT64": 8, "DOUBLE": 10, "BOOLEAN": 11, "STRING": 12}


@dataclass(frozen=True)
class _Schema:
    file: descriptor_pb2.FileDescriptorProto
    payload: Any  # the Payload class, built from the freshly compiled schema

    def decode(self, data: bytes) -> Any:
        return self.payload.FromString(data)


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> _Schema:
    out = tmp_path_factory.mktemp("sparkplug") / "sparkplug_b.desc"
    args = ["protoc", f"--proto_path={REPO_ROOT}", f"--descriptor_set_out={out}", PROTO]
    assert protoc.main(args) == 0, "protoc could not compile the schema"
    [file] = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file
    pool = descriptor_pool.DescriptorPool()  # private: independent of the generated module
    pool.Add(file)
    descriptor = pool.FindMessageTypeByName(f"{file.package}.Payload")
    return _Schema(file, message_factory.GetMessageClass(descriptor))


@pytest.fixture
def node(demo_config_path: Path) -> SparkplugNode:
    plant = load_plant(demo_config_path)
    stations = [(i, plant.characteristics_on(i.topic)) for i in plant.inspections]
    return SparkplugNode(OPTIONS, build_devices(stations))


# --- the schema against the specification -------------------------------------------------


def test_schema_field_numbers_and_types_are_the_specifications(schema: _Schema) -> None:
    payload = schema.payload.DESCRIPTOR
    metric = payload.nested_types_by_name["Metric"]
    property_value = payload.nested_types_by_name["PropertyValue"]

    assert {f.name: (f.number, f.type) for f in payload.fields} == SPEC_PAYLOAD_FIELDS
    assert {f.name: (f.number, f.type) for f in metric.fields} == SPEC_METRIC_FIELDS
    fields = property_value.fields_by_name
    assert {n: fields[n].number for n in SPEC_PROPERTY_VALUE_FIELDS} == SPEC_PROPERTY_VALUE_FIELDS
    assert payload.nested_types_by_name["PropertySet"].fields_by_name["keys"].number == 1
    assert payload.nested_types_by_name["PropertySet"].fields_by_name["values"].number == 2


def test_datatype_codes_are_the_specifications() -> None:
    assert {t.name: int(t) for t in DataType} == SPEC_DATATYPES


def test_generated_module_is_up_to_date_with_the_schema(schema: _Schema) -> None:
    fresh = descriptor_pb2.FileDescriptorProto()
    fresh.CopyFrom(schema.file)
    _clear_json_names(fresh.message_type)  # protoc's descriptor sets add them; gencode not
    committed = descriptor_pb2.FileDescriptorProto.FromString(generated.DESCRIPTOR.serialized_pb)

    assert committed == fresh, "run ./scripts/gen-protos"


# --- pure encoder functions ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("built", "expected"),
    [
        (node_topic("g", "NBIRTH", "n"), "spBv1.0/g/NBIRTH/n"),
        (node_topic("g", "NCMD", "n"), "spBv1.0/g/NCMD/n"),
        (device_topic("g", "DDATA", "n", "d"), "spBv1.0/g/DDATA/n/d"),
        (
            device_topic("demo", "DBIRTH", "cam", "line2.vision"),
            "spBv1.0/demo/DBIRTH/cam/line2.vision",
        ),
    ],
)
def test_topics_follow_the_sparkplug_namespace(built: str, expected: str) -> None:
    assert built == expected


@pytest.mark.parametrize(
    ("station", "device_id"),
    [("line2.vision", "line2.vision"), ("a/b+c#d", "a_b_c_d"), ("zone 1.cam", "zone 1.cam")],
)
def test_device_ids_replace_topic_reserved_characters(station: str, device_id: str) -> None:
    assert sanitise_id(station) == device_id


@pytest.mark.parametrize(
    ("group_id", "edge_node_id"), [("", "n"), ("g/1", "n"), ("g", "n+"), ("g", "#")]
)
def test_options_refuse_ids_that_are_not_one_topic_level(group_id: str, edge_node_id: str) -> None:
    with pytest.raises(ValueError, match="without"):
        SparkplugOptions(group_id, edge_node_id)


def test_stations_with_the_same_sanitised_id_are_refused() -> None:
    stations = [(SimInspection("l", p, f"t/{i}", "verdict"), ()) for i, p in enumerate("+#")]

    with pytest.raises(ValueError, match=r"device id 'l\._'"):
        build_devices(stations)


def test_epoch_ms_floors_to_whole_milliseconds() -> None:
    at = datetime(2026, 11, 22, 19, 0, 0, 123999, tzinfo=UTC)

    assert epoch_ms(at) == 1_795_374_000_123


def test_nbirth_has_seq_0_the_bdseq_and_the_rebirth_metric(schema: _Schema) -> None:
    birth = schema.decode(nbirth_payload(bd_seq=7, seq=0, timestamp_ms=1000))

    assert (birth.timestamp, birth.HasField("seq"), birth.seq) == (1000, True, 0)
    assert [(m.name, m.datatype, m.WhichOneof("value")) for m in birth.metrics] == [
        ("bdSeq", 8, "long_value"),
        ("Node Control/Rebirth", 11, "boolean_value"),
    ]
    assert (birth.metrics[0].long_value, birth.metrics[1].boolean_value) == (7, False)


def test_ndeath_has_only_the_bdseq_and_no_seq(schema: _Schema) -> None:
    death = schema.decode(ndeath_payload(bd_seq=255, timestamp_ms=1000))

    assert not death.HasField("seq")
    assert [(m.name, m.datatype, m.long_value) for m in death.metrics] == [("bdSeq", 8, 255)]


def test_dbirth_declares_every_metric_null_until_the_first_part(
    schema: _Schema, node: SparkplugNode
) -> None:
    [device] = node.devices.values()

    birth = schema.decode(dbirth_payload(device, None, seq=1, timestamp_ms=1000, values_ms=1000))

    assert [(m.name, m.alias, m.datatype, m.is_null) for m in birth.metrics] == [
        ("serial", 1, 12, True),
        ("verdict", 2, 12, True),
        ("defects", 3, 12, True),
        ("inspection", 4, 12, True),
        ("features/gap_mm", 5, 10, True),
        ("features/offset_mm", 6, 10, True),
    ]
    assert all(m.WhichOneof("value") is None for m in birth.metrics)
    gap = birth.metrics[4].properties
    assert (list(gap.keys), gap.values[0].type, gap.values[0].string_value) == (
        ["engUnit"],
        12,
        "mm",
    )


def test_ddata_carries_aliases_only_each_stamped_with_the_part_time(
    schema: _Schema, node: SparkplugNode
) -> None:
    [device] = node.devices.values()
    values = {
        "serial": "line2-000001",
        "verdict": "NOK",
        "defects": "gap_mm,offset_mm",
        "inspection": "first",
        "features/gap_mm": 1.75,
        "features/offset_mm": -0.5,
    }

    data = schema.decode(ddata_payload(device, values, seq=9, at_ms=1234))

    assert (data.seq, data.timestamp) == (9, 1234)
    assert all(not m.HasField("name") and m.timestamp == 1234 for m in data.metrics)
    assert {m.alias: getattr(m, m.WhichOneof("value")) for m in data.metrics} == {
        1: "line2-000001",
        2: "NOK",
        3: "gap_mm,offset_mm",
        4: "first",
        5: 1.75,
        6: -0.5,
    }


def test_seq_runs_from_0_at_nbirth_and_wraps_after_255(
    schema: _Schema, node: SparkplugNode
) -> None:
    result = _json_result("line2-000000")
    at = datetime(2026, 11, 22, tzinfo=UTC)

    messages = node.births(0) + [node.data("line2.vision", result, at) for _ in range(300)]
    messages += node.device_deaths(0)

    assert [schema.decode(p).seq for _, p in messages] == [i % 256 for i in range(303)]
    assert node.births(0)[0][1] == nbirth_payload(node.bd_seq, 0, 0)


def test_bdseq_advances_per_connection_and_wraps_after_255(node: SparkplugNode) -> None:
    seen = []
    for _ in range(257):
        seen.append(node.bd_seq)
        node.next_connection()

    assert seen == [*range(256), 0]


def test_rebirth_requests_are_recognised_only_when_true(schema: _Schema) -> None:
    def ncmd(name: str, value: bool) -> bytes:
        payload = schema.payload(timestamp=1)
        payload.metrics.add(name=name, datatype=11, boolean_value=value)
        return bytes(payload.SerializeToString())

    assert is_rebirth_request(ncmd("Node Control/Rebirth", True))
    assert not is_rebirth_request(ncmd("Node Control/Rebirth", False))
    assert not is_rebirth_request(ncmd("Node Control/Reboot", True))
    assert not is_rebirth_request(b"\xff\xff not protobuf")


# --- the camera on a real broker ------------------------------------------------------------


@dataclass(frozen=True)
class _Received:
    topic: str
    payload: bytes
    qos: int
    retain: bool


class _Subscriber:
    """A paho client that records every message on the Sparkplug and JSON topics."""

    def __init__(self, broker: Broker) -> None:
        self.messages: queue.Queue[_Received] = queue.Queue()
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-sparkplug-host")
        self.client.on_connect = lambda client, *_: client.subscribe(
            [("spBv1.0/#", 1), (JSON_TOPIC, 1)]
        )
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = lambda _c, _u, msg: self.messages.put(
            _Received(msg.topic, msg.payload, msg.qos, msg.retain)
        )
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert subscribed.wait(5), "subscription was not acknowledged"

    def take(self, count: int, timeout: float = 5.0) -> list[_Received]:
        return [self.messages.get(timeout=timeout) for _ in range(count)]

    def take_until(self, topic: str, timeout: float = 5.0) -> list[_Received]:
        """Messages up to and including the first one on `topic`."""
        taken = [self.messages.get(timeout=timeout)]
        while taken[-1].topic != topic:
            taken.append(self.messages.get(timeout=timeout))
        return taken

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class _CuttableLink:
    """A TCP relay to the broker that the test can cut, as a failing network would."""

    def __init__(self, broker: Broker) -> None:
        self._target = (broker.host, broker.port)
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.05)
        self.port = int(self._server.getsockname()[1])
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def cut(self) -> None:
        """Drop every relayed connection at once, with no MQTT DISCONNECT on either side."""
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self._closed.set()
        self._acceptor.join()
        self._server.close()
        self.cut()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            client.settimeout(None)
            upstream = socket.create_connection(self._target)
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_relay, args=(source, sink), daemon=True).start()


def _relay(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)


@pytest.fixture
def host(mosquitto: Broker) -> Iterator[_Subscriber]:
    subscriber = _Subscriber(mosquitto)
    yield subscriber
    subscriber.close()


def _camera(config: Path, port: int, takt_s: float | None = None) -> VisionCamera:
    scenario = Scenario("in-control", 3)
    return VisionCamera(config, "127.0.0.1", port, scenario, takt_s, sparkplug=OPTIONS)


def test_camera_births_then_sends_one_ddata_per_part_equal_to_its_json(
    demo_config_path: Path, mosquitto: Broker, host: _Subscriber, schema: _Schema
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
        assert {m.timestamp for m in data.metrics} == {_ms(part["time"])}
        assert {k: by_alias[a] for k, a in FEATURE_ALIASES.items()} == {
            f"features/{k}": v for k, v in part["features"].items()
        }
        assert by_alias[1] == part["serial"]
        assert (by_alias[2], by_alias[3]) == (part["verdict"], ",".join(part["defects"]))
    assert [schema.decode(m.payload).seq for m in ddata] == [2, 3, 4]


def test_sequence_numbers_wrap_from_255_to_0_on_the_wire(
    demo_config_path: Path, mosquitto: Broker, host: _Subscriber, schema: _Schema
) -> None:
    with _camera(demo_config_path, mosquitto.port) as camera:
        for _ in range(260):
            camera.publish_part()
        assert camera.wait_published(timeout=5)

    sparkplug = [m for m in host.take(2 + 2 * 260 + 2) if m.topic.startswith("spBv1.0/")]
    seqs = [schema.decode(m.payload).seq for m in sparkplug[:-1]]
    assert seqs == [i % 256 for i in range(2 + 260 + 1)]  # births, DDATA, DDEATH


def test_clean_stop_sends_ddeath_then_ndeath_with_the_births_bdseq(
    demo_config_path: Path, mosquitto: Broker, host: _Subscriber, schema: _Schema
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
    demo_config_path: Path, mosquitto: Broker, host: _Subscriber, schema: _Schema
) -> None:
    link = _CuttableLink(mosquitto)
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
    demo_config_path: Path, mosquitto: Broker, host: _Subscriber, schema: _Schema
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
    assert {m.timestamp for m in dbirth.metrics} == {_ms(part["time"])}


def _ms(iso: str) -> int:
    return epoch_ms(datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC))


def _json_result(serial: str) -> dict[str, Any]:
    return {
        "serial": serial,
        "features": {"gap_mm": 1.5, "offset_mm": 0.0},
        "verdict": "OK",
        "defects": [],
        "inspection": "first",
    }


def _clear_json_names(messages: Any) -> None:
    for message in messages:
        for field in message.field:
            field.ClearField("json_name")
        _clear_json_names(message.nested_type)
