"""MQTT topic for andon boards and MES (paho-mqtt 2.x, QoS 1, one JSON message each).

The payload is the notification's JSON (``Notification.to_json``), not retained. The
topic is a template: ``{line}``, ``{process}``, ``{kind}`` and ``{severity}`` are filled
in; a notification without a line or process gets ``plant`` there, and ``/``, ``+`` and
``#`` inside a value become ``_`` so a value never adds levels or wildcards.

One connection is opened on the first send and reused; paho's network thread reconnects
with backoff by itself. A message paho has queued but not yet seen acknowledged is
resent by paho after a reconnect, so a retry of the same notification (same key) waits
for that message instead of publishing a duplicate.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from alerts.notify.errors import NotifyError
from alerts.notify.model import Notification

_log = logging.getLogger(__name__)
TOPIC_FIELDS = ("line", "process", "kind", "severity")
_MAX_PENDING = 1000


def _level(value: str | None) -> str:
    if not value:
        return "plant"
    return value.replace("/", "_").replace("+", "_").replace("#", "_")


def render_topic(template: str, n: Notification) -> str:
    """``template`` with ``{line}``, ``{process}``, ``{kind}``, ``{severity}`` filled in."""
    values = {"line": n.line, "process": n.process, "kind": n.kind, "severity": n.severity}
    return template.format_map({k: _level(v) for k, v in values.items()})


async def _wait_for(condition: Callable[[], bool], timeout_s: float) -> bool:
    """Poll ``condition`` every 10 ms for up to ``timeout_s`` seconds (paho's state lives
    on its own thread; polling is simpler than bridging callbacks and cannot miss one)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.01)
    return True


class MqttNotifier:
    """Publishes each notification with QoS 1 to a topic rendered from ``topic``.

    ``connect_timeout_s`` bounds the wait for a (re)connection and ``publish_timeout_s``
    the wait for the broker's PUBACK, both in seconds; either running out is retryable.
    """

    def __init__(
        self,
        name: str,
        host: str,
        *,
        port: int = 1883,
        topic: str = "spcmon/andon/{line}",
        client_id: str = "spcmon-notify",
        username: str | None = None,
        password: str | None = None,
        keepalive_s: int = 30,
        connect_timeout_s: float = 5.0,
        publish_timeout_s: float = 10.0,
        min_severity: str = "info",
    ) -> None:
        self.name = name
        self.min_severity = min_severity
        self._host, self._port, self._topic = host, port, topic
        self._client_id, self._keepalive_s = client_id, keepalive_s
        self._username, self._password = username, password
        self._connect_timeout_s = connect_timeout_s
        self._publish_timeout_s = publish_timeout_s
        self._client: mqtt.Client | None = None
        self._pending: dict[str, mqtt.MQTTMessageInfo] = {}

    def _connected_client(self) -> mqtt.Client:
        if self._client is None:
            client = mqtt.Client(
                CallbackAPIVersion.VERSION2, client_id=self._client_id, protocol=mqtt.MQTTv311
            )
            if self._username:
                client.username_pw_set(self._username, self._password)
            client.reconnect_delay_set(min_delay=1, max_delay=30)
            client.on_connect = self._on_connect
            client.connect_async(self._host, self._port, self._keepalive_s)
            client.loop_start()
            self._client = client
        return self._client

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        if reason.is_failure:
            _log.error("MQTT notifier %s: broker refused the connection: %s", self.name, reason)

    async def send(self, n: Notification) -> None:
        client = self._connected_client()
        info = self._pending.get(n.key)
        if info is None:
            if not await _wait_for(client.is_connected, self._connect_timeout_s):
                raise NotifyError(True, f"MQTT broker {self._host}:{self._port} not connected")
            info = client.publish(render_topic(self._topic, n), n.to_json(), qos=1)
            if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
                raise NotifyError(True, "MQTT client queue is full")
            self._remember(n.key, info)
        if not await _wait_for(info.is_published, self._publish_timeout_s):
            raise NotifyError(True, f"no PUBACK from {self._host}:{self._port} in time")
        self._pending.pop(n.key, None)

    def _remember(self, key: str, info: mqtt.MQTTMessageInfo) -> None:
        if len(self._pending) >= _MAX_PENDING:  # given-up keys must not pile up forever
            self._pending = {k: i for k, i in self._pending.items() if not i.is_published()}
            if len(self._pending) >= _MAX_PENDING:
                self._pending.clear()
        self._pending[key] = info

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            client.disconnect()
            await asyncio.to_thread(client.loop_stop)  # joins paho's thread
