"""DingTalk (钉钉) custom group robot.

Wire format: ``POST <url>?access_token=<token>[&timestamp=<ms>&sign=<sign>]`` with
``{"msgtype": "markdown", "markdown": {"title": ..., "text": ...}}``. With 加签 (signing)
on, ``sign`` is base64(HMAC-SHA256(key=secret, msg="<timestamp>\\n<secret>")), URL-encoded
in the query; ``timestamp`` is unix milliseconds and DingTalk refuses one more than an
hour off. DingTalk answers HTTP 200 with ``{"errcode": 0, "errmsg": "ok"}``; a non-zero
errcode is a failure: 130101 (more than 20 messages a minute) and -1 (system busy) are
retried, others (310000: keyword, signature or IP check failed; 300001: bad token) are not.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable

from alerts.notify._http import (
    check_robot_answer,
    dumps,
    new_client,
    post,
    robot_markdown,
    truncate_utf8,
)
from alerts.notify.model import Notification

DEFAULT_URL = "https://oapi.dingtalk.com/robot/send"
RETRYABLE_ERRCODES = frozenset({130101, -1})
MAX_TEXT_BYTES = 18_000  # DingTalk caps a markdown message at about 20,000 bytes


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """The ``sign`` parameter before URL encoding (base64 text)."""
    message = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


class DingTalkNotifier:
    """Posts markdown to one DingTalk group robot.

    ``access_token`` identifies the robot; ``secret`` (``SEC...``) turns on signing.
    ``clock`` gives unix seconds (tests pin it); ``timeout_s`` bounds one attempt.
    """

    def __init__(
        self,
        name: str,
        access_token: str,
        *,
        secret: str | None = None,
        url: str = DEFAULT_URL,
        min_severity: str = "info",
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.min_severity = min_severity
        self._url = url
        self._token = access_token
        self._secret = secret
        self._clock = clock
        self._client = new_client(timeout_s)

    def body(self, n: Notification) -> bytes:
        """The JSON request body for ``n``."""
        text = truncate_utf8(robot_markdown(n, colour=False), MAX_TEXT_BYTES)
        title = f"[spcmon {n.severity}] {n.title}"
        return dumps({"msgtype": "markdown", "markdown": {"title": title, "text": text}})

    async def send(self, n: Notification) -> None:
        params = {"access_token": self._token}
        if self._secret:
            timestamp_ms = int(self._clock() * 1000)
            # httpx percent-encodes the base64 ("+", "/", "=") as DingTalk expects
            params |= {
                "timestamp": str(timestamp_ms),
                "sign": dingtalk_sign(self._secret, timestamp_ms),
            }
        what = f"DingTalk robot {self.name}"
        response = await post(self._client, self._url, self.body(n), what=what, params=params)
        check_robot_answer(response, what, RETRYABLE_ERRCODES)

    async def aclose(self) -> None:
        await self._client.aclose()
