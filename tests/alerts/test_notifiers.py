"""Each notifier against a real local receiver: HTTP server, aiosmtpd, mosquitto."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import anyio
import paho.mqtt.client as mqtt
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from paho.mqtt.enums import CallbackAPIVersion

from alerts.notify import (
    DingTalkNotifier,
    EmailNotifier,
    MqttNotifier,
    NotifyError,
    WebhookNotifier,
    WeComNotifier,
)
from alerts.notify.dingtalk import dingtalk_sign
from alerts.notify.mqtt import render_topic
from tests.alerts.notify_support import SAMPLE, running_receiver, sample
from tests.ingest.pipelines import wait_until
from tests.support.mosquitto import Broker, free_port, running_mosquitto

pytestmark = pytest.mark.anyio
SECRET = "webhook-shared-secret"


async def test_webhook_posts_the_notification_json_signed_with_hmac() -> None:
    with running_receiver(free_port(), default=(204, b"")) as receiver:
        notifier = WebhookNotifier("mes", receiver.url, SECRET)
        await notifier.send(SAMPLE)
        await notifier.aclose()
    [request] = receiver.requests
    assert request.json() == {
        "kind": "incident_opened",
        "severity": "critical",
        "title": SAMPLE.title,
        "text": SAMPLE.text,
        "at": "2025-03-14T08:05:00Z",
        "key": "incident-42-opened",
        "line": "line1",
        "process": "line1.turning",
        "characteristics": ["line1.turning.diameter"],
        "incident_id": 42,
        "url": "http://spcmon.local/incidents/42",
        "data": {"rule": 1, "value": 10.31},
    }
    headers = request.headers
    assert headers["content-type"].startswith("application/json")
    assert headers["idempotency-key"] == "incident-42-opened"
    timestamp = headers["x-spcmon-timestamp"]
    assert abs(int(timestamp) - time.time()) < 60
    signed = f"{timestamp}.".encode() + request.body
    expected = hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-spcmon-signature"], f"sha256={expected}")


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(503, True), (500, True), (429, True), (400, False), (401, False), (404, False)],
)
async def test_webhook_statuses_map_to_retryable_or_not(status: int, retryable: bool) -> None:
    with running_receiver(free_port(), default=(status, b"nope")) as receiver:
        notifier = WebhookNotifier("mes", receiver.url, SECRET)
        with pytest.raises(NotifyError, match=f"HTTP {status}") as caught:
            await notifier.send(SAMPLE)
        await notifier.aclose()
    assert caught.value.retryable is retryable


async def test_webhook_to_a_closed_port_is_a_retryable_error() -> None:
    notifier = WebhookNotifier("mes", f"http://127.0.0.1:{free_port()}/hook", SECRET)
    with pytest.raises(NotifyError) as caught:
        await notifier.send(SAMPLE)
    await notifier.aclose()
    assert caught.value.retryable


async def test_dingtalk_posts_markdown_with_token_timestamp_and_sign() -> None:
    with running_receiver(free_port()) as receiver:
        url = f"http://127.0.0.1:{receiver.port}/robot/send"
        notifier = DingTalkNotifier("line1-group", "tok123", secret="SECabc+/=", url=url)
        await notifier.send(SAMPLE)
        await notifier.aclose()
    [request] = receiver.requests
    assert request.path == "/robot/send"
    assert request.query["access_token"] == "tok123"
    timestamp = int(request.query["timestamp"])
    assert abs(timestamp - time.time() * 1000) < 60_000
    expected = base64.b64encode(
        hmac.new(b"SECabc+/=", f"{timestamp}\nSECabc+/=".encode(), hashlib.sha256).digest()
    ).decode()
    assert request.query["sign"] == expected == dingtalk_sign("SECabc+/=", timestamp)
    body = request.json()
    assert body["msgtype"] == "markdown"
    assert body["markdown"]["title"] == f"[spcmon critical] {SAMPLE.title}"
    text = body["markdown"]["text"]
    for part in (SAMPLE.title, "critical", "line1.turning.diameter", "检查刀具磨损", SAMPLE.url):
        assert part in text


async def test_dingtalk_without_a_secret_sends_no_sign() -> None:
    with running_receiver(free_port()) as receiver:
        url = f"http://127.0.0.1:{receiver.port}/robot/send"
        notifier = DingTalkNotifier("g", "tok", url=url)
        await notifier.send(SAMPLE)
        await notifier.aclose()
    assert receiver.requests[0].query == {"access_token": "tok"}


@pytest.mark.parametrize(
    ("make", "errcode", "retryable"),
    [
        ("dingtalk", 130101, True),
        ("dingtalk", 310000, False),
        ("wecom", 45009, True),
        ("wecom", 93000, False),
    ],
)
async def test_robot_errcodes_map_to_retryable_or_not(
    make: str, errcode: int, retryable: bool
) -> None:
    answer = json.dumps({"errcode": errcode, "errmsg": "refused"}).encode()
    with running_receiver(free_port(), default=(200, answer)) as receiver:
        url = f"http://127.0.0.1:{receiver.port}/send"
        notifier: Any = (
            DingTalkNotifier("g", "tok", url=url)
            if make == "dingtalk"
            else WeComNotifier("g", "k", url=url)
        )
        with pytest.raises(NotifyError, match=f"errcode {errcode}") as caught:
            await notifier.send(SAMPLE)
        await notifier.aclose()
    assert caught.value.retryable is retryable


async def test_wecom_posts_markdown_content_with_the_key() -> None:
    with running_receiver(free_port()) as receiver:
        url = f"http://127.0.0.1:{receiver.port}/cgi-bin/webhook/send"
        notifier = WeComNotifier("line1-wecom", "key-1", url=url)
        await notifier.send(sample(text="很长的说明 " * 2000))
        await notifier.aclose()
    [request] = receiver.requests
    assert request.path == "/cgi-bin/webhook/send"
    assert request.query == {"key": "key-1"}
    body = request.json()
    assert body["msgtype"] == "markdown"
    content = body["markdown"]["content"]
    assert content.startswith(f"### {SAMPLE.title}")
    assert '<font color="warning">' in content
    assert len(content.encode()) <= 4096  # WeCom's limit; the long text was cut


class _SmtpSink:
    """aiosmtpd handler (its hook names are fixed: handle_<VERB>)."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_RCPT(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.envelopes.append(envelope)
        return "250 Message accepted"


def _authenticate(
    server: Any, session: Any, envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"spcmon", b"pw")
    return AuthResult(success=ok, handled=False)


@contextmanager
def _smtp_server() -> Iterator[tuple[_SmtpSink, int]]:
    sink, port = _SmtpSink(), free_port()
    controller = Controller(
        sink,
        hostname="127.0.0.1",
        port=port,
        authenticator=_authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


async def test_email_is_received_by_a_real_smtp_server_with_subject_and_body() -> None:
    with _smtp_server() as (sink, port):
        notifier = EmailNotifier(
            "quality-mail",
            "127.0.0.1",
            "spcmon@plant.example",
            ["qe@plant.example", "lead@plant.example"],
            port=port,
            security="none",
            username="spcmon",
            password="pw",
        )
        await notifier.send(SAMPLE)
        await notifier.aclose()
    [envelope] = sink.envelopes
    assert envelope.mail_from == "spcmon@plant.example"
    assert envelope.rcpt_tos == ["qe@plant.example", "lead@plant.example"]
    message = message_from_bytes(envelope.original_content)
    assert (
        str(make_header(decode_header(message["Subject"]))) == f"[spcmon critical] {SAMPLE.title}"
    )
    assert message["X-Spcmon-Key"] == "incident-42-opened"
    body = message.get_payload(decode=True).decode(message.get_content_charset())
    assert "检查刀具磨损" in body
    assert "Characteristics: line1.turning.diameter" in body
    assert "http://spcmon.local/incidents/42" in body


async def test_email_failures_are_retryable_when_transient_only() -> None:
    down = EmailNotifier(
        "m", "127.0.0.1", "a@b.example", ["c@d.example"], port=free_port(), security="none"
    )
    with pytest.raises(NotifyError) as caught:
        await down.send(SAMPLE)
    assert caught.value.retryable
    with _smtp_server() as (_, port):
        refused = EmailNotifier(
            "m", "127.0.0.1", "a@b.example", ["nobody@d.example"], port=port, security="none"
        )
        with pytest.raises(NotifyError, match="refused") as caught:
            await refused.send(SAMPLE)
        assert not caught.value.retryable
        bad_login = EmailNotifier(
            "m",
            "127.0.0.1",
            "a@b.example",
            ["c@d.example"],
            port=port,
            security="none",
            username="spcmon",
            password="wrong",
        )
        with pytest.raises(NotifyError, match="535") as caught:
            await bad_login.send(SAMPLE)
        assert not caught.value.retryable


@contextmanager
def _subscriber(broker: Broker, topic: str) -> Iterator[list[mqtt.MQTTMessage]]:
    received: list[mqtt.MQTTMessage] = []
    subscribed = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"andon-{uuid.uuid4().hex[:8]}")
    client.on_message = lambda c, u, msg: received.append(msg)
    client.on_subscribe = lambda *args: subscribed.append(True)
    client.connect(broker.host, broker.port)
    client.subscribe(topic, qos=1)
    client.loop_start()
    deadline = time.monotonic() + 5
    while not subscribed and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield received
    finally:
        client.disconnect()
        client.loop_stop()


async def test_mqtt_subscriber_receives_the_notification_json(mosquitto: Broker) -> None:
    with _subscriber(mosquitto, "spcmon/andon/#") as received:
        notifier = MqttNotifier("andon", mosquitto.host, port=mosquitto.port, client_id="t-andon")
        await notifier.send(SAMPLE)
        await notifier.send(sample(key="incident-42-resolved", kind="incident_resolved"))
        await wait_until(lambda: len(received) == 2, what="two MQTT messages")
        await notifier.aclose()
    assert [m.topic for m in received] == ["spcmon/andon/line1"] * 2
    assert received[0].qos == 1
    assert json.loads(received[0].payload) == SAMPLE.to_dict()
    assert json.loads(received[1].payload)["kind"] == "incident_resolved"


def test_mqtt_topic_template_fills_fields_and_keeps_levels() -> None:
    n = sample(line="hall/2+#", process=None)
    assert render_topic("spcmon/andon/{line}", SAMPLE) == "spcmon/andon/line1"
    assert render_topic("a/{line}/{process}/{severity}/{kind}", n) == (
        "a/hall_2__/plant/critical/incident_opened"
    )


async def test_mqtt_broker_down_is_retryable_and_coming_back_delivers(tmp_path: Path) -> None:
    port = free_port()
    notifier = MqttNotifier("andon", "127.0.0.1", port=port, connect_timeout_s=0.2)
    with pytest.raises(NotifyError, match="not connected") as caught:
        await notifier.send(SAMPLE)
    assert caught.value.retryable
    with (
        running_mosquitto(tmp_path / "mosquitto", port=port) as broker,
        _subscriber(broker, "spcmon/#") as received,
    ):
        deadline = time.monotonic() + 5  # paho reconnects by itself (1 s backoff)
        while True:
            try:
                await notifier.send(SAMPLE)
                break
            except NotifyError:
                assert time.monotonic() < deadline, "the notifier never reconnected"
                await anyio.sleep(0.1)
        await wait_until(lambda: len(received) == 1, what="the MQTT message")
        await notifier.aclose()
