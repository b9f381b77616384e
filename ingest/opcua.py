"""OPC UA collector (asyncua client): data-change subscriptions on the configured nodes.

Each data change becomes one measurement with the server's source timestamp; values with
a non-Good status are stored flagged (``quality``) and are not charted. The identity of a
reading is (endpoint, node, source timestamp), so the initial values re-sent after a
reconnect are recognised as already stored. The collector reconnects and re-subscribes
by itself with backoff.

Security (``OpcuaSecurity``): a security policy (Basic256Sha256 or the newer Aes
policies) in Sign or SignAndEncrypt mode with the service's application certificate and
key; the server's certificate is checked against a trust list (a folder of trusted
certificates) and/or pinned; a user name and password are sent as the identity. Without
a policy the connection is anonymous and unencrypted (OPC UA SecurityPolicy None).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.crypto import security_policies
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions

from ingest.errors import InvalidRecord
from ingest.model import DeadLetter, Measurement, Quality
from ingest.pipeline import Pipeline, Submission

_log = logging.getLogger(__name__)
BACKOFF_S = (0.25, 0.5, 1.0, 2.0, 5.0)

POLICIES: Final[dict[str, type[security_policies.SecurityPolicy]]] = {
    "Basic256Sha256": security_policies.SecurityPolicyBasic256Sha256,
    "Aes128_Sha256_RsaOaep": security_policies.SecurityPolicyAes128Sha256RsaOaep,
    "Aes256_Sha256_RsaPss": security_policies.SecurityPolicyAes256Sha256RsaPss,
}
MODES: Final = {
    "Sign": ua.MessageSecurityMode.Sign,
    "SignAndEncrypt": ua.MessageSecurityMode.SignAndEncrypt,
}


@dataclass(frozen=True)
class OpcuaSecurity:
    """How the collector secures its sessions (``policy`` "None": no security at all).

    ``certificate``/``private_key``: the service's application instance certificate (DER
    or PEM) whose SubjectAltName URI is ``application_uri``; ``trust_dir``: trusted server
    certificates (the server's must be among them); ``server_certificate``: pin one.
    """

    policy: str = "None"
    mode: str = "SignAndEncrypt"
    certificate: str | None = None
    private_key: str | None = None
    application_uri: str = "urn:spcmon:client"
    trust_dir: str | None = None
    server_certificate: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.policy != "None" and self.policy not in POLICIES:
            raise ValueError(f"policy: expected None or one of {sorted(POLICIES)}, got "
                             f"{self.policy!r}")  # fmt: skip
        if self.mode not in MODES:
            raise ValueError(f"mode: expected one of {sorted(MODES)}, got {self.mode!r}")
        if self.policy != "None" and (self.certificate is None or self.private_key is None):
            raise ValueError(f"policy {self.policy} needs the certificate and private_key")
        if self.policy != "None" and self.trust_dir is None and self.server_certificate is None:
            raise ValueError(
                f"policy {self.policy} needs a trust_dir or a server_certificate: without "
                "them any server would be trusted (and sent the login)"
            )


def quality_of(status: ua.StatusCode | None) -> Quality:
    """Map an OPC UA status code to the model's quality (Good / Uncertain / Bad class)."""
    if status is None or status.is_good():
        return Quality.GOOD
    if status.is_uncertain():
        return Quality.UNCERTAIN
    return Quality.BAD


def to_submission(
    endpoint: str, node_id: str, characteristic: str, value: Any, dv: ua.DataValue, now: datetime
) -> Submission:
    """Map one data change to a pipeline submission (a measurement or a dead letter)."""
    when = dv.SourceTimestamp or dv.ServerTimestamp or now
    if when.tzinfo is None:  # asyncua returns naive UTC datetimes
        when = when.replace(tzinfo=UTC)
    source = f"opcua:{node_id}"
    try:
        status = dv.StatusCode
        if value is None and status is not None and not status.is_good():
            # OPC UA Part 4, 7.7.1: a server nulls the value of a Bad data change
            raise InvalidRecord("value", f"none sent, status {status.name}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidRecord("value", f"node value must be numeric, got {type(value).__name__}")
        if not math.isfinite(value):
            raise InvalidRecord("value", f"must be finite, got {value}")
        key = hashlib.sha256(f"{endpoint}|{node_id}|{when.isoformat()}".encode()).hexdigest()
        measurement = Measurement(
            when, characteristic, float(value), key[:32], source, quality=quality_of(dv.StatusCode)
        )
    except InvalidRecord as exc:
        letter = DeadLetter(now, source, str(exc), repr(value)[:1000])
        return Submission(dead_letters=[letter])
    return Submission(measurements=[measurement])


async def secured_client(endpoint: str, security: OpcuaSecurity, timeout_s: float = 4.0) -> Client:
    """An asyncua client set up with ``security`` (not connected yet)."""
    client = Client(url=endpoint, timeout=timeout_s)
    client.application_uri = security.application_uri
    if security.policy != "None":
        await client.set_security(
            POLICIES[security.policy],
            security.certificate or "",  # both set: OpcuaSecurity.__post_init__
            security.private_key or "",
            server_certificate=security.server_certificate,
            mode=MODES[security.mode],
        )
        if security.trust_dir is not None:
            trust = TrustStore([Path(security.trust_dir)], [])
            # read again at each connection (a certificate added to the folder counts
            # without a restart); shielded: a stop that cancels us mid-read must not
            # cancel the read itself, which would leave its file open
            await asyncio.shield(trust.load())
            client.certificate_validator = CertificateValidator(
                CertificateValidatorOptions.TIME_RANGE
                | CertificateValidatorOptions.TRUSTED
                | CertificateValidatorOptions.PEER_SERVER,
                trust,
            )
    if security.username is not None:
        client.set_user(security.username)
        client.set_password(security.password or "")
    return client


class _Handler:
    def __init__(self, collector: OpcuaCollector) -> None:
        self._collector = collector

    async def datachange_notification(self, node: Node, val: Any, data: Any) -> None:
        await self._collector.on_change(node, val, data.monitored_item.Value)

    def status_change_notification(self, status: Any) -> None:
        _log.warning("OPC UA subscription status changed: %s", status)


class OpcuaCollector:
    """Subscribes to nodes on one server and feeds the pipeline."""

    def __init__(
        self,
        endpoint: str,
        bindings: Mapping[str, str],
        pipeline: Pipeline,
        publishing_interval_ms: int = 100,
        queue_size: int = 100,
        security: OpcuaSecurity | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._security = security or OpcuaSecurity()
        self._bindings = dict(bindings)  # node id string -> characteristic id
        self._pipeline = pipeline
        self._interval_ms = publishing_interval_ms
        self._queue_size = queue_size
        self._node_names: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None
        self.connected = False
        self.changes_received = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"opcua:{self.endpoint}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.connected = False

    async def on_change(self, node: Node, value: Any, dv: ua.DataValue) -> None:
        self.changes_received += 1
        node_id = self._node_names.get(node.nodeid.to_string(), node.nodeid.to_string())
        characteristic = self._bindings.get(node_id)
        if characteristic is None:
            _log.warning("data change for unbound node %s ignored", node_id)
            return
        await self._pipeline.submit(
            to_submission(self.endpoint, node_id, characteristic, value, dv, datetime.now(UTC))
        )

    async def _run(self) -> None:
        attempt = 0
        while True:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: drop the session and reconnect
                self.connected = False
                delay = BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]
                _log.warning("OPC UA %s: %s; reconnecting in %.1f s", self.endpoint, exc, delay)
                attempt += 1
                await asyncio.sleep(delay)
            else:
                attempt = 0

    async def _session(self) -> None:
        client = await secured_client(self.endpoint, self._security)
        async with client:
            nodes = []
            for node_id in self._bindings:
                node = client.get_node(node_id)
                self._node_names[node.nodeid.to_string()] = node_id
                nodes.append(node)
            subscription = await client.create_subscription(self._interval_ms, _Handler(self))
            await subscription.subscribe_data_change(nodes, queuesize=self._queue_size)
            self.connected = True
            _log.info("OPC UA subscribed to %d nodes on %s", len(nodes), self.endpoint)
            while True:
                await asyncio.sleep(1.0)
                await client.check_connection()
