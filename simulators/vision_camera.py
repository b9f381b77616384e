"""A fake machine-vision station: one JSON result per inspected part over MQTT (QoS 1).

For every process with ``inspection.mqtt.topic`` in the plant configuration, each part
produces one message on that topic (`simulators.vision_payload` has its format), without
the features the scenario lost or read with bad quality (no message if none is left). Alone,
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
from any thread. The Sparkplug session (`simulators.sparkplug_edge`) has threads and a
lock of its own.
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
from simulators.sparkplug import SparkplugOptions
from simulators.sparkplug_edge import SparkplugEdge
from simulators.vision_payload import build_payload, check_payload_paths, judged_values

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
        self._lock = threading.Lock()  # publishing: one part's messages in order
        self._parts_published = 0
        self._edge: SparkplugEdge | None = None
        if sparkplug is not None:
            self._edge = SparkplugEdge(sparkplug, self.stations, self._link, self._lock)

    @property
    def parts_published(self) -> int:
        """How many parts have been published (at least one station's message each)."""
        return self._parts_published

    def start(self) -> None:
        """Connect to the broker (waiting for CONNACK) and start publishing every takt.

        Raises ConnectionError when the broker cannot be reached or refuses the connection.
        """
        self._stop.clear()
        if self._edge is not None:
            self._edge.connecting()
        self._link.connect(self.broker_host, self.broker_port)
        if self._edge is not None and not self._edge.born.wait(CONNECT_TIMEOUT_S):
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
        if self._edge is not None:
            self._edge.publish_deaths()
        self._link.close(flush_timeout_s)
        if self._edge is not None:  # a later start() is a new Sparkplug session
            self._edge.on_lost()
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
        drawn from the scenario. Features the scenario loses or reads with bad quality are
        left out of the result; a station left with none sends nothing. Messages go out
        with QoS 1 (Sparkplug DDATA: QoS 0); `wait_published` tells when the broker has
        acknowledged them.
        """
        with self._lock:
            now = datetime.now(UTC)
            shift_known = self.generator.fault_started_at is not None
            readings = self.generator.next_readings(now, values)
            payloads: dict[str, dict[str, Any]] = {}
            for topic, (inspection, chars) in self.stations.items():
                if judged := judged_values(chars, readings):
                    payloads[topic] = build_payload(inspection, chars, judged, readings.index, now)
            if payloads:
                self._send_results(list(payloads.items()), now)
                self._parts_published += 1
            if not shift_known and self.generator.fault_started_at is not None:
                self._write_truth()
        return payloads

    def publish_results(self, parts: Sequence[StationPart]) -> int:
        """Publish what a whole simulated plant's stations saw; return the messages sent.

        Parts at stations this camera serves give one message per inspection (first, and
        the re-inspection after rework, with the values it measured). A vision result
        carries no quality: the features a station did not judge (lost or of bad quality)
        are left out, and a part it could not judge at all gives no message. The camera's
        own generator is not used.
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
        if self._edge is not None:
            self._edge.send_data(results, at)

    def wait_published(self, timeout: float) -> bool:
        """Block until the broker has acknowledged every message sent so far (QoS 1 PUBACK).

        Returns False when `timeout` seconds pass first.
        """
        return self._link.wait_published(timeout)

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
        if self._edge is not None:
            self._edge.on_connected()

    def _on_connection_lost(self) -> None:  # on paho's thread, when not stopping
        if self._edge is not None:  # the broker sends our Will; the reconnect needs a new one
            self._edge.on_lost()

    def _on_message(self, topic: str, payload: bytes | bytearray) -> None:  # on paho's thread
        if self._edge is not None:
            self._edge.on_message(topic, payload)


def _warn_unserved(mqtt_chars: Sequence[SimCharacteristic], stations: Mapping[str, object]) -> None:
    unserved = [c.id for c in mqtt_chars if c.mqtt_topic not in stations]
    if unserved:
        _log.warning("no inspection topic carries %s: the camera does not publish them", unserved)
