"""A simulator's MQTT connection: connect, publish and count the broker's acknowledgements.

`MqttLink` holds one paho client (callback API 2). `MqttLink.connect` waits for the
CONNACK and raises ConnectionError when the broker cannot be reached or refuses; paho's
network loop then runs in paho's own thread (``loop_start``) and reconnects by itself.
`MqttLink.send` counts each message until the broker acknowledges it (QoS 1 PUBACK; a QoS 0
message once it is written), so `MqttLink.wait_published` can tell when all are out.

The owner's hooks (``on_connected``, ``on_lost``, ``on_message``) run on paho's thread
while paho holds its lock: they must not wait for a lock held around `send`. A disconnect
while the owner's ``stopping`` event is clear is unexpected: it is logged, then ``on_lost``.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

_log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0


class MqttLink:
    """One MQTT client, ``<client_prefix>-<8 hex digits>``, with publish accounting."""

    def __init__(
        self,
        client_prefix: str,
        stopping: threading.Event,
        *,
        on_connected: Callable[[], None] | None = None,
        on_lost: Callable[[], None] | None = None,
        on_message: Callable[[str, bytes | bytearray], None] | None = None,
    ) -> None:
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{client_prefix}-{uuid.uuid4().hex[:8]}",
        )
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        if on_message is not None:
            self._client.on_message = lambda _c, _u, msg: on_message(msg.topic, msg.payload)
        self._stopping = stopping
        self._on_connected = on_connected
        self._on_lost = on_lost
        self._connected = threading.Event()
        self._connect_reason: ReasonCode | None = None
        self._acked = threading.Condition()
        self._messages_sent = 0
        self._messages_acked = 0

    def connect(self, host: str, port: int) -> None:
        """Connect, start paho's network loop and wait for the broker's CONNACK.

        Raises ConnectionError when the broker cannot be reached or refuses the connection.
        """
        self._connected.clear()  # a second start() waits for its own CONNACK
        self._connect_reason = None
        try:
            self._client.connect(host, port, keepalive=30)
        except OSError as exc:
            raise ConnectionError(f"cannot reach MQTT broker at {host}:{port}: {exc}") from exc
        self._client.loop_start()
        if not self._connected.wait(CONNECT_TIMEOUT_S) or self._connect_reason is None:
            self._client.loop_stop()
            raise ConnectionError(
                f"MQTT broker at {host}:{port} "
                f"did not accept the connection: {self._connect_reason}"
            )

    def close(self, flush_timeout_s: float | None = None) -> None:
        """Disconnect and stop paho's loop; first wait up to ``flush_timeout_s`` for acks."""
        if flush_timeout_s is not None and not self.wait_published(flush_timeout_s):
            _log.warning(
                "stopping with %d messages not acknowledged by the broker",
                self._messages_sent - self._messages_acked,
            )
        self._client.disconnect()
        self._client.loop_stop()

    def will_set(self, topic: str, payload: bytes, qos: int) -> None:
        """The Will the broker publishes when the connection is lost (never retained)."""
        self._client.will_set(topic, payload, qos=qos, retain=False)

    def subscribe(self, topic: str, qos: int) -> None:
        self._client.subscribe(topic, qos=qos)

    def send(self, topic: str, payload: str | bytes, qos: int = 1) -> None:
        """Publish without waiting; a failure is logged, not raised (paho retries QoS 1)."""
        with self._acked:
            self._messages_sent += 1
        info = self._client.publish(topic, payload, qos=qos)
        if info.rc != mqtt.MQTT_ERR_SUCCESS and qos == 0:
            # paho drops an unsent QoS 0 message and never reports it: stop waiting for it
            with self._acked:
                self._messages_acked += 1
                self._acked.notify_all()
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            _log.warning("publish to %s failed: %s", topic, mqtt.error_string(info.rc))

    def wait_published(self, timeout: float) -> bool:
        """Block until the broker has acknowledged every message sent so far; False when
        ``timeout`` seconds pass first."""
        with self._acked:
            target = self._messages_sent
            return self._acked.wait_for(lambda: self._messages_acked >= target, timeout)

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
            if self._on_connected is not None:
                self._on_connected()
        self._connected.set()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if not self._stopping.is_set():
            _log.warning("disconnected from MQTT broker (%s); paho will reconnect", reason_code)
            if self._on_lost is not None:
                self._on_lost()

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
