"""Sparkplug B encoding of the vision camera: the schema against the specification, and the
pure payload builders (decoded with protoc-compiled classes, see `sparkplug_host`)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import FieldDescriptor

import simulators.sparkplug_b_pb2 as generated
from simulators.plant import SimInspection, load_plant
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
from tests.simulators.sparkplug_host import FEATURE_ALIASES, OPTIONS, Schema, compile_schema

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


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> Schema:
    return compile_schema(tmp_path_factory.mktemp("sparkplug"))


@pytest.fixture
def node(demo_config_path: Path) -> SparkplugNode:
    plant = load_plant(demo_config_path)
    stations = [(i, plant.characteristics_on(i.topic)) for i in plant.inspections]
    return SparkplugNode(OPTIONS, build_devices(stations))


# --- the schema against the specification -------------------------------------------------


def test_schema_field_numbers_and_types_are_the_specifications(schema: Schema) -> None:
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


def test_generated_module_is_up_to_date_with_the_schema(schema: Schema) -> None:
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


def test_nbirth_has_seq_0_the_bdseq_and_the_rebirth_metric(schema: Schema) -> None:
    birth = schema.decode(nbirth_payload(bd_seq=7, seq=0, timestamp_ms=1000))

    assert (birth.timestamp, birth.HasField("seq"), birth.seq) == (1000, True, 0)
    assert [(m.name, m.datatype, m.WhichOneof("value")) for m in birth.metrics] == [
        ("bdSeq", 8, "long_value"),
        ("Node Control/Rebirth", 11, "boolean_value"),
    ]
    assert (birth.metrics[0].long_value, birth.metrics[1].boolean_value) == (7, False)


def test_ndeath_has_only_the_bdseq_and_no_seq(schema: Schema) -> None:
    death = schema.decode(ndeath_payload(bd_seq=255, timestamp_ms=1000))

    assert not death.HasField("seq")
    assert [(m.name, m.datatype, m.long_value) for m in death.metrics] == [("bdSeq", 8, 255)]


def test_dbirth_declares_every_metric_null_until_the_first_part(
    schema: Schema, node: SparkplugNode
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


def test_ddata_carries_aliases_without_datatypes_each_stamped_with_the_part_time(
    schema: Schema, node: SparkplugNode
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
    assert all(not m.HasField("datatype") for m in data.metrics)  # Sparkplug 3.0: SHOULD NOT
    assert {m.alias: getattr(m, m.WhichOneof("value")) for m in data.metrics} == {
        1: "line2-000001",
        2: "NOK",
        3: "gap_mm,offset_mm",
        4: "first",
        5: 1.75,
        6: -0.5,
    }


def test_a_feature_missing_from_the_result_is_sent_null_in_ddata_and_dbirth(
    schema: Schema, node: SparkplugNode
) -> None:
    result = _json_result("line2-000007")
    del result["features"]["gap_mm"]  # lost, or of bad quality: not judged, not sent

    _, data = node.data("line2.vision", result, datetime(2026, 11, 22, tzinfo=UTC))
    _, birth = node.births(0)[1]

    gap = {m.alias: m for m in schema.decode(data).metrics}[FEATURE_ALIASES["features/gap_mm"]]
    assert (gap.is_null, gap.WhichOneof("value")) == (True, None)
    reborn = {m.name: m for m in schema.decode(birth).metrics}
    assert reborn["features/gap_mm"].is_null
    assert reborn["features/offset_mm"].double_value == 0.0


def test_seq_runs_from_0_at_nbirth_and_wraps_after_255(schema: Schema, node: SparkplugNode) -> None:
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


def test_rebirth_requests_are_recognised_only_when_true(schema: Schema) -> None:
    def ncmd(name: str, value: bool) -> bytes:
        payload = schema.payload(timestamp=1)
        payload.metrics.add(name=name, datatype=11, boolean_value=value)
        return bytes(payload.SerializeToString())

    assert is_rebirth_request(ncmd("Node Control/Rebirth", True))
    assert not is_rebirth_request(ncmd("Node Control/Rebirth", False))
    assert not is_rebirth_request(ncmd("Node Control/Reboot", True))
    assert not is_rebirth_request(b"\xff\xff not protobuf")


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
