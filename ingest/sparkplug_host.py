"""Sparkplug B host application (Eclipse Sparkplug 3.0): edge nodes' metrics as measurements.

A thin adapter around `ingest.sparkplug_session` (births, deaths, seq order, aliases) and
`ingest.sparkplug_payload` (the wire), on one paho client built like the JSON collector's
(`ingest.mqtt.new_client`: protocol, login, TLS, manual acknowledgement). Per connection:

1. CONNECT with a clean session, as Sparkplug requires of hosts (edge nodes publish their
   births and data with QoS 0, which no broker queues for an absent session anyway: a
   node replays what the host missed with ``is_historical`` when it watches our STATE, and
   asks nothing of the broker). The Will is our STATE death: ``spBv1.0/STATE/<host id>``,
   ``{"online": false, "timestamp": T}``, QoS 1, retained.
2. Subscribe (QoS 1) to ``spBv1.0/<group>/+/<node>`` and ``spBv1.0/<group>/+/<node>/+`` of
   every configured edge node (all its devices: ``seq`` counts them all) and to our STATE.
3. On the SUBACK, publish the STATE birth ``{"online": true, "timestamp": T}``, QoS 1,
   retained, with the Will's T; then ask the nodes known before a lost connection for a
   rebirth. An ``online: false`` on our STATE no older than T is answered with the birth.

Messages are handled on paho's thread under a lock; their records go to the pipeline
(`Pipeline.submit_from_thread`, blocking while it is full) and a QoS 1 message is
acknowledged once they (or its dead letters) are stored. Reorder timers run on threads of
their own. Nothing raises into paho's thread. ``on_death`` is told (on either thread) the
characteristics an NDEATH, a DDEATH or the host's own lost connection made stale.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from ingest.model import DeadLetter
from ingest.mqtt import MqttOptions, connect_in_background, new_client
from ingest.pipeline import Pipeline, Submission
from ingest.plant import PlantConfig
from ingest.sparkplug_payload import (
    NAMESPACE,
    MetricAddress,
    node_topic,
    parse_state,
    parse_topic,
    payload_text,
    rebirth_command,
    state_payload,
    state_topic,
)
from ingest.sparkplug_session import Ack, Incoming, NodeKey, Outcome, SparkplugSessions

_log = logging.getLogger(__name__)
_RESERVED = frozenset("+/#")


@dataclass(frozen=True)
class SparkplugHostOptions:
    """The host application's identity and timing.

    ``host_id``: our STATE topic level, unique among the hosts on the broker;
    ``reorder_timeout_s``: how long a gap in a node's ``seq`` may stay open before a
    rebirth is requested; ``rebirth_interval_s``: the least time between two rebirth
    requests to one node for data without a birth.
    """

    host_id: str = "spcmon"
    reorder_timeout_s: float = 2.0
    rebirth_interval_s: float = 5.0

    def __post_init__(self) -> None:
        if not self.host_id or _RESERVED & set(self.host_id):
            raise ValueError(f"Sparkplug host_id must be non-empty without + / #: {self.host_id!r}")
        if self.reorder_timeout_s <= 0 or self.rebirth_interval_s <= 0:
            raise ValueError("Sparkplug reorder_timeout_s and rebirth_interval_s must be > 0")


def sparkplug_bindings(plant: PlantConfig) -> dict[MetricAddress, tuple[str, ...]]:
    """Each configured Sparkplug metric and the characteristics it feeds."""
    out: dict[MetricAddress, tuple[str, ...]] = {}
    for _, _, c in plant.iter_characteristics():
        if c.source and c.source.sparkplug:
            s = c.source.sparkplug
            address = MetricAddress(s.group, s.node, s.device, s.metric)
            out[address] = (*out.get(address, ()), c.id)
    return out


def _now_ms() -> int:
    return int(time.time() * 1000)


class SparkplugHost:
    """Subscribes to the configured edge nodes and feeds the pipeline; see the module doc."""

    def __init__(
        self,
        mqtt_options: MqttOptions,
        options: SparkplugHostOptions,
        bindings: Mapping[MetricAddress, Sequence[str]],
        pipeline: Pipeline,
    ) -> None:
        self._mqtt = mqtt_options
        self.options = options
        self._pipeline = pipeline
        self._sessions = SparkplugSessions(bindings, options.rebirth_interval_s)
        self._state_topic = state_topic(options.host_id)
        self._lock = threading.Lock()  # the sessions, the timers, the connection count
        self._timers: dict[NodeKey, threading.Timer] = {}
        self._connection = 0  # counts connections: an older one's acknowledgements are void
        self._subscribing: int | None = None
        self._stopping = False
        self.connected = False
        self.online = False  # our STATE birth is out on this connection
        self.messages_received = 0
        self.rebirths_requested = 0
        self.on_death: Callable[[list[str]], None] | None = None
        self._client = new_client(mqtt_options, persistent=False)
        self._state_ms = self._set_will()
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    @property
    def topics(self) -> list[str]:
        """The subscriptions for data: every configured edge node and its devices."""
        out = []
        for group, node in self._sessions.nodes:
            out += [f"{NAMESPACE}/{group}/+/{node}", f"{NAMESPACE}/{group}/+/{node}/+"]
        return out

    @property
    def dropped(self) -> dict[str, int]:
        """Messages acknowledged with nothing stored, by why: duplicate, stale_death,
        node_death, device_death, nothing_mapped, before_birth, command."""
        with self._lock:
            return dict(self._sessions.dropped)

    def stale_characteristics(self) -> frozenset[str]:
        """Characteristics whose node or device died (or whose broker we lost) since their
        last birth."""
        with self._lock:
            return frozenset(self._sessions.stale)

    def start(self) -> None:
        """Connect in the background; paho reconnects by itself with backoff."""
        self._stopping = False
        connect_in_background(self._client, self._mqtt, persistent=False)
        _log.info("Sparkplug host %r connecting to %s:%d for %d edge nodes",
                  self.options.host_id, self._mqtt.host, self._mqtt.port,
                  len(self._sessions.nodes))  # fmt: skip

    def pause(self) -> None:
        """Stop new deliveries (unsubscribe); acknowledgements still go out."""
        if self.connected and self.topics:
            self._client.unsubscribe(self.topics)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Publish the STATE death, disconnect; call after the pipeline drained."""
        self._stopping = True
        with self._lock:
            for timer in self._timers.values():
                timer.cancel()
            self._timers.clear()
        was_online, self.online = self.online, False  # our own death is no news to answer
        if was_online:
            death = state_payload(False, self._state_ms)
            info = self._client.publish(self._state_topic, death, qos=1, retain=True)
            try:
                info.wait_for_publish(timeout_s)
            except (RuntimeError, ValueError) as exc:
                _log.warning("Sparkplug STATE death not confirmed: %s", exc)
        self._client.disconnect()
        self._client.loop_stop()
        self.connected = self.online = False

    # --- paho callbacks (paho's thread) ----------------------------------------------

    def _set_will(self) -> int:
        """The Will for the next CONNECT; its timestamp is the next STATE birth's too."""
        stamp = _now_ms()
        self._client.will_set(self._state_topic, state_payload(False, stamp), qos=1, retain=True)
        return stamp

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        if reason.is_failure:
            _log.error("MQTT broker refused the Sparkplug host's connection: %s", reason)
            return
        self.connected = True
        with self._lock:
            self._connection += 1
        topics = [(topic, 1) for topic in [*self.topics, self._state_topic]]
        self._subscribing = client.subscribe(topics)[1]

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, codes: list[ReasonCode], props: Any
    ) -> None:
        if mid != self._subscribing:
            return
        refused = [c for c in codes if c.is_failure]
        if refused:
            _log.error("MQTT broker refused Sparkplug subscriptions: %s", refused)
        client.publish(self._state_topic, state_payload(True, self._state_ms), qos=1, retain=True)
        self.online = True
        _log.info("Sparkplug host %r online", self.options.host_id)
        with self._lock:
            outcome = self._sessions.connected(time.monotonic())
        self._apply(outcome)

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        self.connected = self.online = False
        self._state_ms = self._set_will()
        if self._stopping:
            return
        _log.warning("Sparkplug host disconnected: %s", reason)
        try:
            with self._lock:
                outcome = self._sessions.connection_lost()
                for timer in self._timers.values():
                    timer.cancel()
                self._timers.clear()
            self._apply(outcome)
        except Exception:  # never raise into paho's thread
            _log.exception("marking the Sparkplug sessions stale failed")

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self.messages_received += 1
            ack = self._acknowledger(msg.mid, msg.qos)
            data, now = bytes(msg.payload), datetime.now(UTC)
            if msg.topic == self._state_topic:
                self._on_state(data)
                outcome = Outcome(acks=[ack] if ack else [])
            elif (parsed := parse_topic(msg.topic)) is None:
                reason = "topic: not a Sparkplug B node or device topic"
                letter = DeadLetter(now, f"sparkplug:{msg.topic}", reason, payload_text(data))
                outcome = Outcome(submissions=[Submission(dead_letters=[letter], on_stored=ack)])
            else:
                incoming = Incoming(msg.topic, parsed, data, now, ack)
                with self._lock:
                    outcome = self._sessions.handle(incoming, time.monotonic())
            self._apply(outcome)
        except Exception:  # never raise into paho's thread; the message stays unacked
            _log.exception("handling a Sparkplug message on %s failed", msg.topic)

    def _on_state(self, data: bytes) -> None:
        state = parse_state(data)
        if state is not None and not state[0] and state[1] >= self._state_ms and self.online:
            _log.warning("Sparkplug STATE of %r said offline: publishing it online again",
                         self.options.host_id)  # fmt: skip
            birth = state_payload(True, self._state_ms)
            self._client.publish(self._state_topic, birth, qos=1, retain=True)

    def _acknowledger(self, mid: int, qos: int) -> Ack | None:
        if qos == 0:
            return None
        connection = self._connection

        def acknowledge() -> None:
            if connection == self._connection:  # the same mid may mean another message now
                self._client.ack(mid, qos)

        return acknowledge

    # --- doing what the sessions say ---------------------------------------------------

    def _apply(self, outcome: Outcome) -> None:
        if outcome.timer is not None:
            self._start_timer(*outcome.timer)
        for group, node in outcome.rebirths:
            command = rebirth_command(_now_ms())
            self._client.publish(node_topic(group, "NCMD", node), command, qos=0, retain=False)
            self.rebirths_requested += 1
            _log.info("Sparkplug rebirth requested from %s/%s", group, node)
        if outcome.died and self.on_death is not None:
            try:
                self.on_death(outcome.died)
            except Exception:  # data health is advice: ingest goes on
                _log.exception("Sparkplug on_death hook failed")
        for submission in outcome.submissions:
            self._pipeline.submit_from_thread(submission)
        for ack in outcome.acks:
            ack()

    def _start_timer(self, key: NodeKey, generation: int) -> None:
        timer = threading.Timer(self.options.reorder_timeout_s, self._expired, (key, generation))
        timer.daemon = True
        with self._lock:
            old = self._timers.pop(key, None)
            if old is not None:
                old.cancel()
            if self._stopping:
                return
            self._timers[key] = timer
        timer.start()

    def _expired(self, key: NodeKey, generation: int) -> None:
        try:
            with self._lock:
                outcome = self._sessions.reorder_expired(key, generation, time.monotonic())
            if outcome.rebirths:
                _log.warning("Sparkplug seq gap of %s/%s not filled in %.1f s", *key,
                             self.options.reorder_timeout_s)  # fmt: skip
            self._apply(outcome)
        except Exception:
            _log.exception("Sparkplug reorder timeout of %s/%s failed", *key)
