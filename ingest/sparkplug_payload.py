"""Pure Sparkplug B (Eclipse Sparkplug 3.0) wire mapping for the host application; no I/O.

Topics are ``spBv1.0/<group>/<type>/<edge node>[/<device>]``: node messages (NBIRTH,
NDEATH, NDATA, NCMD) have no device, device messages (DBIRTH, DDEATH, DDATA, DCMD) have
one; the host's own STATE is ``spBv1.0/STATE/<host id>`` with a JSON payload
``{"online": bool, "timestamp": ms}``. Payloads are the protobuf ``Payload`` of
``ingest/sparkplug_b.proto``.

A birth declares each metric's name, datatype and optional alias; data messages may name
a metric by alias alone. `metric_records` turns one payload's metrics into measurements:
the metric's own timestamp (else the payload's, else the receive time), ``is_null`` as a
bad-quality reading (0.0) in data and as "no value yet" (skipped) in a birth,
``is_historical`` kept apart (stored and charted, never alarmed), ``is_transient`` skipped
(not to be stored). Only numeric datatypes (Int8..UInt64, Float, Double) are measurements;
a mapped metric of another datatype, an alias no birth declared or a bad value is a
problem naming the metric, never an exception.

A reading's identity (its ``ingest_id``) is its node or device, metric, timestamp and
value: a redelivered message, and a birth repeating the last values, store nothing twice;
two equal values of one metric in the same millisecond are one reading.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, NamedTuple

from google.protobuf import json_format
from google.protobuf.message import DecodeError

from ingest.errors import InvalidRecord, PayloadError
from ingest.model import Measurement, Quality
from ingest.sparkplug_b_pb2 import Payload

NAMESPACE: Final = "spBv1.0"
BD_SEQ: Final = "bdSeq"
REBIRTH: Final = "Node Control/Rebirth"
NODE_KINDS: Final = frozenset({"NBIRTH", "NDEATH", "NDATA", "NCMD"})
DEVICE_KINDS: Final = frozenset({"DBIRTH", "DDEATH", "DDATA", "DCMD"})
MAX_DEAD_LETTER_CHARS: Final = 1_048_576

DATATYPES: Final = {
    0: "Unknown", 1: "Int8", 2: "Int16", 3: "Int32", 4: "Int64", 5: "UInt8", 6: "UInt16",
    7: "UInt32", 8: "UInt64", 9: "Float", 10: "Double", 11: "Boolean", 12: "String",
    13: "DateTime", 14: "Text", 15: "UUID", 16: "DataSet", 17: "Bytes", 18: "File",
    19: "Template", 20: "PropertySet", 21: "PropertySetList",
}  # fmt: skip
"""Sparkplug 3.0 datatype codes (22..34 are arrays, none of them numeric readings)."""
BOOLEAN: Final = 11
# datatype -> (value field, bits, signed); signed integers are two's complement
_NUMERIC: Final = {
    1: ("int_value", 8, True), 2: ("int_value", 16, True), 3: ("int_value", 32, True),
    4: ("long_value", 64, True), 5: ("int_value", 8, False), 6: ("int_value", 16, False),
    7: ("int_value", 32, False), 8: ("long_value", 64, False),
    9: ("float_value", 0, False), 10: ("double_value", 0, False),
}  # fmt: skip
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class SparkplugTopic:
    """One parsed Sparkplug topic; ``device`` is None for node messages."""

    group: str
    kind: str
    node: str
    device: str | None = None


class MetricAddress(NamedTuple):
    """Where a configured characteristic's values come from (``device`` None: node metric)."""

    group: str
    node: str
    device: str | None
    metric: str


@dataclass(frozen=True)
class BirthMetric:
    name: str
    datatype: int


@dataclass
class BirthTable:
    """The metrics one NBIRTH or DBIRTH declared, by name and by alias."""

    by_name: dict[str, BirthMetric] = field(default_factory=dict)
    by_alias: dict[int, BirthMetric] = field(default_factory=dict)


@dataclass
class Records:
    """What one payload's metrics became: live and historical readings, and problems."""

    live: list[Measurement] = field(default_factory=list)
    historical: list[Measurement] = field(default_factory=list)
    problems: list[tuple[PayloadError, Payload.Metric]] = field(default_factory=list)


def parse_topic(topic: str) -> SparkplugTopic | None:
    """The parts of a Sparkplug B message topic; None for anything else (STATE included)."""
    parts = topic.split("/")
    if len(parts) not in (4, 5) or parts[0] != NAMESPACE or not all(parts):
        return None
    _, group, kind, node, *device = parts
    if (kind in NODE_KINDS and not device) or (kind in DEVICE_KINDS and device):
        return SparkplugTopic(group, kind, node, device[0] if device else None)
    return None


def node_topic(group: str, kind: str, node: str) -> str:
    return f"{NAMESPACE}/{group}/{kind}/{node}"


def state_topic(host_id: str) -> str:
    return f"{NAMESPACE}/STATE/{host_id}"


def decode_payload(data: bytes) -> Payload:
    """The protobuf payload; ``PayloadError`` when the bytes are not one."""
    try:
        return Payload.FromString(data)
    except (DecodeError, ValueError) as exc:
        raise PayloadError("payload", f"not a Sparkplug B protobuf payload: {exc}") from exc


def bd_seq_of(payload: Payload) -> int | None:
    """The ``bdSeq`` metric's value (UInt64, or Int64 as older nodes send it), if any."""
    for metric in payload.metrics:
        if metric.name == BD_SEQ:
            kind = metric.WhichOneof("value")
            if kind in ("long_value", "int_value"):
                return int(getattr(metric, kind))
    return None


def birth_table(payload: Payload) -> BirthTable:
    """The names, aliases and datatypes a birth declares (metrics without a name skipped)."""
    table = BirthTable()
    for metric in payload.metrics:
        if not metric.name:
            continue
        declared = BirthMetric(metric.name, metric.datatype)
        table.by_name[metric.name] = declared
        if metric.HasField("alias"):
            table.by_alias[metric.alias] = declared
    return table


def ms_to_datetime(ms: int) -> datetime:
    """Milliseconds since the Unix epoch (Sparkplug timestamps) as an aware UTC datetime."""
    try:
        return _EPOCH + timedelta(milliseconds=ms)
    except OverflowError as exc:
        raise PayloadError("timestamp", f"{ms} ms is out of range") from exc


def datatype_name(code: int) -> str:
    if 22 <= code <= 34:
        return "Array"
    return DATATYPES.get(code, f"#{code}")


def metric_value(metric: Payload.Metric, datatype: int, name: str) -> float:
    """A numeric metric's value; ``PayloadError`` naming the metric and datatype otherwise."""
    where = f"metric {name!r}"
    if datatype not in _NUMERIC:
        raise PayloadError(
            where,
            f"datatype {datatype_name(datatype)} is not a measurement (only Int8..UInt64, "
            "Float and Double are)",
        )
    wanted, bits, signed = _NUMERIC[datatype]
    got = metric.WhichOneof("value")
    if got != wanted:
        raise PayloadError(
            where, f"datatype {datatype_name(datatype)} needs {wanted}, got {got or 'no value'}"
        )
    raw = getattr(metric, wanted)
    if bits:
        raw &= (1 << bits) - 1
        if signed and raw >= 1 << (bits - 1):
            raw -= 1 << bits
    return float(raw)


def metric_records(
    payload: Payload,
    table: BirthTable,
    bindings: Mapping[str, Sequence[str]],
    source: str,
    received_at: datetime,
    birth: bool = False,
) -> Records:
    """Measurements of the mapped metrics in one payload (module doc has the rules).

    ``table``: the birth that declares the metrics (for a birth, the payload's own);
    ``bindings``: metric name -> characteristic ids on this node or device.
    """
    out = Records()
    sent_ms = payload.timestamp if payload.HasField("timestamp") else None
    for metric in payload.metrics:
        try:
            name, declared = _resolve(metric, table)
            chars = bindings.get(name, ())
            if not chars or metric.is_transient or (birth and metric.is_null):
                continue
            datatype = metric.datatype if metric.HasField("datatype") else declared
            if datatype is None:
                raise PayloadError(f"metric {name!r}", "no datatype, and no birth declares it")
            ms = metric.timestamp if metric.HasField("timestamp") else sent_ms
            at = received_at if ms is None else ms_to_datetime(ms)
            value = 0.0 if metric.is_null else metric_value(metric, datatype, name)
            quality = Quality.BAD if metric.is_null else Quality.GOOD
            when = ms if ms is not None else received_at.isoformat()
            key = f"{source}|{name}|{when}|{'null' if metric.is_null else repr(value)}"
            target = out.historical if metric.is_historical else out.live
            for char in chars:
                ingest_id = hashlib.sha256(f"{key}|{char}".encode()).hexdigest()[:32]
                try:
                    target.append(Measurement(at, char, value, ingest_id, source, quality=quality))
                except InvalidRecord as exc:
                    raise PayloadError(f"metric {name!r}", str(exc)) from exc
        except PayloadError as exc:
            out.problems.append((exc, metric))
    return out


def _resolve(metric: Payload.Metric, table: BirthTable) -> tuple[str, int | None]:
    """The metric's name and the datatype its birth declared (None if undeclared)."""
    if metric.name:
        declared = table.by_name.get(metric.name)
        return metric.name, declared.datatype if declared else None
    if metric.HasField("alias"):
        declared = table.by_alias.get(metric.alias)
        if declared is None:
            raise PayloadError(f"metric alias {metric.alias}", "no birth declared this alias")
        return declared.name, declared.datatype
    raise PayloadError("metric", "has neither a name nor an alias")


def rebirth_command(timestamp_ms: int) -> bytes:
    """An NCMD payload asking an edge node to publish its births again."""
    payload = Payload(timestamp=timestamp_ms)
    payload.metrics.add(name=REBIRTH, timestamp=timestamp_ms, datatype=BOOLEAN, boolean_value=True)
    return payload.SerializeToString()


def state_payload(online: bool, timestamp_ms: int) -> bytes:
    """The host application's STATE birth (online) or death (offline) payload."""
    return json.dumps({"online": online, "timestamp": timestamp_ms}).encode()


def parse_state(data: bytes) -> tuple[bool, int] | None:
    """``(online, timestamp)`` of a STATE payload; None when it is not one."""
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(document, dict):
        return None
    online, timestamp = document.get("online"), document.get("timestamp")
    if not isinstance(online, bool) or isinstance(timestamp, bool):
        return None
    if not isinstance(timestamp, int):
        return None
    return online, timestamp


def payload_text(data: bytes) -> str:
    """A dead letter's copy of a payload: its protobuf JSON, else ``base64:`` and the bytes."""
    try:
        text = json_format.MessageToJson(
            decode_payload(data), preserving_proto_field_name=True, indent=None
        )
    except PayloadError:
        text = "base64:" + base64.b64encode(data).decode("ascii")
    return text[:MAX_DEAD_LETTER_CHARS]


def metric_text(metric: Payload.Metric) -> str:
    """A dead letter's copy of one metric, as protobuf JSON."""
    text = json_format.MessageToJson(metric, preserving_proto_field_name=True, indent=None)
    return text[:MAX_DEAD_LETTER_CHARS]
