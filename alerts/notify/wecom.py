"""WeCom (企业微信) group robot.

Wire format: ``POST <url>?key=<robot key>`` with
``{"msgtype": "markdown", "markdown": {"content": ...}}`` (content at most 4096 bytes of
UTF-8; WeCom's markdown has ``<font color="info|comment|warning">``). WeCom answers
``{"errcode": 0, "errmsg": "ok"}``; 45009 (more than 20 messages a minute) and -1
(system busy) are retried, other errcodes (93000: bad key, 40058: bad content) are not.
"""

from __future__ import annotations

from alerts.notify._http import (
    check_robot_answer,
    dumps,
    new_client,
    post,
    robot_markdown,
    truncate_utf8,
)
from alerts.notify.model import Notification

DEFAULT_URL = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
RETRYABLE_ERRCODES = frozenset({45009, -1})
MAX_CONTENT_BYTES = 4096


class WeComNotifier:
    """Posts markdown to one WeCom group robot identified by ``key``.

    ``timeout_s`` bounds one attempt (seconds).
    """

    def __init__(
        self,
        name: str,
        key: str,
        *,
        url: str = DEFAULT_URL,
        min_severity: str = "info",
        timeout_s: float = 10.0,
    ) -> None:
        self.name = name
        self.min_severity = min_severity
        self._url = url
        self._key = key
        self._client = new_client(timeout_s)

    def body(self, n: Notification) -> bytes:
        """The JSON request body for ``n``."""
        content = truncate_utf8(robot_markdown(n, colour=True), MAX_CONTENT_BYTES)
        return dumps({"msgtype": "markdown", "markdown": {"content": content}})

    async def send(self, n: Notification) -> None:
        what = f"WeCom robot {self.name}"
        params = {"key": self._key}
        response = await post(self._client, self._url, self.body(n), what=what, params=params)
        check_robot_answer(response, what, RETRYABLE_ERRCODES)

    async def aclose(self) -> None:
        await self._client.aclose()
