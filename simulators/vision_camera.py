"""A fake machine-vision station: one JSON result per inspected part over MQTT (QoS 1).

For every process with ``inspection.mqtt.topic`` in the plant configuration, each part
produces one message on that topic::

    {"serial": "line2-000123", "station": "line2.vision",
     "time": "2026-11-22T19:00:00.123456Z",
     "features": {"gap_mm": 1.503, "offset_mm": 0.01},
     "verdict": "OK", "defects": [], "inspection": "first"}

Each characteristic's value is written at its configured ``source.mqtt.field`` path
(``features.gap_mm`` -> ``payload["features"]["gap_mm"]``) and the verdict at the
inspection's field path. The verdict is NOK when any feature is outside its spec limits;
``defects`` lists those features by the last component of their field path.

Threads: `VisionCamera.start` connects and runs paho's network loop in its own thread
(``loop_start``) and, when ``takt_s`` is set, one daemon thread that publishes a part every
takt. `VisionCamera.publish_part` is thread-safe and may be called from any thread.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from simulators.plant import SimCharacteristic, SimInspection, load_plant
from simulators.scenario import Scenario, ValueGenerator, utc_iso

_log = logging.getLogger(__name__)

_RESERVED_KEYS = frozenset({"serial", "station", "time", "defects", "inspection"})
_CONNECT_TIMEOUT_S = 10.0


def build_payload(
    inspection: SimInspection,
    characteristics: Sequence[SimCharacteristic],
    values: Mapping[str, float],
    part_index: int,
    at: datetime,
) -> dict[str, Any]:
    """Return the vision result message for one part at one station (pure function)."""
    payload: dict[str, Any] = {
        "serial": f"{inspection.line}-{part_index:06d}",
        "station": inspection.station,
        "time": utc_iso(at),
        "features": {},
    }
    defects: list[str] = []
    for char in characteristics:
        assert char.mqtt_field is not None
        assert char.feature_key is not None
        value = values[char.id]
        _set_path(payload, char.mqtt_field, value)
        if char.is_out_of_spec(value):
            defects.append(char.feature_key)
    _set_path(payload, inspection.field, "NOK" if defects else "OK")
    payload["defects"] = defects
    payload["inspection"] = "first"
    return payload


class VisionCamera:
    """Publish vision results for the plant's inspected processes to an MQTT broker."""

    def __init__(
        self,
        config_path: Path | str,
        broker_host: str,
        broker_port: int,
        scenario: Scenario,
        takt_s: float | None = 0.2,
        *,
        ground_truth_path: Path | str | None = None,
    ) -> None:
        if takt_s is not None and takt_s <= 0:
            raise ValueError(f"takt_s must be > 0 (or None to publish manually), got {takt_s}")
        plant = load_plant(config_path)
        if not plant.inspections:
            raise ValueError(f"{config_path}: no process has an inspection.mqtt.topic")
        self.plant_id = plant.plant_id
        self.stations = {i.topic: (i, plant.characteristics_on(i.topic)) for i in plant.inspections}
        _check_payload_paths(self.stations.values())
        _warn_unserved(plant.mqtt_characteristics(), self.stations)
        served = [c for _, chars in self.stations.values() for c in chars]
        self.generator = ValueGenerator(scenario, served)
        self.broker_host = broker_host
        self.broker_port = broker_port
        self.takt_s = takt_s
        self._truth_path = Path(ground_truth_path) if ground_truth_path is not None else None
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"spcmon-sim-camera-{uuid.uuid4().hex[:8]}",
        )
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._connected = threading.Event()
        self._connect_reason: ReasonCode | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._acked = threading.Condition()
        self._messages_sent = 0
        self._messages_acked = 0
        self._parts_published = 0

    @property
    def parts_published(self) -> int:
        """How many parts have been published (one message per station each)."""
        return self._parts_published

    def start(self) -> None:
        """Connect to the broker (waiting for CONNACK) and start publishing every takt.

        Raises ConnectionError when the broker cannot be reached or refuses the connection.
        """
        try:
            self._client.connect(self.broker_host, self.broker_port, keepalive=30)
        except OSError as exc:
            raise ConnectionError(
                f"cannot reach MQTT broker at {self.broker_host}:{self.broker_port}: {exc}"
            ) from exc
        self._client.loop_start()
        if not self._connected.wait(_CONNECT_TIMEOUT_S) or self._connect_reason is None:
            self._client.loop_stop()
            raise ConnectionError(
                f"MQTT broker at {self.broker_host}:{self.broker_port} "
                f"did not accept the connection: {self._connect_reason}"
            )
        self._write_truth()
        if self.takt_s is not None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._publish_every_takt,
                args=(self.takt_s,),
                name="vision-camera",
                daemon=True,
            )
            self._thread.start()

    def stop(self, flush_timeout_s: float = 5.0) -> None:
        """Stop publishing, wait up to `flush_timeout_s` for outstanding acks, disconnect."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if not self.wait_published(flush_timeout_s):
            _log.warning(
                "stopping with %d messages not acknowledged by the broker",
                self._messages_sent - self._messages_acked,
            )
        self._client.disconnect()
        self._client.loop_stop()
        with self._lock:
            self._write_truth()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def publish_part(self, values: Mapping[str, float] | None = None) -> dict[str, dict[str, Any]]:
        """Publish the next part now; return its payload per topic.

        `values` forces exact values for some or all characteristics (by id); the rest are
        drawn from the scenario. Messages go out with QoS 1; use `wait_published` to know
        the broker has acknowledged them.
        """
        with self._lock:
            now = datetime.now(UTC)
            shift_known = self.generator.shift_started_at is not None
            index = self.generator.parts_generated
            part = self.generator.next_part(now, values)
            payloads = {
                topic: build_payload(inspection, chars, part, index, now)
                for topic, (inspection, chars) in self.stations.items()
            }
            for topic, payload in payloads.items():
                self._send(topic, payload)
            self._parts_published += 1
            if not shift_known and self.generator.shift_started_at is not None:
                self._write_truth()
        return payloads

    def wait_published(self, timeout: float) -> bool:
        """Block until the broker has acknowledged every message sent so far (QoS 1 PUBACK).

        Returns False when `timeout` seconds pass first.
        """
        with self._acked:
            target = self._messages_sent
            return self._acked.wait_for(lambda: self._messages_acked >= target, timeout)

    def _send(self, topic: str, payload: Mapping[str, Any]) -> None:
        with self._acked:
            self._messages_sent += 1
        info = self._client.publish(topic, json.dumps(payload), qos=1)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            _log.warning("publish to %s failed: %s", topic, mqtt.error_string(info.rc))

    def _publish_every_takt(self, takt_s: float) -> None:
        while not self._stop.wait(takt_s):
            try:
                self.publish_part()
            except Exception:
                _log.exception("could not publish part %d", self.generator.parts_generated)

    def _write_truth(self) -> None:
        if self._truth_path is not None:
            self.generator.write_ground_truth(self._truth_path)

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            _log.error("MQTT broker refused the connection: %s", reason_code)
            self._connect_reason = None
        else:
            self._connect_reason = reason_code
        self._connected.set()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if not self._stop.is_set():
            _log.warning("disconnected from MQTT broker (%s); paho will reconnect", reason_code)

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties,
    ) -> None:
        with self._acked:
            self._messages_acked += 1
            self._acked.notify_all()


def _set_path(payload: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = payload
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value


def _check_payload_paths(
    stations: Iterable[tuple[SimInspection, tuple[SimCharacteristic, ...]]],
) -> None:
    """Refuse field paths that would overwrite the message's own keys or each other."""
    for inspection, chars in stations:
        paths = [c.mqtt_field for c in chars if c.mqtt_field is not None] + [inspection.field]
        for path in paths:
            if path.split(".", 1)[0] in _RESERVED_KEYS:
                raise ValueError(
                    f"topic {inspection.topic}: field {path!r} collides with the "
                    f"message's own keys {sorted(_RESERVED_KEYS)}"
                )
        if len(set(paths)) != len(paths):
            raise ValueError(f"topic {inspection.topic}: two fields share a path: {paths}")


def _warn_unserved(mqtt_chars: Sequence[SimCharacteristic], stations: Mapping[str, object]) -> None:
    unserved = [c.id for c in mqtt_chars if c.mqtt_topic not in stations]
    if unserved:
        _log.warning("no inspection topic carries %s: the camera does not publish them", unserved)
