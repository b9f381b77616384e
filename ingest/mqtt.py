"""MQTT collector (paho-mqtt 2.x): QoS 1, persistent session, acknowledged after storage.

A thin adapter: paho's callbacks run on paho's network thread; they parse with the pure
``parse_payload`` and hand a ``Submission`` to the pipeline, blocking that thread while the
pipeline's queue is full (flow control). ``manual_ack`` is on: the PUBACK is sent only
once the records (or their dead letters) are committed, so a crash before storage makes
the broker redeliver instead of losing the message.

MQTT 3.1.1 keeps the session with ``clean_session=False``; MQTT 5 with ``clean_start``
off and a session expiry of ``SESSION_EXPIRY_S``. TLS (``mqtts://``) verifies the broker
against ``ca_file`` (or the system's CAs) and may present a client certificate; a
username and password go inside the TLS tunnel.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ingest.errors import PayloadError
from ingest.model import DeadLetter
from ingest.mqtt_payload import TopicBinding, parse_payload
from ingest.pipeline import Pipeline, Submission

_log = logging.getLogger(__name__)


SESSION_EXPIRY_S: Final = 7 * 24 * 3600
"""MQTT 5: how long the broker keeps our session (and QoS 1 messages) while we are away."""
PROTOCOLS: Final = {"3.1.1": mqtt.MQTTv311, "5": mqtt.MQTTv5}


class MqttConfigError(ValueError):
    """The broker connection cannot be set up as configured (a TLS file, say)."""


@dataclass(frozen=True)
class MqttTls:
    """TLS towards the broker: ``ca_file`` None trusts the system's CAs; a client
    certificate needs both ``cert_file`` and ``key_file`` (PEM)."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None


@dataclass(frozen=True)
class MqttOptions:
    """Broker connection. ``client_id`` must be stable: it names the persistent session."""

    host: str
    port: int = 1883
    client_id: str = "spcmon"
    username: str | None = None
    password: str | None = None
    keepalive_s: int = 30
    protocol: str = "3.1.1"  # or "5"
    tls: MqttTls | None = None


def check_tls(tls: MqttTls) -> None:
    """Load the CA bundle and the client certificate and key as the collector will.

    Raises ``MqttConfigError`` naming the file that cannot be used and why.
    """
    for name, path in (("ca_file", tls.ca_file), ("cert_file", tls.cert_file)):
        try:
            if name == "ca_file":
                ssl.create_default_context(cafile=path)
            elif path is not None:
                context = ssl.create_default_context()
                context.load_cert_chain(path, tls.key_file)
        except (OSError, ssl.SSLError) as exc:
            what = f"{name} {path}" + (
                f" with key_file {tls.key_file}" if name == "cert_file" else ""
            )
            raise MqttConfigError(f"MQTT TLS {what}: {exc}") from exc


def new_client(options: MqttOptions, *, persistent: bool) -> mqtt.Client:
    """A paho client as configured: protocol, login, TLS, manual acks, reconnect backoff.

    ``persistent``: the broker keeps the session (subscriptions, unacknowledged QoS 1
    messages) while we are away; otherwise each connection starts clean. Raises
    ``MqttConfigError`` for an unknown protocol or TLS files that cannot be loaded.
    """
    if options.protocol not in PROTOCOLS:
        raise MqttConfigError(f"protocol: expected one of {sorted(PROTOCOLS)}, got "
                              f"{options.protocol!r}")  # fmt: skip
    v5 = options.protocol == "5"
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=options.client_id,
        clean_session=None if v5 else not persistent,  # MQTT 5: clean_start on connect
        protocol=PROTOCOLS[options.protocol],
        manual_ack=True,
    )
    if options.username:
        client.username_pw_set(options.username, options.password)
    if options.tls is not None:
        _set_tls(client, options.tls)
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    return client


def connect_in_background(client: mqtt.Client, options: MqttOptions, *, persistent: bool) -> None:
    """Connect and start paho's network thread; paho reconnects by itself with backoff.

    MQTT 5 keeps a persistent session with clean start off and a session expiry of
    ``SESSION_EXPIRY_S``; a clean one with clean start on and no expiry.
    """
    if options.protocol == "5":
        expiry = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        expiry.SessionExpiryInterval = SESSION_EXPIRY_S if persistent else 0
        client.connect_async(
            options.host,
            options.port,
            options.keepalive_s,
            clean_start=not persistent,
            properties=expiry,
        )
    else:
        client.connect_async(options.host, options.port, options.keepalive_s)
    client.loop_start()


def _set_tls(client: mqtt.Client, tls: MqttTls) -> None:
    try:
        client.tls_set(
            ca_certs=tls.ca_file,
            certfile=tls.cert_file,
            keyfile=tls.key_file,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,  # TLS 1.2+, host name checked
        )
    except (OSError, ssl.SSLError) as exc:
        names = "ca_file" if tls.cert_file is None else "ca_file, cert_file or key_file"
        raise MqttConfigError(f"MQTT TLS: cannot load {names}: {exc}") from exc


def covers(general: str, specific: str) -> bool:
    """Whether every topic matching the filter ``specific`` also matches ``general``."""
    g, f = general.split("/"), specific.split("/")
    if f[0].startswith("$") and g[0] in ("+", "#"):
        return False  # wildcards never match a $-topic's first level
    for i, level in enumerate(g):
        if level == "#":
            return True  # the rest, and the parent level itself
        if i >= len(f) or f[i] == "#":
            return False
        if level != "+" and level != f[i]:
            return False  # a literal covers only that literal, never '+'
    return len(g) == len(f)


def _dead_letter(topic: str, payload: bytes, error: PayloadError, now: datetime) -> DeadLetter:
    return DeadLetter(
        received_at=now,
        source=f"mqtt:{topic}",
        reason=str(error),
        payload=payload.decode("utf-8", errors="backslashreplace")[:1_048_576],
    )


class MqttCollector:
    """Subscribes to the configured topics and feeds the pipeline."""

    def __init__(
        self, options: MqttOptions, bindings: Mapping[str, TopicBinding], pipeline: Pipeline
    ) -> None:
        self._options = options
        self._bindings = dict(bindings)
        # the filters with wildcards, tried in turn on a topic with no exact binding
        self._filters = {t: b for t, b in bindings.items() if "+" in t or "#" in t}
        self._pipeline = pipeline
        self.connected = False
        self.messages_received = 0
        self._client = new_client(options, persistent=True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    @property
    def topics(self) -> list[str]:
        return sorted(self._bindings)

    @property
    def subscriptions(self) -> list[str]:
        """The topics and filters subscribed to: those no other one covers. A broker may
        deliver a message once per matching subscription (MQTT 5 does); each message is
        mapped to every binding that matches it anyway."""
        return sorted(
            t for t in self._bindings if not any(covers(o, t) for o in self._bindings if o != t)
        )

    def start(self) -> None:
        """Connect in the background; paho reconnects by itself with backoff."""
        connect_in_background(self._client, self._options, persistent=True)
        _log.info(
            "MQTT %s collector connecting to %s:%d%s for %d topics",
            self._options.protocol,
            self._options.host,
            self._options.port,
            " over TLS" if self._options.tls else "",
            len(self._bindings),
        )

    def pause(self) -> None:
        """Stop new deliveries (unsubscribe); acknowledgements still go out."""
        if self._bindings and self.connected:
            self._client.unsubscribe(self.subscriptions)

    def stop(self) -> None:
        """Disconnect; call after the pipeline drained so queued PUBACKs are sent first."""
        self._client.disconnect()
        self._client.loop_stop()
        self.connected = False

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        if reason.is_failure:
            _log.error("MQTT broker refused the connection: %s", reason)
            return
        self.connected = True
        if self._bindings:
            client.subscribe([(topic, 1) for topic in self.subscriptions])
        _log.info("MQTT connected (session present: %s)", getattr(flags, "session_present", "?"))

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        self.connected = False
        _log.warning("MQTT disconnected: %s", reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self.messages_received += 1
            submission = self.to_submission(msg.topic, bytes(msg.payload), datetime.now(UTC))
            mid, qos = msg.mid, msg.qos

            def acknowledge() -> None:
                client.ack(mid, qos)

            submission.on_stored = acknowledge
            self._pipeline.submit_from_thread(submission)
        except Exception:  # never raise into paho's thread; the message stays unacked
            _log.exception("handling an MQTT message on %s failed", msg.topic)

    def to_submission(self, topic: str, payload: bytes, now: datetime) -> Submission:
        """Map one message to a pipeline submission (records and dead letters).

        Every configured topic and topic filter that matches ``topic`` contributes its
        fields; a characteristic two filters both give is taken once.
        """
        bindings = self._matching(topic)
        if not bindings:
            error = PayloadError("topic", f"no characteristic is configured for {topic!r}")
            return Submission(dead_letters=[_dead_letter(topic, payload, error, now)])
        out = Submission()
        taken: set[str] = set()
        for binding in bindings:
            try:
                parsed = parse_payload(binding, payload, now, topic)
            except PayloadError as exc:  # the message as a whole: once is enough
                return Submission(dead_letters=[_dead_letter(topic, payload, exc, now)])
            fresh = [m for m in parsed.measurements if m.characteristic not in taken]
            taken.update(m.characteristic for m in fresh)
            out.measurements += fresh
            out.verdicts += parsed.verdicts
            out.dead_letters += [_dead_letter(topic, payload, p, now) for p in parsed.problems]
        return out

    def _matching(self, topic: str) -> list[TopicBinding]:
        """The bindings whose topic is ``topic`` or a filter matching it, exact first."""
        exact = self._bindings.get(topic)
        found = [exact] if exact is not None else []
        return found + [
            binding
            for pattern, binding in self._filters.items()
            if pattern != topic and mqtt.topic_matches_sub(pattern, topic)
        ]
