"""A fake machine-vision station: one JSON result per inspected part over MQTT (QoS 1).

For every process with ``inspection.mqtt.topic`` in the plant configuration, each part
produces one message on that topic (`simulators.vision_payload` has its format). Alone,
the camera draws its parts from its own scenario (`publish_part`, every takt); in a whole
simulated plant it publishes what the plant's stations saw (`publish_results`).

With ``sparkplug=SparkplugOptions(...)`` the camera is also a Sparkplug B edge node
(`simulators.sparkplug` has the topics and metrics): NDEATH as the MQTT Will, NBIRTH and
one DBIRTH per station after every connect and on an NCMD ``Node Control/Rebirth``, one
DDATA per part and station next to the JSON message, DDEATHs and NDEATH on `stop`. Births,
data and device deaths go out with QoS 0 and the NDEATH with QoS 1, as Sparkplug requires;
parts published while the node is not born (reconnecting) go out as JSON only.

Threads: `VisionCamera.start` connects (`simulators.mqtt_link`) and runs paho's network
loop in its own thread (``loop_start``) and, when ``takt_s`` is set, one daemon thread that
publishes a part every takt. `VisionCamera.publish_part` is thread-safe and may be called
from any thread. Sparkplug births run on a short-lived thread of their own: paho's
callbacks hold paho's lock, and taking the publish lock there could deadlock with
`publish_part`.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from simulators.mqtt_link import CONNECT_TIMEOUT_S, MqttLink
from simulators.plant import SimCharacteristic, load_plant
from simulators.production import StationPart
from simulators.scenario import Scenario, ValueGenerator
from simulators.sparkplug import (
    SparkplugNode,
    SparkplugOptions,
    build_devices,
    epoch_ms,
    is_rebirth_request,
)
from simulators.vision_payload import build_payload, check_payload_paths

_log = logging.getLogger(__name__)


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
        sparkplug: SparkplugOptions | None = None,
    ) -> None:
        if takt_s is not None and takt_s <= 0:
            raise ValueError(f"takt_s must be > 0 (or None to publish manually), got {takt_s}")
        plant = load_plant(config_path)
        if not plant.inspections:
            raise ValueError(f"{config_path}: no process has an inspection.mqtt.topic")
        self.plant_id = plant.plant_id
        self.stations = {i.topic: (i, plant.characteristics_on(i.topic)) for i in plant.inspections}
        check_payload_paths(self.stations.values())
        self._topics = {i.station: topic for topic, (i, _) in self.stations.items()}
        _warn_unserved(plant.mqtt_characteristics(), self.stations)
        served = [c for _, chars in self.stations.values() for c in chars]
        self.generator = ValueGenerator(scenario, served)
        self.broker_host = broker_host
        self.broker_port = broker_port
        self.takt_s = takt_s
        self._truth_path = Path(ground_truth_path) if ground_truth_path is not None else None
        self._stop = threading.Event()
        self._link = MqttLink(
            "spcmon-sim-camera",
            self._stop,
            on_connected=self._on_connected,
            on_lost=self._on_connection_lost,
            on_message=self._on_message,
        )
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._parts_published = 0
        self._sparkplug: SparkplugNode | None = None
        self._device_ids: dict[str, str] = {}  # JSON topic -> Sparkplug device id
        self._born = threading.Event()  # NBIRTH and DBIRTHs are out on this connection
        self._session = 0  # counts lost connections: a birth of an older one is stale
        if sparkplug is not None:
            devices = build_devices(list(self.stations.values()))
            self._sparkplug = SparkplugNode(sparkplug, devices)
            self._device_ids = {t: d.device_id for t, d in zip(self.stations, devices, strict=True)}
            self._set_will()

    @property
    def parts_published(self) -> int:
        """How many parts have been published (one message per station each)."""
        return self._parts_published

    def start(self) -> None:
        """Connect to the broker (waiting for CONNACK) and start publishing every takt.

        Raises ConnectionError when the broker cannot be reached or refuses the connection.
        """
        self._stop.clear()
        self._link.connect(self.broker_host, self.broker_port)
        if self._sparkplug is not None and not self._born.wait(CONNECT_TIMEOUT_S):
            self._link.close()
            raise ConnectionError("the Sparkplug B births were not published in time")
        self._write_truth()
        if self.takt_s is not None:
            self._thread = threading.Thread(
                target=self._publish_every_takt,
                args=(self.takt_s,),
                name="vision-camera",
                daemon=True,
            )
            self._thread.start()

    def stop(self, flush_timeout_s: float = 5.0) -> None:
        """Stop publishing, wait up to `flush_timeout_s` for outstanding acks, disconnect.

        With Sparkplug, DDEATHs and the NDEATH go out first (a clean DISCONNECT makes the
        broker discard the Will), and a later `start` begins a session with the next bdSeq.
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._publish_deaths()
        self._link.close(flush_timeout_s)
        if self._sparkplug is not None:  # a later start() is a new Sparkplug session
            self._sparkplug.next_connection()
            self._set_will()
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
        drawn from the scenario. Messages go out with QoS 1 (Sparkplug DDATA: QoS 0); use
        `wait_published` to know the broker has acknowledged them.
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
            self._send_results(list(payloads.items()), now)
            self._parts_published += 1
            if not shift_known and self.generator.shift_started_at is not None:
                self._write_truth()
        return payloads

    def publish_results(self, parts: Sequence[StationPart]) -> int:
        """Publish what a whole simulated plant's stations saw; return the messages sent.

        Parts at stations this camera serves give one message per inspection (first, and
        the re-inspection after rework, with the values it measured). A part the station
        could not judge (a value lost or of bad quality) gives no message: a vision
        result carries no quality. The camera's own generator is not used.
        """
        results: list[tuple[str, dict[str, Any]]] = []
        for part in parts:
            topic = self._topics.get(part.station)
            if topic is None:
                continue
            inspection, chars = self.stations[topic]
            for check in part.inspections:
                payload = build_payload(
                    inspection,
                    chars,
                    check.values,
                    part.serial,
                    part.at,
                    reinspection=not check.first_pass,
                )
                results.append((topic, payload))
        if results:
            with self._lock:
                self._send_results(results, parts[0].at)
                self._parts_published += 1
        return len(results)

    def _send_results(self, results: list[tuple[str, dict[str, Any]]], at: datetime) -> None:
        for topic, payload in results:
            self._link.send(topic, json.dumps(payload))
        if self._sparkplug is not None and self._born.is_set():
            for topic, payload in results:
                device_id = self._device_ids[topic]
                self._link.send(*self._sparkplug.data(device_id, payload, at), qos=0)

    def wait_published(self, timeout: float) -> bool:
        """Block until the broker has acknowledged every message sent so far (QoS 1 PUBACK).

        Returns False when `timeout` seconds pass first.
        """
        return self._link.wait_published(timeout)

    def _set_will(self) -> None:
        assert self._sparkplug is not None
        topic, payload = self._sparkplug.death(_now_ms())
        self._link.will_set(topic, payload, qos=1)

    def _start_births(self) -> None:
        threading.Thread(
            target=self._publish_births, args=(self._session,), name="sparkplug-births", daemon=True
        ).start()

    def _publish_births(self, session: int) -> None:
        assert self._sparkplug is not None
        with self._lock:
            if session != self._session:
                return  # that connection is gone; its successor publishes its own births
            for topic, payload in self._sparkplug.births(_now_ms()):
                self._link.send(topic, payload, qos=0)
            if session == self._session:  # not lost while publishing
                self._born.set()

    def _publish_deaths(self) -> None:
        """On a clean stop: DDEATH per station, then the NDEATH the broker will not send."""
        if self._sparkplug is None or not self._born.is_set():
            return
        with self._lock:
            self._born.clear()
            now_ms = _now_ms()
            for topic, payload in self._sparkplug.device_deaths(now_ms):
                self._link.send(topic, payload, qos=0)
            self._link.send(*self._sparkplug.death(now_ms), qos=1)

    def _publish_every_takt(self, takt_s: float) -> None:
        while not self._stop.wait(takt_s):
            try:
                self.publish_part()
            except Exception:
                _log.exception("could not publish part %d", self.generator.parts_generated)

    def _write_truth(self) -> None:
        if self._truth_path is not None:
            self.generator.write_ground_truth(self._truth_path)

    def _on_connected(self) -> None:  # on paho's thread
        if self._sparkplug is not None:
            self._link.subscribe(self._sparkplug.topic("NCMD"), qos=1)
            self._start_births()

    def _on_connection_lost(self) -> None:  # on paho's thread, when not stopping
        if self._sparkplug is not None:
            # the broker sends our Will: paho's reconnect must carry the next bdSeq
            self._session += 1
            self._born.clear()
            self._sparkplug.next_connection()
            self._set_will()

    def _on_message(self, topic: str, payload: bytes | bytearray) -> None:  # on paho's thread
        if (
            self._sparkplug is not None
            and topic == self._sparkplug.topic("NCMD")
            and self._born.is_set()
            and is_rebirth_request(payload)
        ):
            _log.info("Sparkplug rebirth requested")
            self._start_births()


def _now_ms() -> int:
    return epoch_ms(datetime.now(UTC))


def _warn_unserved(mqtt_chars: Sequence[SimCharacteristic], stations: Mapping[str, object]) -> None:
    unserved = [c.id for c in mqtt_chars if c.mqtt_topic not in stations]
    if unserved:
        _log.warning("no inspection topic carries %s: the camera does not publish them", unserved)
