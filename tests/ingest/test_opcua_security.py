"""The OPC UA collector on a secured server: Basic256Sha256 SignAndEncrypt, application
certificates trusted both ways, a user name and password.

A real asyncua server that offers only that endpoint, trusts only the service's
certificate and knows one user; certificates made by asyncua's own generator.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import anyio
import pytest
from asyncua import Server, ua
from asyncua.common.node import Node
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
from asyncua.server.user_managers import UserManager
from cryptography.x509.oid import ExtendedKeyUsageOID

from ingest.opcua import OpcuaCollector, OpcuaSecurity
from ingest.pipeline import Pipeline
from ingest.sqlite_store import SqliteStore
from tests.ingest.pipelines import RecordingEvaluator, running, wait_until
from tests.support.mosquitto import free_port

pytestmark = pytest.mark.anyio

CLIENT_URI = "urn:spcmon:client"
CHAR = "line1.turning.diameter"
USER, PASSWORD = "spcmon", "Kq7-line1"


@dataclass(frozen=True)
class Pki:
    client_cert: Path
    client_key: Path
    server_cert: Path
    server_key: Path
    trusted_servers: Path  # the client's trust list
    trusted_clients: Path  # the server's


async def _certificate(folder: Path, name: str, uri: str, use: Any) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.der", folder / f"{name}.pem"
    await setup_self_signed_certificate(key, cert, uri, "localhost", [use], {"commonName": name})
    return cert, key


@pytest.fixture
async def pki(tmp_path: Path) -> Pki:
    client_cert, client_key = await _certificate(
        tmp_path, "spcmon", CLIENT_URI, ExtendedKeyUsageOID.CLIENT_AUTH
    )
    server_cert, server_key = await _certificate(
        tmp_path, "plc", "urn:test:plc", ExtendedKeyUsageOID.SERVER_AUTH
    )
    servers, clients = tmp_path / "trusted-servers", tmp_path / "trusted-clients"
    for folder, cert in ((servers, server_cert), (clients, client_cert)):
        folder.mkdir()
        (folder / cert.name).write_bytes(cert.read_bytes())
    return Pki(client_cert, client_key, server_cert, server_key, servers, clients)


class _OneUser(UserManager):
    def get_user(
        self, iserver: Any, username: str | None = None, password: str | None = None,
        certificate: Any = None,
    ) -> User | None:  # fmt: skip
        if (username, password) == (USER, PASSWORD):
            return User(role=UserRole.User)
        return None


@asynccontextmanager
async def _secured_plc(pki: Pki) -> AsyncIterator[tuple[str, Node]]:
    """A PLC-like server: one endpoint (Basic256Sha256, SignAndEncrypt), user logins only."""
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/spcmon/secured"
    server = Server(user_manager=_OneUser())
    await server.init()
    await server.set_application_uri("urn:test:plc")  # as in its certificate
    server.set_endpoint(endpoint)
    server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
    server.set_identity_tokens([ua.UserNameIdentityToken])
    await server.load_certificate(str(pki.server_cert))
    await server.load_private_key(str(pki.server_key))
    trust = TrustStore([pki.trusted_clients], [])
    await trust.load()
    server.set_certificate_validator(
        CertificateValidator(
            CertificateValidatorOptions.TIME_RANGE | CertificateValidatorOptions.TRUSTED, trust
        )
    )
    ns = await server.register_namespace("urn:test:plc")
    node = await server.nodes.objects.add_variable(ua.NodeId("Line1/diameter", ns), "d", 25.0)
    async with server:
        yield endpoint, node


def _security(pki: Pki) -> OpcuaSecurity:
    return OpcuaSecurity(
        "Basic256Sha256",
        "SignAndEncrypt",
        str(pki.client_cert),
        str(pki.client_key),
        CLIENT_URI,
        trust_dir=str(pki.trusted_servers),
        username=USER,
        password=PASSWORD,
    )


@asynccontextmanager
async def _collector(
    endpoint: str, node: Node, security: OpcuaSecurity, pipeline: Pipeline
) -> AsyncIterator[OpcuaCollector]:
    bindings = {node.nodeid.to_string(): CHAR}
    collector = OpcuaCollector(endpoint, bindings, pipeline, 20, 10, security)
    collector.start()
    try:
        yield collector
    finally:
        await collector.stop()


async def _stored(store: SqliteStore, value: float) -> bool:
    return any(m.value == value for m in await store.recent_measurements(CHAR, 20))


async def test_only_a_session_both_sides_trust_with_the_right_login_subscribes(
    pki: Pki, sqlite_store: SqliteStore, tmp_path: Path
) -> None:
    """One server (it takes seconds to start) for the good session and every refused one."""
    (tmp_path / "empty").mkdir()
    stranger, stranger_key = await _certificate(
        tmp_path, "stranger", CLIENT_URI, ExtendedKeyUsageOID.CLIENT_AUTH
    )
    good = _security(pki)
    refused = {
        "a wrong password": replace(good, password="wrong"),
        "no security, which the server does not offer": replace(good, policy="None"),
        "the server's certificate is not in our trust list": replace(
            good, trust_dir=str(tmp_path / "empty")
        ),
        "our certificate is not in the server's trust list": replace(
            good, certificate=str(stranger), private_key=str(stranger_key)
        ),
    }
    pipeline = Pipeline(sqlite_store, {CHAR}, RecordingEvaluator())
    async with (
        _secured_plc(pki) as (endpoint, node),
        running(pipeline),
        AsyncExitStack() as stack,
    ):
        tried = {
            why: await stack.enter_async_context(_collector(endpoint, node, sec, pipeline))
            for why, sec in refused.items()
        }
        async with _collector(endpoint, node, good, pipeline) as collector:
            await wait_until(lambda: collector.connected, timeout_s=15, what="the session")
            await node.write_value(25.013)
            await wait_until(lambda: _stored(sqlite_store, 25.013), what="the value")
            await anyio.sleep(1.0)  # the refused ones had longer than that, and retried
        assert {why: c.connected for why, c in tried.items()} == dict.fromkeys(refused, False)
        assert all(c.changes_received == 0 for c in tried.values())


def test_a_policy_without_a_certificate_is_refused() -> None:
    with pytest.raises(ValueError, match="needs the certificate and private_key"):
        OpcuaSecurity("Basic256Sha256")
    with pytest.raises(ValueError, match="policy: expected None or one of"):
        OpcuaSecurity("Basic128Rsa15", certificate="c", private_key="k")
