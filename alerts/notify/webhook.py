"""Generic webhook: the notification as JSON, HMAC-signed.

Wire format (one POST per notification)::

    POST <url>
    Content-Type: application/json; charset=utf-8
    Idempotency-Key: <notification key>
    X-Spcmon-Timestamp: <unix seconds, integer>
    X-Spcmon-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>

    {"kind": ..., "severity": ..., "title": ..., "text": ..., "at": "2025-03-14T08:00:00Z",
     "key": ..., "line": ..., "process": ..., "characteristics": [...],
     "incident_id": ..., "url": ..., "data": {...}}

How a receiver verifies: take the raw body bytes as received (before any JSON parsing),
compute ``hmac.new(secret, f"{timestamp}.".encode() + body, sha256).hexdigest()``,
compare it with the header's hex part using a constant-time comparison
(``hmac.compare_digest``), and reject timestamps too far from its own clock (e.g. more
than 5 minutes) so a captured request cannot be replayed later. Retries carry a fresh
timestamp and signature but the same ``Idempotency-Key``: store the keys seen and drop
repeats. Answer 2xx when accepted; 5xx or 429 make spcmon retry, other 4xx do not.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

from alerts.notify._http import new_client, post
from alerts.notify.model import Notification

SIGNATURE_HEADER = "X-Spcmon-Signature"
TIMESTAMP_HEADER = "X-Spcmon-Timestamp"


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The ``X-Spcmon-Signature`` value: ``sha256=`` and the hex HMAC of ``"<ts>.<body>"``."""
    digest = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class WebhookNotifier:
    """POSTs each notification to ``url``, signed with ``secret``.

    ``timeout_s`` bounds one attempt (connect + write + read, seconds); ``clock`` gives
    unix seconds (tests pin it).
    """

    def __init__(
        self,
        name: str,
        url: str,
        secret: str,
        *,
        min_severity: str = "info",
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.min_severity = min_severity
        self._url = url
        self._secret = secret.encode("utf-8")
        self._clock = clock
        self._client = new_client(timeout_s)

    async def send(self, n: Notification) -> None:
        body = n.to_json()
        timestamp = int(self._clock())
        headers = {
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(self._secret, timestamp, body),
            "Idempotency-Key": n.key,
        }
        await post(self._client, self._url, body, what=f"webhook {self.name}", headers=headers)

    async def aclose(self) -> None:
        await self._client.aclose()
