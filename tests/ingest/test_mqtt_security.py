"""The MQTT collector over TLS, with client certificates, with a login, and on MQTT 5.

Real mosquitto brokers configured for each case (TLS listener with a throwaway CA,
``require_certificate``, a password file made by ``mosquitto_passwd``); real paho clients.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.to_thread
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ingest.mqtt import MqttCollector, MqttConfigError, MqttOptions, MqttTls, check_tls
from ingest.mqtt_payload import TopicBinding
from ingest.pipeline import Pipeline
from ingest.sqlite_store import SqliteStore
from tests.ingest.pipelines import RecordingEvaluator, running, wait_until
from tests.support.mosquitto import Broker, running_mosquitto
from tests.support.tls import Pki, make_pki

pytestmark = pytest.mark.anyio

TOPIC = "plant/line1/turning/diameter"
BINDINGS = {TOPIC: TopicBinding(TOPIC, (("value", "line1.turning.diameter"),))}
KNOWN = frozenset({"line1.turning.diameter"})


@pytest.fixture
def readable_dir() -> Iterator[Path]:
    """A directory mosquitto can read after dropping root (pytest's tmp_path is 0700)."""
    with tempfile.TemporaryDirectory(prefix="spcmon-mqtt-") as tmp:
        Path(tmp).chmod(0o755)
        yield Path(tmp)


@pytest.fixture
def pki(readable_dir: Path) -> Pki:
    return make_pki(readable_dir / "pki")


def _tls_listener(pki: Pki, client_cert: bool) -> str:
    lines = [f"cafile {pki.ca}", f"certfile {pki.server_cert}", f"keyfile {pki.server_key}"]
    if client_cert:
        lines += ["require_certificate true", "use_identity_as_username true"]
    return "\n".join(lines)


@pytest.fixture
def tls_broker(tmp_path: Path, pki: Pki) -> Iterator[Broker]:
    with running_mosquitto(tmp_path / "tls", listener_options=_tls_listener(pki, False)) as b:
        yield b


def _publisher(
    broker: Broker, tls: MqttTls | None, login: tuple[str, str] | None, protocol: int
) -> mqtt.Client:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}", protocol=protocol
    )
    if tls is not None:
        client.tls_set(tls.ca_file, tls.cert_file, tls.key_file)
    if login is not None:
        client.username_pw_set(*login)
    return client


def _publish_blocking(
    broker: Broker,
    values: list[float],
    tls: MqttTls | None = None,
    login: tuple[str, str] | None = None,
    protocol: int = mqtt.MQTTv311,
) -> None:
    client = _publisher(broker, tls, login, protocol)
    client.connect(broker.host, broker.port, keepalive=10)
    client.loop_start()
    try:
        for v in values:
            payload = json.dumps({"value": v}).encode()
            client.publish(TOPIC, payload, qos=1).wait_for_publish(timeout=5)
    finally:
        client.disconnect()
        client.loop_stop()


@asynccontextmanager
async def _collector(options: MqttOptions, pipeline: Pipeline) -> AsyncIterator[MqttCollector]:
    collector = MqttCollector(options, BINDINGS, pipeline)
    collector.start()
    try:
        yield collector
    finally:
        await anyio.to_thread.run_sync(collector.stop)


async def _stores_what_is_published(
    broker: Broker,
    options: MqttOptions,
    store: SqliteStore,
    tls: MqttTls | None = None,
    login: tuple[str, str] | None = None,
) -> None:
    pipeline = Pipeline(store, KNOWN, RecordingEvaluator())
    async with running(pipeline), _collector(options, pipeline) as collector:
        await wait_until(lambda: collector.connected, what="the collector to connect")
        await anyio.sleep(0.3)  # the SUBACK: subscriptions are sent on connect
        await anyio.to_thread.run_sync(_publish_blocking, broker, [25.01, 25.02], tls, login)
        await wait_until(lambda: store.count_measurements(), what="the measurements to be stored")
        await pipeline.drain()
    assert await store.count_measurements() == 2


async def test_the_collector_verifies_the_broker_and_stores_over_tls(
    tls_broker: Broker, pki: Pki, sqlite_store: SqliteStore
) -> None:
    tls = MqttTls(str(pki.ca))
    options = MqttOptions(tls_broker.host, tls_broker.port, client_id="spcmon-tls", tls=tls)
    await _stores_what_is_published(tls_broker, options, sqlite_store, tls)


# paho leaves the socket of a failed TLS handshake to the garbage collector (its retry
# loop opens a new one): the ResourceWarning is paho's, not a leak of ours
PAHO_HANDSHAKE_LEAK = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@PAHO_HANDSHAKE_LEAK
async def test_a_broker_signed_by_another_ca_is_not_trusted(
    tls_broker: Broker, tmp_path: Path, sqlite_store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    stranger = make_pki(tmp_path / "other", ca_name="someone else")
    options = MqttOptions(
        tls_broker.host, tls_broker.port, client_id="spcmon-x", tls=MqttTls(str(stranger.ca))
    )
    pipeline = Pipeline(sqlite_store, KNOWN, RecordingEvaluator())
    async with running(pipeline), _collector(options, pipeline) as collector:
        await anyio.sleep(2.0)  # paho retries; none of its attempts may get through
        assert not collector.connected


@PAHO_HANDSHAKE_LEAK
async def test_a_broker_that_requires_a_client_certificate_takes_ours(
    tmp_path: Path, pki: Pki, sqlite_store: SqliteStore
) -> None:
    listener = _tls_listener(pki, client_cert=True)
    with running_mosquitto(tmp_path / "mtls", listener_options=listener) as broker:
        tls = MqttTls(str(pki.ca), str(pki.client_cert), str(pki.client_key))
        options = MqttOptions(broker.host, broker.port, client_id="spcmon-mtls", tls=tls)
        await _stores_what_is_published(broker, options, sqlite_store, tls)

        without = MqttOptions(broker.host, broker.port, client_id="spcmon-no-cert",
                              tls=MqttTls(str(pki.ca)))  # fmt: skip
        pipeline = Pipeline(sqlite_store, KNOWN, RecordingEvaluator())
        async with running(pipeline), _collector(without, pipeline) as refused:
            await anyio.sleep(1.5)
            assert not refused.connected


async def test_a_login_is_required_and_a_wrong_password_refused(
    tmp_path: Path, readable_dir: Path, sqlite_store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    passwords = readable_dir / "passwd"
    command = ["mosquitto_passwd", "-b", "-c", str(passwords), "spcmon", "s3cret-line1"]
    await anyio.to_thread.run_sync(lambda: subprocess.run(command, check=True))
    passwords.chmod(0o644)
    with running_mosquitto(
        tmp_path / "auth", listener_options=f"password_file {passwords}", anonymous=False
    ) as broker:
        good = MqttOptions(broker.host, broker.port, "spcmon-auth", "spcmon", "s3cret-line1")
        await _stores_what_is_published(
            broker, good, sqlite_store, login=("spcmon", "s3cret-line1")
        )
        bad = MqttOptions(broker.host, broker.port, "spcmon-bad", "spcmon", "wrong")
        pipeline = Pipeline(sqlite_store, KNOWN, RecordingEvaluator())
        async with running(pipeline), _collector(bad, pipeline) as refused:
            await wait_until(
                lambda: "MQTT broker refused the connection" in caplog.text,
                what="the refusal to be logged",
            )
            assert not refused.connected


async def test_mqtt_5_keeps_the_session_while_the_collector_is_away(
    mosquitto: Broker, sqlite_store: SqliteStore
) -> None:
    options = MqttOptions(mosquitto.host, mosquitto.port, client_id="spcmon-v5", protocol="5")
    pipeline = Pipeline(sqlite_store, KNOWN, RecordingEvaluator())
    async with running(pipeline):
        async with _collector(options, pipeline) as first:
            await wait_until(lambda: first.connected, what="the first session")
            await anyio.sleep(0.3)  # subscribed
        # published while nobody is connected: the broker keeps them for our session
        await anyio.to_thread.run_sync(
            lambda: _publish_blocking(mosquitto, [25.0, 25.1, 25.2], protocol=mqtt.MQTTv5)
        )
        async with _collector(options, pipeline) as second:
            await wait_until(lambda: second.connected, what="the second session")
            await wait_until(lambda: _count_at_least(sqlite_store, 3), what="the kept messages")
            await pipeline.drain()
    assert await sqlite_store.count_measurements() == 3


async def _count_at_least(store: SqliteStore, n: int) -> bool:
    return await store.count_measurements() >= n


def test_an_unreadable_certificate_is_named(tmp_path: Path, pki: Pki) -> None:
    check_tls(MqttTls(str(pki.ca), str(pki.client_cert), str(pki.client_key)))  # fine
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(MqttConfigError, match=r"ca_file .*junk\.pem"):
        check_tls(MqttTls(str(junk)))
    with pytest.raises(MqttConfigError, match=r"cert_file .*client\.pem with key_file .*server"):
        check_tls(MqttTls(str(pki.ca), str(pki.client_cert), str(pki.server_key)))
    with pytest.raises(MqttConfigError, match="protocol"):
        MqttCollector(MqttOptions("127.0.0.1", protocol="4"), BINDINGS, None)  # type: ignore[arg-type]


def test_settings_name_each_tls_mistake(tmp_path: Path, pki: Pki) -> None:
    from pydantic import ValidationError

    from app.settings import MqttSettings

    good = MqttSettings(url="mqtts://broker", ca_file=pki.ca, cert_file=pki.client_cert,
                        key_file=pki.client_key)  # fmt: skip
    assert (good.tls, good.host_port) == (True, ("broker", 8883))
    assert MqttSettings(url="mqtt://broker").host_port == ("broker", 1883)
    cases = [
        ({"url": "mqtt://broker", "ca_file": pki.ca}, "SPCMON_MQTT__CA_FILE: TLS files need an "
                                                      "mqtts:// SPCMON_MQTT__URL"),
        ({"url": "mqtts://broker", "cert_file": pki.client_cert}, "set both"),
        ({"url": "mqtts://broker", "ca_file": tmp_path / "nope.pem"}, "no such file"),
        ({"url": "ssl://broker"}, "expected mqtt://host[:port] or mqtts://host[:port]"),
        ({"url": "mqtt://broker", "protocol": "4"}, "'3.1.1' or '5'"),
    ]  # fmt: skip
    for fields, message in cases:
        with pytest.raises(ValidationError, match=re.escape(message)):
            MqttSettings(**fields)


def test_serve_refuses_a_ca_file_that_is_no_certificate(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    demo_config_path: Path,
) -> None:
    from app.cli import main

    junk = tmp_path / "ca.pem"
    junk.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n")
    monkeypatch.setenv("SPCMON_MQTT__URL", "mqtts://broker.plant.local")
    monkeypatch.setenv("SPCMON_MQTT__CA_FILE", str(junk))
    assert main(["serve", "--config", str(demo_config_path), "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert f"cannot start: MQTT TLS ca_file {junk}" in err
    assert "Traceback" not in err
