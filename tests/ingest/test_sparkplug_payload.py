"""Sparkplug B wire mapping of the host application: the schema, topics, values, records."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor_pb2
from grpc_tools import protoc

import ingest.sparkplug_b_pb2 as ours
import simulators.sparkplug_b_pb2 as theirs
from ingest.errors import ConfigError, PayloadError
from ingest.model import Quality
from ingest.plant import parse_plant_config
from ingest.sparkplug_b_pb2 import Payload
from ingest.sparkplug_host import sparkplug_bindings
from ingest.sparkplug_payload import (
    BirthTable,
    MetricAddress,
    SparkplugTopic,
    bd_seq_of,
    birth_table,
    decode_payload,
    metric_records,
    metric_value,
    parse_state,
    parse_topic,
    payload_text,
    rebirth_command,
    state_payload,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
AT = datetime(2026, 3, 14, 8, 0, tzinfo=UTC)
AT_MS = 1_773_475_200_000  # AT in ms since the epoch
SOURCE = "sparkplug:g/n/d"


def _descriptor(module: Any) -> descriptor_pb2.FileDescriptorProto:
    return descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb)


def test_the_host_schema_is_the_simulators_apart_from_its_name_and_package() -> None:
    host, edge = _descriptor(ours), _descriptor(theirs)

    assert (host.name, host.package) == ("ingest/sparkplug_b.proto", "spcmon.ingest.sparkplug_b")
    edge_text = str(edge).replace("spcmon.simulators.sparkplug_b", "spcmon.ingest.sparkplug_b")
    assert str(host).replace("ingest/sparkplug_b.proto", "simulators/sparkplug_b.proto") == (
        edge_text
    )


def test_the_generated_module_is_up_to_date_with_the_schema(tmp_path: Path) -> None:
    out = tmp_path / "schema.desc"
    args = ["protoc", f"--proto_path={REPO_ROOT}", f"--descriptor_set_out={out}"]
    assert protoc.main([*args, "ingest/sparkplug_b.proto"]) == 0
    [fresh] = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file
    _clear_json_names(fresh.message_type)  # protoc's descriptor sets add them; gencode not

    assert _descriptor(ours) == fresh, "run ./scripts/gen-protos"


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("spBv1.0/g/NBIRTH/n", SparkplugTopic("g", "NBIRTH", "n")),
        ("spBv1.0/g/NDATA/n", SparkplugTopic("g", "NDATA", "n")),
        ("spBv1.0/g/NCMD/n", SparkplugTopic("g", "NCMD", "n")),
        ("spBv1.0/g/DDATA/n/d.1", SparkplugTopic("g", "DDATA", "n", "d.1")),
        ("spBv1.0/g/DDEATH/n/d", SparkplugTopic("g", "DDEATH", "n", "d")),
        ("spBv1.0/g/NDATA/n/d", None),  # a node message with a device
        ("spBv1.0/g/DDATA/n", None),  # a device message without one
        ("spBv1.0/g/XDATA/n", None),
        ("spBv1.0/STATE/host", None),
        ("spAv1.0/g/NDATA/n", None),
        ("spBv1.0/g//n", None),
        ("spBv1.0/g/DDATA/n/d/extra", None),
    ],
)
def test_topics_are_parsed_into_their_parts(topic: str, expected: SparkplugTopic | None) -> None:
    assert parse_topic(topic) == expected


def _metric(datatype: int, **value: Any) -> Payload.Metric:
    return Payload.Metric(name="m", datatype=datatype, **value)


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        (_metric(1, int_value=0xFFFFFFFF), -1.0),  # Int8 -1, sign-extended to 32 bits
        (_metric(1, int_value=0xFF), -1.0),  # ... or as 8 bits
        (_metric(1, int_value=127), 127.0),
        (_metric(2, int_value=0xFFFF8000), -32768.0),
        (_metric(3, int_value=0x80000000), -2147483648.0),
        (_metric(4, long_value=2**64 - 5), -5.0),
        (_metric(5, int_value=200), 200.0),
        (_metric(7, int_value=0xFFFFFFFF), 4294967295.0),
        (_metric(8, long_value=2**63), 9.223372036854776e18),
        (_metric(9, float_value=1.5), 1.5),
        (_metric(10, double_value=-0.125), -0.125),
    ],
)
def test_numeric_values_are_read_by_datatype(metric: Payload.Metric, expected: float) -> None:
    assert metric_value(metric, metric.datatype, "m") == expected


@pytest.mark.parametrize(
    ("metric", "message"),
    [
        (_metric(11, boolean_value=True), "datatype Boolean is not a measurement"),
        (_metric(12, string_value="1.5"), "datatype String is not a measurement"),
        (_metric(13, long_value=AT_MS), "datatype DateTime is not a measurement"),
        (_metric(31, bytes_value=b"\0"), "datatype Array is not a measurement"),
        (_metric(10, float_value=1.5), "datatype Double needs double_value, got float_value"),
        (_metric(10), "datatype Double needs double_value, got no value"),
    ],
)
def test_other_datatypes_and_misplaced_values_are_refused_naming_the_metric(
    metric: Payload.Metric, message: str
) -> None:
    with pytest.raises(PayloadError, match=f"metric 'm': {message}"):
        metric_value(metric, metric.datatype, "m")


def _birth() -> Payload:
    birth = Payload(timestamp=AT_MS, seq=1)
    birth.metrics.add(name="serial", alias=1, datatype=12, is_null=True)
    birth.metrics.add(name="gap", alias=2, datatype=10, is_null=True, timestamp=AT_MS)
    birth.metrics.add(name="count", alias=3, datatype=7, int_value=4, timestamp=AT_MS)
    return birth


def _records(payload: Payload, table: BirthTable | None = None, birth: bool = False) -> Any:
    bindings = {"gap": ("c.gap",), "count": ("c.count", "c.count2"), "serial": ("c.serial",)}
    table = birth_table(_birth()) if table is None else table
    return metric_records(payload, table, bindings, SOURCE, AT, birth)


def test_a_birth_declares_names_aliases_and_datatypes_and_its_nulls_are_no_readings() -> None:
    table = birth_table(_birth())

    records = _records(_birth(), table, birth=True)

    assert {a: (m.name, m.datatype) for a, m in table.by_alias.items()} == {
        1: ("serial", 12),
        2: ("gap", 10),
        3: ("count", 7),
    }
    assert [(m.characteristic, m.value) for m in records.live] == [
        ("c.count", 4.0),
        ("c.count2", 4.0),
    ]
    assert records.problems == []


def test_data_by_alias_become_measurements_at_the_metric_time() -> None:
    data = Payload(timestamp=AT_MS + 5, seq=2)
    data.metrics.add(alias=2, double_value=1.25, timestamp=AT_MS + 3)
    data.metrics.add(alias=3, int_value=7)  # no timestamp of its own: the payload's
    data.metrics.add(name="unmapped", alias=9, double_value=1.0)  # not ours: skipped

    records = _records(data)

    assert [(m.characteristic, m.value, m.time, m.source) for m in records.live] == [
        ("c.gap", 1.25, datetime(2026, 3, 14, 8, 0, 0, 3000, tzinfo=UTC), SOURCE),
        ("c.count", 7.0, datetime(2026, 3, 14, 8, 0, 0, 5000, tzinfo=UTC), SOURCE),
        ("c.count2", 7.0, datetime(2026, 3, 14, 8, 0, 0, 5000, tzinfo=UTC), SOURCE),
    ]
    assert len({m.ingest_id for m in records.live}) == 3
    assert _records(data).live[0].ingest_id == records.live[0].ingest_id  # a resend: same id


def test_null_data_is_a_bad_reading_historical_kept_apart_transient_skipped() -> None:
    data = Payload(timestamp=AT_MS, seq=2)
    data.metrics.add(alias=2, is_null=True)
    data.metrics.add(alias=3, int_value=1, is_historical=True, timestamp=AT_MS - 60_000)
    data.metrics.add(alias=3, int_value=2, is_transient=True)

    records = _records(data)

    assert [(m.characteristic, m.value, m.quality) for m in records.live] == [
        ("c.gap", 0.0, Quality.BAD)
    ]
    assert [(m.characteristic, m.value) for m in records.historical] == [
        ("c.count", 1.0),
        ("c.count2", 1.0),
    ]


def test_unknown_aliases_strings_and_future_times_are_problems_the_rest_is_kept() -> None:
    data = Payload(timestamp=AT_MS, seq=2)
    data.metrics.add(alias=99, double_value=1.0)
    data.metrics.add(alias=1, string_value="S-1")
    data.metrics.add(alias=2, double_value=1.5, timestamp=4_102_444_800_000)  # year 2100
    data.metrics.add(alias=3, int_value=3)

    records = _records(data)

    assert [str(error) for error, _ in records.problems] == [
        "metric alias 99: no birth declared this alias",
        "metric 'serial': datatype String is not a measurement (only Int8..UInt64, Float and "
        "Double are)",
        "metric 'gap': time: 2100-01-01T00:00:00+00:00 is more than 5 minutes in the future",
    ]
    assert [m.characteristic for m in records.live] == ["c.count", "c.count2"]


def test_bdseq_rebirth_command_and_state_payloads() -> None:
    command = decode_payload(rebirth_command(AT_MS))
    nbirth = Payload(seq=0)
    nbirth.metrics.add(name="bdSeq", datatype=8, long_value=17)

    assert bd_seq_of(nbirth) == 17
    assert bd_seq_of(Payload()) is None
    assert [(m.name, m.datatype, m.boolean_value) for m in command.metrics] == [
        ("Node Control/Rebirth", 11, True)
    ]
    assert not command.HasField("seq")
    assert json.loads(state_payload(True, AT_MS)) == {"online": True, "timestamp": AT_MS}
    assert parse_state(state_payload(False, 5)) == (False, 5)
    assert parse_state(b'{"online": "no", "timestamp": 5}') is None
    assert parse_state(b"OFFLINE") is None


def test_an_undecodable_payload_is_refused_and_kept_as_base64() -> None:
    with pytest.raises(PayloadError, match="payload: not a Sparkplug B protobuf payload"):
        decode_payload(b"\xff\xff\xff\xff")

    assert payload_text(b"\xff\xff\xff\xff") == "base64://///w=="
    assert json.loads(payload_text(rebirth_command(5)))["metrics"][0]["boolean_value"] is True


def test_plant_sparkplug_sources_become_bindings() -> None:
    def char(cid: str, **source: Any) -> dict[str, Any]:
        return {"id": cid, "source": {"sparkplug": {"group": "g", "node": "n", **source}}}

    plant = parse_plant_config(
        {
            "plant": {"id": "p"},
            "lines": [
                {
                    "id": "l",
                    "processes": [
                        {
                            "id": "p",
                            "characteristics": [
                                char("a", device="d", metric="x"),
                                char("b", device="d", metric="x"),
                                char("c", metric="y"),
                                {"id": "d", "source": {"mqtt": {"topic": "t", "field": "f"}}},
                            ],
                        }
                    ],
                }
            ],
        }
    )

    assert sparkplug_bindings(plant) == {
        MetricAddress("g", "n", "d", "x"): ("a", "b"),
        MetricAddress("g", "n", None, "y"): ("c",),
    }


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ({"group": "a/b", "node": "n", "metric": "m"}, "group: a Sparkplug id is one topic level"),
        ({"group": "g", "node": "n+", "metric": "m"}, "node: a Sparkplug id is one topic level"),
        ({"group": "g", "node": "n"}, "metric: Field required"),
        ({"group": "g", "node": "n", "metric": "m", "devise": "d"}, "devise: Extra inputs"),
    ],
)
def test_bad_sparkplug_sources_are_named(source: dict[str, str], expected: str) -> None:
    doc = {
        "plant": {"id": "p"},
        "lines": [
            {
                "id": "l",
                "processes": [
                    {"id": "p", "characteristics": [{"id": "c", "source": {"sparkplug": source}}]}
                ],
            }
        ],
    }

    with pytest.raises(ConfigError) as caught:
        parse_plant_config(doc)

    assert f"'c' > source > sparkplug > {expected}" in str(caught.value)


def _clear_json_names(messages: Any) -> None:
    for message in messages:
        for field in message.field:
            field.ClearField("json_name")
        _clear_json_names(message.nested_type)
