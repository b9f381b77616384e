"""deploy/mosquitto/ in a real mosquitto: the shipped configuration and ACL, with only the
container paths and ports swapped for test ones. Devices log in over TLS, the service on
the internal listener; nobody gets in without a password or sees what the ACL withholds.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
import ssl
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from app.local_broker import free_port, mosquitto_binary, wait_for_port
from tests.deploy.deploy_files import DEPLOY, compose_doc, load_yaml
from tests.deploy.test_examples import STACK_PLANTS, acl_grants, may, mqtt_topics

CONF = DEPLOY / "mosquitto" / "mosquitto.conf"
SERVICE_USER = "spcmon"
TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Broker:
    plain_port: int
    tls_port: int
    ca: Path
    passwords: dict[str, str]


def _write_certificates(folder: Path) -> None:
    """A CA and a server certificate for localhost / 127.0.0.1, as the operator makes them."""
    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "spcmon test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    san = x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(san, critical=False).sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    pem = serialization.Encoding.PEM
    (folder / "ca.crt").write_bytes(ca.public_bytes(pem))
    (folder / "server.crt").write_bytes(server.public_bytes(pem))
    (folder / "server.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def _test_config(secrets: Path, data: Path, plain: int, tls: int) -> str:
    """The shipped configuration with the container's paths and ports replaced; each
    replacement must hit exactly once, so a changed file cannot slip past the test."""
    text = CONF.read_text()
    swaps = {
        "/mosquitto/secrets/": f"{secrets}/",
        "/mosquitto/config/acl": str(DEPLOY / "mosquitto" / "acl"),
        "/mosquitto/data/": f"{data}/",
        "\nlistener 1883\n": f"\nlistener {plain} 127.0.0.1\n",
        "\nlistener 8883\n": f"\nlistener {tls} 127.0.0.1\n",
    }
    settings = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    for line in (line for line in settings if "/mosquitto/" in line):
        assert any(old in line for old in swaps), f"container path not swapped: {line}"
    for old, new in swaps.items():
        expected = 4 if old == "/mosquitto/secrets/" else 1  # passwd, cert, key, CA
        assert text.count(old) == expected, f"{old!r}: expected {expected} in {CONF.name}"
        text = text.replace(old, new)
    return text


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    passwd = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    # not pytest's tmp_path: when we are root, mosquitto drops to its own user and must
    # be able to reach the files
    with tempfile.TemporaryDirectory(prefix="spcmon-mosquitto-") as tmp:
        root = Path(tmp)
        secrets, data = root / "secrets", root / "data"
        secrets.mkdir()
        data.mkdir()
        root.chmod(0o755)
        secrets.chmod(0o755)
        data.chmod(0o777)
        _write_certificates(secrets)
        users = {user: f"pw-{user}" for user in acl_grants()}
        for i, (user, password) in enumerate(users.items()):
            args = [passwd, "-b", *(["-c"] if i == 0 else []), str(secrets / "passwd")]
            subprocess.run([*args, user, password], check=True, capture_output=True, timeout=10)
        for path in secrets.iterdir():
            path.chmod(0o644)
        plain, tls = free_port(), free_port()
        (root / "mosquitto.conf").write_text(_test_config(secrets, data, plain, tls))
        log = (root / "mosquitto.log").open("wb")
        proc = subprocess.Popen([mosquitto_binary(), "-c", str(root / "mosquitto.conf")],
                                stdout=log, stderr=log)  # fmt: skip
        try:
            wait_for_port(plain, "mosquitto (plain)", timeout_s=10)
            wait_for_port(tls, "mosquitto (TLS)", timeout_s=10)
            yield Broker(plain, tls, secrets / "ca.crt", users)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            log.close()


class Client:
    """A paho client that connects, records what it receives, and says how it went."""

    def __init__(self, broker: Broker, user: str | None, tls: bool, password: str = "") -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-{user}-{tls}")
        if user is not None:
            self.client.username_pw_set(user, password or broker.passwords[user])
        if tls:
            self.client.tls_set(ca_certs=str(broker.ca), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.reason: str | None = None
        self.received: list[tuple[str, bytes]] = []
        self.answered, self.subscribed, self.got = (threading.Event() for _ in range(3))
        self.client.on_connect = self._connected
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self.client.on_message = self._message
        self.client.on_disconnect = self._disconnected
        self.port = broker.tls_port if tls else broker.plain_port

    def _connected(self, client: mqtt.Client, userdata: object, flags: object,
                   reason: ReasonCode, props: object) -> None:  # fmt: skip
        self.reason = str(reason)
        self.answered.set()
        if reason.is_failure:
            client.disconnect()  # no reconnection attempts: the test has its answer

    def _disconnected(self, client: mqtt.Client, *args: object) -> None:
        self.answered.set()  # closed without an answer, e.g. plain MQTT on the TLS port
        client.disconnect()  # and no reconnection attempts

    def _message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        self.received.append((msg.topic, bytes(msg.payload)))
        self.got.set()

    def connect(self) -> str | None:
        """The broker's answer ("Success", "Not authorized", ...) or None for no answer."""
        try:
            self.client.connect("localhost", self.port, keepalive=10)
        except (OSError, ssl.SSLError):
            return None
        self.client.loop_start()
        self.answered.wait(TIMEOUT_S)
        return self.reason

    def subscribe(self, topic: str) -> None:
        self.subscribed.clear()
        self.client.subscribe(topic, qos=1)
        assert self.subscribed.wait(TIMEOUT_S)

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(TIMEOUT_S)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def clients(broker: Broker) -> Iterator[list[Client]]:
    made: list[Client] = []
    yield made
    for client in made:
        client.close()


def _connected(broker: Broker, made: list[Client], user: str | None, tls: bool) -> Client:
    client = Client(broker, user, tls)
    made.append(client)
    assert client.connect() == "Success", f"{user} could not log in (tls={tls})"
    return client


def test_the_service_login_matches_the_compose_file() -> None:
    env = compose_doc()["services"]["spcmon"]["environment"]
    assert env["SPCMON_MQTT__USERNAME"] == SERVICE_USER


@pytest.mark.parametrize("path", STACK_PLANTS, ids=lambda p: p.name)
def test_devices_publish_over_tls_and_the_service_receives_on_the_internal_listener(
    broker: Broker, clients: list[Client], path: Path
) -> None:
    service = _connected(broker, clients, SERVICE_USER, tls=False)
    grants = acl_grants()
    for topic in sorted(mqtt_topics(path)):
        service.subscribe(topic)
        writer = next(u for u, g in grants.items() if u != SERVICE_USER and may(g, "write", topic))
        device = _connected(broker, clients, writer, tls=True)
        service.got.clear()
        device.publish(topic, b'{"verdict": "OK"}')
        assert service.got.wait(TIMEOUT_S), f"{topic} from {writer} did not arrive"
        assert service.received[-1] == (topic, b'{"verdict": "OK"}')


def test_the_acl_drops_what_a_device_may_not_publish(broker: Broker, clients: list[Client]) -> None:
    service = _connected(broker, clients, SERVICE_USER, tls=False)
    service.subscribe("plant-north/#")
    camera = _connected(broker, clients, "camera-housing2", tls=True)
    camera.publish("plant-north/shaft1/turning/fake", b"{}")
    allowed = "plant-north/housing2/vision/result"
    camera.publish(allowed, b"{}")  # the broker keeps one client's order: this comes after
    assert service.got.wait(TIMEOUT_S)
    assert [topic for topic, _ in service.received] == [allowed]


def test_andon_boards_read_the_services_notifications(
    broker: Broker, clients: list[Client]
) -> None:
    entry = next(n for n in load_yaml(DEPLOY / "config/notifiers.yaml")["notifiers"]
                 if n["type"] == "mqtt")  # fmt: skip
    topic = entry["topic"].format(line="shaft1", process="turning", kind="incident",
                                  severity="critical")  # fmt: skip
    board = _connected(broker, clients, "andon", tls=True)
    board.subscribe(topic)
    notifier = _connected(broker, clients, entry["username"], tls=False)
    notifier.publish(topic, b'{"kind": "incident"}')
    assert board.got.wait(TIMEOUT_S)


@pytest.mark.parametrize(
    ("user", "password", "tls"),
    [(None, "", False), (None, "", True), (SERVICE_USER, "wrong", True),
     ("camera-housing2", "wrong", False)],
    ids=["anonymous-internal", "anonymous-tls", "bad-password-tls", "bad-password-internal"],
)  # fmt: skip
def test_nobody_logs_in_without_the_right_password(
    broker: Broker, clients: list[Client], user: str | None, password: str, tls: bool
) -> None:
    client = Client(broker, user, tls, password)
    clients.append(client)
    assert client.connect() == "Not authorized"


def test_the_tls_port_refuses_plain_mqtt(broker: Broker, clients: list[Client]) -> None:
    client = Client(broker, SERVICE_USER, tls=False)
    client.port = broker.tls_port
    clients.append(client)
    assert client.connect() != "Success"
