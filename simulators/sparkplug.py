"""Sparkplug B (Eclipse Sparkplug 3.0) encoding for the simulated vision camera; no I/O.

The camera is one edge node (``group_id``/``edge_node_id`` from `SparkplugOptions`) with
one device per inspection station. Topics::

    spBv1.0/<group_id>/NBIRTH|NDEATH|NCMD/<edge_node_id>
    spBv1.0/<group_id>/DBIRTH|DDATA|DDEATH/<edge_node_id>/<device_id>

``device_id`` is the station name (``line2.vision``) with the characters MQTT and Sparkplug
reserve (``+ / #``) replaced by ``_``. Each device has these metrics, in this order:

=====================  ========  ==========================================================
name                   datatype  value, per part
=====================  ========  ==========================================================
``serial``             String    the part's serial number
``verdict``            String    ``OK`` or ``NOK``
``defects``            String    the out-of-spec features, comma-joined (``""``: none)
``inspection``         String    ``first`` or ``reinspection``
``features/gap_mm``    Double    one per characteristic: its JSON field path, ``.`` -> ``/``
=====================  ========  ==========================================================

Feature metrics carry the property ``engUnit`` when the plant gives a unit. Aliases are
1, 2, ... in that order over the stations in plant-file order: unique across the edge node
(as Sparkplug requires) and the same on every run with the same plant file. Timestamps are
integer milliseconds since the Unix epoch, UTC. DDATA carries every metric of the part, by
alias only (no name, no datatype), each stamped with the part's time; a feature the JSON
result leaves out (not judged: lost or of bad quality) is sent with ``is_null``.

`SparkplugNode` holds the session state (bdSeq, seq, last values) and returns
``(topic, payload bytes)`` pairs; the payload builders below it are pure functions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import Any

from google.protobuf.message import DecodeError

from simulators.plant import SimCharacteristic, SimInspection
from simulators.sparkplug_b_pb2 import Payload

NAMESPACE = "spBv1.0"
BD_SEQ = "bdSeq"
REBIRTH = "Node Control/Rebirth"

_RESERVED = re.compile(r"[+/#]")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

MetricValue = str | float
Values = Mapping[str, MetricValue | None]  # by metric name; None: no value for this part
Message = tuple[str, bytes]


class DataType(IntEnum):
    """Sparkplug B datatype codes (specification 3.0, payload chapter) that we send."""

    UINT64 = 8
    DOUBLE = 10
    BOOLEAN = 11
    STRING = 12


@dataclass(frozen=True)
class SparkplugOptions:
    """Where the camera's Sparkplug B session lives; ids must be valid topic levels."""

    group_id: str
    edge_node_id: str

    def __post_init__(self) -> None:
        for what, value in (("group_id", self.group_id), ("edge_node_id", self.edge_node_id)):
            if not value or _RESERVED.search(value):
                raise ValueError(f"Sparkplug {what} must be non-empty without + / #: {value!r}")


@dataclass(frozen=True)
class MetricSpec:
    """One device metric: its birth name, alias, datatype and dotted path in the JSON result."""

    name: str
    alias: int
    datatype: DataType
    path: str
    unit: str | None = None


@dataclass(frozen=True)
class DeviceSpec:
    """One Sparkplug device (an inspection station) and its metrics in alias order."""

    device_id: str
    metrics: tuple[MetricSpec, ...]

    def values_of(self, result: Mapping[str, Any]) -> dict[str, MetricValue | None]:
        """Return each metric's value in a JSON vision result by metric name (None: absent)."""
        values: dict[str, MetricValue | None] = {}
        for metric in self.metrics:
            value = _get_path(result, metric.path)
            values[metric.name] = ",".join(value) if isinstance(value, list) else value
        return values


def sanitise_id(name: str) -> str:
    """Return `name` usable as a Sparkplug id: ``+ / #`` become ``_`` (``a/b`` -> ``a_b``)."""
    if not name:
        raise ValueError("a Sparkplug id cannot be empty")
    return _RESERVED.sub("_", name)


def epoch_ms(moment: datetime) -> int:
    """Return an aware datetime as whole milliseconds since the Unix epoch (floored)."""
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def node_topic(group_id: str, kind: str, edge_node_id: str) -> str:
    """Return ``spBv1.0/<group_id>/<kind>/<edge_node_id>`` (kind: NBIRTH, NDEATH, NCMD...)."""
    return f"{NAMESPACE}/{group_id}/{kind}/{edge_node_id}"


def device_topic(group_id: str, kind: str, edge_node_id: str, device_id: str) -> str:
    """Return ``spBv1.0/<group_id>/<kind>/<edge_node_id>/<device_id>`` (DBIRTH, DDATA...)."""
    return f"{NAMESPACE}/{group_id}/{kind}/{edge_node_id}/{device_id}"


def build_devices(
    stations: Sequence[tuple[SimInspection, Sequence[SimCharacteristic]]],
) -> tuple[DeviceSpec, ...]:
    """Return one device per station with node-wide unique aliases from 1 (module doc).

    Raises ValueError when two stations share a device id or two metrics of one station
    share a name.
    """
    devices: list[DeviceSpec] = []
    alias = 0
    for inspection, chars in stations:
        fixed = [
            ("serial", "serial"),
            ("verdict", inspection.field),
            ("defects", "defects"),
            ("inspection", "inspection"),
        ]
        specs = []
        for name, path in fixed:
            alias += 1
            specs.append(MetricSpec(name, alias, DataType.STRING, path))
        for char in chars:
            assert char.mqtt_field is not None
            alias += 1
            name = char.mqtt_field.replace(".", "/")
            specs.append(MetricSpec(name, alias, DataType.DOUBLE, char.mqtt_field, char.unit))
        device = DeviceSpec(sanitise_id(inspection.station), tuple(specs))
        if len({m.name for m in specs}) != len(specs):
            raise ValueError(f"station {inspection.station}: two Sparkplug metrics share a name")
        if device.device_id in {d.device_id for d in devices}:
            raise ValueError(f"two stations have the Sparkplug device id {device.device_id!r}")
        devices.append(device)
    return tuple(devices)


class SparkplugNode:
    """The edge node's session: bdSeq per MQTT connection, seq per message, last values.

    Not thread-safe: the caller serialises calls (the camera holds its publish lock).
    """

    def __init__(self, options: SparkplugOptions, devices: Sequence[DeviceSpec]) -> None:
        self.options = options
        self.devices = {device.device_id: device for device in devices}
        self.bd_seq = 0  # Sparkplug: starts at 0, +1 on every new MQTT CONNECT
        self._seq = 0
        self._last: dict[str, tuple[Values, int]] = {}

    def topic(self, kind: str, device_id: str | None = None) -> str:
        """Return this node's topic of `kind`, or its device's when `device_id` is given."""
        group, node = self.options.group_id, self.options.edge_node_id
        if device_id is None:
            return node_topic(group, kind, node)
        return device_topic(group, kind, node, device_id)

    def next_connection(self) -> None:
        """Advance bdSeq (wrapping 255 -> 0) before the next MQTT CONNECT and its Will."""
        self.bd_seq = (self.bd_seq + 1) % 256

    def death(self, timestamp_ms: int) -> Message:
        """Return the NDEATH (the Will at connect, and the last message on a clean stop)."""
        return self.topic("NDEATH"), ndeath_payload(self.bd_seq, timestamp_ms)

    def births(self, timestamp_ms: int) -> list[Message]:
        """Return NBIRTH (seq restarting at 0) then one DBIRTH per device, last values in."""
        self._seq = 0
        messages = [(self.topic("NBIRTH"), nbirth_payload(self.bd_seq, 0, timestamp_ms))]
        for device_id, device in self.devices.items():
            values, at_ms = self._last.get(device_id, (None, timestamp_ms))
            payload = dbirth_payload(device, values, self._next_seq(), timestamp_ms, at_ms)
            messages.append((self.topic("DBIRTH", device_id), payload))
        return messages

    def data(self, device_id: str, result: Mapping[str, Any], at: datetime) -> Message:
        """Return the DDATA for one part's JSON vision `result` at one station at time `at`."""
        device = self.devices[device_id]
        values = device.values_of(result)
        at_ms = epoch_ms(at)
        self._last[device_id] = (values, at_ms)
        payload = ddata_payload(device, values, self._next_seq(), at_ms)
        return self.topic("DDATA", device_id), payload

    def device_deaths(self, timestamp_ms: int) -> list[Message]:
        """Return one DDEATH per device (a clean stop sends these before the NDEATH)."""
        return [
            (self.topic("DDEATH", device_id), ddeath_payload(self._next_seq(), timestamp_ms))
            for device_id in self.devices
        ]

    def _next_seq(self) -> int:
        # NBIRTH takes 0 (births() resets); every later message takes the next, 255 -> 0
        self._seq = (self._seq + 1) % 256
        return self._seq


def nbirth_payload(bd_seq: int, seq: int, timestamp_ms: int) -> bytes:
    """Return an NBIRTH: the bdSeq (UInt64) and ``Node Control/Rebirth`` = false (Boolean)."""
    payload = Payload(timestamp=timestamp_ms, seq=seq)
    payload.metrics.add(
        name=BD_SEQ, timestamp=timestamp_ms, datatype=DataType.UINT64, long_value=bd_seq
    )
    payload.metrics.add(
        name=REBIRTH, timestamp=timestamp_ms, datatype=DataType.BOOLEAN, boolean_value=False
    )
    return payload.SerializeToString()


def ndeath_payload(bd_seq: int, timestamp_ms: int) -> bytes:
    """Return an NDEATH: the bdSeq metric alone and, as Sparkplug requires, no seq."""
    payload = Payload(timestamp=timestamp_ms)
    payload.metrics.add(name=BD_SEQ, datatype=DataType.UINT64, long_value=bd_seq)
    return payload.SerializeToString()


def dbirth_payload(
    device: DeviceSpec, values: Values | None, seq: int, timestamp_ms: int, values_ms: int
) -> bytes:
    """Return a DBIRTH declaring every metric: name, alias, datatype, value (or is_null).

    `values` are the last part's, stamped `values_ms`; None before the first part, when
    every metric is sent as null.
    """
    payload = Payload(timestamp=timestamp_ms, seq=seq)
    for spec in device.metrics:
        metric = payload.metrics.add(
            name=spec.name, alias=spec.alias, timestamp=values_ms, datatype=spec.datatype
        )
        _set_value(metric, spec, None if values is None else values[spec.name])
        if spec.unit is not None:
            metric.properties.keys.append("engUnit")
            metric.properties.values.add(type=DataType.STRING, string_value=spec.unit)
    return payload.SerializeToString()


def ddata_payload(device: DeviceSpec, values: Values, seq: int, at_ms: int) -> bytes:
    """Return a DDATA with every metric of one part, each stamped `at_ms`.

    By alias only, without datatype: Sparkplug 3.0 says NDATA/DDATA SHOULD NOT carry it
    (the host knows it from the birth).
    """
    payload = Payload(timestamp=at_ms, seq=seq)
    for spec in device.metrics:
        metric = payload.metrics.add(alias=spec.alias, timestamp=at_ms)
        _set_value(metric, spec, values[spec.name])
    return payload.SerializeToString()


def ddeath_payload(seq: int, timestamp_ms: int) -> bytes:
    """Return a DDEATH: no metrics, the node's next seq."""
    return Payload(timestamp=timestamp_ms, seq=seq).SerializeToString()


def is_rebirth_request(data: bytes | bytearray) -> bool:
    """Return True when an NCMD payload sets ``Node Control/Rebirth`` to true.

    Undecodable payloads are not requests (False): a stray message must not stop the node.
    """
    try:
        payload = Payload.FromString(bytes(data))
    except DecodeError:
        return False
    return any(
        m.name == REBIRTH and m.WhichOneof("value") == "boolean_value" and m.boolean_value
        for m in payload.metrics
    )


def _set_value(metric: Payload.Metric, spec: MetricSpec, value: MetricValue | None) -> None:
    if value is None:
        metric.is_null = True
    elif spec.datatype is DataType.DOUBLE:
        metric.double_value = float(value)
    else:
        metric.string_value = str(value)


def _get_path(result: Mapping[str, Any], dotted: str) -> Any:
    node: Any = result
    for key in dotted.split("."):
        node = node.get(key) if isinstance(node, Mapping) else None
    return node
