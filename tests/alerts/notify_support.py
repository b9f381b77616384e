"""Shared pieces of the notifier tests: a real HTTP receiver on a loopback port, a
recording fake notifier, and a sample notification."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from alerts.notify import Notification, NotifyError

ROBOT_OK = (200, b'{"errcode":0,"errmsg":"ok"}')

SAMPLE = Notification(
    kind="incident_opened",
    severity="critical",
    title="line1.turning: mean shift on diameter (rule 1)",
    text="3 points beyond the UCL since 08:00.\n检查刀具磨损 / check tool wear.",
    at=datetime(2025, 3, 14, 8, 5, 0, tzinfo=UTC),
    key="incident-42-opened",
    line="line1",
    process="line1.turning",
    characteristics=("line1.turning.diameter",),
    incident_id=42,
    url="http://spcmon.local/incidents/42",
    data={"rule": 1, "value": 10.31},
)


def sample(**changes: Any) -> Notification:
    """SAMPLE with some fields changed."""
    return replace(SAMPLE, **changes)


@dataclass(frozen=True)
class Request:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class HttpReceiver:
    """Records every POST; answers from ``responses`` in turn, then with ``default``."""

    def __init__(
        self, port: int, responses: Sequence[tuple[int, bytes]], default: tuple[int, bytes]
    ):
        self.port = port
        self.url = f"http://127.0.0.1:{port}/hook"
        self.requests: list[Request] = []
        self._responses = list(responses)
        self._default = default
        self._lock = threading.Lock()

    def answer(self, request: Request) -> tuple[int, bytes]:
        with self._lock:
            self.requests.append(request)
            return self._responses.pop(0) if self._responses else self._default


def _handler(receiver: HttpReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, answer = receiver.answer(Request(parts.path, query, headers, body))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def running_receiver(
    port: int,
    responses: Sequence[tuple[int, bytes]] = (),
    default: tuple[int, bytes] = ROBOT_OK,
) -> Iterator[HttpReceiver]:
    """A real HTTP server on 127.0.0.1:``port`` in a thread, for the block's duration."""
    receiver = HttpReceiver(port, responses, default)
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(receiver))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class RecordingNotifier:
    """The Notifier port in memory: records what it was sent.

    ``failures`` are raised by the first sends in turn; ``delay_s`` is slept per send;
    ``block`` (an event) makes every send wait until it is set.
    """

    def __init__(
        self,
        name: str = "fake",
        min_severity: str = "info",
        *,
        failures: Sequence[BaseException] = (),
        delay_s: float = 0.0,
        block: asyncio.Event | None = None,
    ) -> None:
        self.name = name
        self.min_severity = min_severity
        self.sent: list[Notification] = []
        self.attempts = 0
        self.closed = False
        self._failures = list(failures)
        self._delay_s = delay_s
        self._block = block

    async def send(self, n: Notification) -> None:
        self.attempts += 1
        if self._block is not None:
            await self._block.wait()
        if self._delay_s:
            await asyncio.sleep(self._delay_s)
        if self._failures:
            raise self._failures.pop(0)
        self.sent.append(n)

    async def aclose(self) -> None:
        self.closed = True


RETRYABLE = NotifyError(True, "receiver busy")
PERMANENT = NotifyError(False, "receiver refuses")
