"""The vision camera's Sparkplug B edge-node session on its MQTT link (`SparkplugEdge`).

`simulators.sparkplug` builds the messages; this module decides when they go out: the
NDEATH as the MQTT Will (renewed with the next bdSeq whenever a connection ends), NBIRTH
and the DBIRTHs after every connect and on an NCMD ``Node Control/Rebirth``, DDATA only
while the node is born on the current connection, DDEATHs and NDEATH on a clean stop.

Threads: paho's callbacks (`on_connected`, `on_lost`, `on_message`) run on paho's thread
while paho holds its lock, so births go out from a short-lived thread of their own, under
the owner's publish lock (births and data stay in ``seq`` order). A small state lock,
never held while sending, guards the session count, the born flag and the bdSeq: a births
thread of a connection lost meanwhile must not mark the node born.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from simulators.plant import SimCharacteristic, SimInspection
from simulators.sparkplug import (
    SparkplugNode,
    SparkplugOptions,
    build_devices,
    epoch_ms,
    is_rebirth_request,
)

_log = logging.getLogger(__name__)


class EdgeLink(Protocol):
    """What the session needs of the MQTT connection (`simulators.mqtt_link.MqttLink`)."""

    def send(self, topic: str, payload: str | bytes, qos: int = 1) -> None: ...
    def will_set(self, topic: str, payload: bytes, qos: int) -> None: ...
    def subscribe(self, topic: str, qos: int) -> None: ...


class SparkplugEdge:
    """One edge node with a device per station (JSON topic), on `link`; see the module doc.

    `publish_lock` is the owner's lock around sending a part's messages: `send_data` must
    be called holding it.
    """

    def __init__(
        self,
        options: SparkplugOptions,
        stations: Mapping[str, tuple[SimInspection, Sequence[SimCharacteristic]]],
        link: EdgeLink,
        publish_lock: threading.Lock,
    ) -> None:
        devices = build_devices(list(stations.values()))
        self.node = SparkplugNode(options, devices)
        self.born = threading.Event()  # NBIRTH and DBIRTHs are out on this connection
        self._device_ids = {t: d.device_id for t, d in zip(stations, devices, strict=True)}
        self._link = link
        self._lock = publish_lock
        self._state = threading.Lock()  # _session, born, bdSeq and the Will; never sends
        self._session = 0  # counts ended connections: a birth of an older one is stale
        self._set_will()

    def connecting(self) -> None:
        """Before a connect: only that connection's births may mark the node born."""
        with self._state:
            self.born.clear()

    def on_connected(self) -> None:  # on paho's thread
        """Subscribe to NCMD and publish the births (from a thread of their own)."""
        self._link.subscribe(self.node.topic("NCMD"), qos=1)
        self._start_births()

    def on_lost(self) -> None:  # on paho's thread, or after a clean stop
        """The connection is gone: older births are stale, the next CONNECT takes a new bdSeq."""
        with self._state:
            self._session += 1
            self.born.clear()
            self.node.next_connection()
            self._set_will()

    def on_message(self, topic: str, payload: bytes | bytearray) -> None:  # on paho's thread
        """Publish the births again on an NCMD rebirth request."""
        if topic == self.node.topic("NCMD") and self.born.is_set() and is_rebirth_request(payload):
            _log.info("Sparkplug rebirth requested")
            self._start_births()

    def send_data(self, results: Sequence[tuple[str, Mapping[str, Any]]], at: datetime) -> None:
        """One DDATA per JSON result (topic, payload) while born; hold the publish lock."""
        if self.born.is_set():
            for topic, payload in results:
                self._link.send(*self.node.data(self._device_ids[topic], payload, at), qos=0)

    def publish_deaths(self) -> None:
        """On a clean stop: DDEATH per station, then the NDEATH the broker will not send."""
        with self._lock:
            with self._state:
                if not self.born.is_set():
                    return
                self.born.clear()
                now_ms = _now_ms()
                deaths = [*self.node.device_deaths(now_ms), self.node.death(now_ms)]
            for topic, payload in deaths[:-1]:
                self._link.send(topic, payload, qos=0)
            self._link.send(*deaths[-1], qos=1)

    def publish_births(self, session: int) -> None:
        """NBIRTH and the DBIRTHs of connection `session`, unless it has ended meanwhile."""
        with self._lock:
            with self._state:
                if session != self._session:
                    return  # that connection is gone; its successor publishes its own births
                births = self.node.births(_now_ms())
            for topic, payload in births:
                self._link.send(topic, payload, qos=0)
            with self._state:
                if session == self._session:  # not lost while publishing
                    self.born.set()

    def _start_births(self) -> None:
        with self._state:
            session = self._session
        threading.Thread(
            target=self.publish_births, args=(session,), name="sparkplug-births", daemon=True
        ).start()

    def _set_will(self) -> None:
        topic, payload = self.node.death(_now_ms())
        self._link.will_set(topic, payload, qos=1)


def _now_ms() -> int:
    return epoch_ms(datetime.now(UTC))
