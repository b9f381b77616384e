"""The status front: status polls answered in a second process, the rest passed through.

One interpreter cannot both ingest 10,000 measurements/s and answer 1,000 status polls
a second within 10 ms: the parsing, the evaluation and the bookkeeping of each batch
hold the GIL in stretches of 5-10 ms, and the polls wait behind them. With
``http.status_front`` on, ``spcmon serve`` becomes two processes:

- this front listens on the public address. It answers ``GET .../status`` from copies
  of the service's answers (sent by ``app.status_feed`` every ``status_front_refresh_s``),
  with the same keys, the same headers and the same bytes as the service;
- the service (``app.core_process``) runs as before on a private Unix socket; every
  other request, and every status poll the front cannot answer with certainty (unknown
  id, a key that may not read, CORS, no fresh copy), is passed to it unchanged.

The copies are at most ``status_front_refresh_s`` (default 0.25 s) behind the service;
if the feed goes quiet for ``STALE_AFTER_S`` the front stops using them. After an edit
through the API (a characteristic changed or deleted, limits recalculated, an alarm
acknowledged) they are not used until the feed has caught up, so that whoever made the
edit reads it at once; measurement pushes do not wait (their points show within the
refresh).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import FrameType

import httpx
import uvicorn
from starlette.types import Message, Receive, Scope, Send

from app.auth import KeyRing
from app.body_limit import too_large_detail
from app.core_process import CoreProcess
from app.settings import Settings
from app.status_frames import read_frame
from app.status_poll import may_read, route_path, send_status, status_poll

_log = logging.getLogger(__name__)
STALE_AFTER_S = 5.0  # no frame (not even a heartbeat) for this long: answers are not used
START_TIMEOUT_S = 300.0  # migrations on a large database can take minutes
STOP_TIMEOUT_S = 60.0  # the service drains its pipeline within 30 s
HOP_BY_HOP = {
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te",
    b"trailer", b"transfer-encoding", b"upgrade",
}  # fmt: skip
SET_BY_FRONT = {b"date", b"server"}  # the front's uvicorn sends its own
# a client's own forwarding claims are dropped: the service trusts the front's alone; the
# front has already answered an ``Expect: 100-continue``
NOT_PASSED_ON = HOP_BY_HOP | {
    b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"forwarded", b"expect",
}  # fmt: skip
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
MEASUREMENTS = "/api/v1/measurements"


class StatusMirror:
    """Copies of the status answers, kept current from the service's feed."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[bytes, str]] = {}
        self._heard = float("-inf")  # time.monotonic() of the last frame
        self._gathered_at = float("-inf")  # when the service began to gather the last frame
        self._edited_at = float("-inf")  # when the last edit through the API was answered

    def fresh(self) -> bool:
        if self._gathered_at < self._edited_at:
            return False  # the copies may not show an edit just answered
        return time.monotonic() - self._heard < STALE_AFTER_S

    def distrust(self) -> None:
        """Use the copies again only from a frame gathered after now: an edit that has just
        been answered is in it, so whoever made it reads it at once."""
        self._edited_at = time.monotonic()

    def get(self, characteristic: str) -> tuple[bytes, str] | None:
        """Body and ETag, or ``None`` if there is no copy or the copies are not fresh."""
        return self.answers.get(characteristic) if self.fresh() else None

    async def follow(self, socket: Path) -> None:
        """Read the feed for ever, reconnecting; copies are dropped while disconnected."""
        while True:
            try:
                reader, writer = await asyncio.open_unix_connection(str(socket))
            except OSError:
                await asyncio.sleep(0.5)
                continue
            try:
                while True:
                    gathered_at, changes = await read_frame(reader)
                    for characteristic, etag, body in changes:
                        if etag:
                            self.answers[characteristic] = (body, etag)
                        else:
                            self.answers.pop(characteristic, None)
                    self._heard, self._gathered_at = time.monotonic(), gathered_at
            except (asyncio.IncompleteReadError, ConnectionError):
                _log.warning("status front: the service's status feed closed; reconnecting")
            except Exception:  # a bad frame: start afresh rather than stop using the feed
                _log.exception("status front: unreadable status feed; reconnecting")
            finally:
                self.answers.clear()
                self._heard = float("-inf")
                writer.close()
            await asyncio.sleep(0.5)


class StatusFront:
    """The front's ASGI application (with its own lifespan: it starts the service)."""

    def __init__(self, settings: Settings, config: Path | None) -> None:
        self.settings = settings
        self.config = config
        self.keys = KeyRing(settings.keys_file)
        self.mirror = StatusMirror()
        self.core_failed = False  # the service exited on its own: ``spcmon serve`` fails
        self.core_exit_code = 0
        self.stopping = False  # a stop was asked for: the service's exit is expected
        self.on_core_exit: Callable[[], None] = lambda: os.kill(os.getpid(), signal.SIGTERM)
        self._core: CoreProcess | None = None
        self._client: httpx.AsyncClient | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._socket_dir: Path | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # no websockets in this API: uvicorn refuses the handshake
        poll = status_poll(scope)
        if poll is not None:
            answer = self.mirror.get(poll.characteristic)
            anonymous = self.settings.auth.anonymous_read
            if answer is not None and may_read(self.keys, anonymous, poll.token):
                await send_status(send, answer[0], answer[1], poll.if_none_match)
                return
        await self._pass_on(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await receive()  # lifespan.startup
        try:
            await self._start()
        except Exception as exc:
            _log.error("status front: cannot start: %s", exc)
            await self._stop()
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
            return
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        await self._stop()
        await send({"type": "lifespan.shutdown.complete"})

    async def _start(self) -> None:
        self._socket_dir = Path(tempfile.mkdtemp(prefix="spcmon-"))  # 0700: ours alone
        core = self._core = CoreProcess(self._socket_dir, self.config)
        await core.start(START_TIMEOUT_S)
        _log.info("status front: service process %s ready", core.pid)
        self._client = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=str(core.http_socket)),
            timeout=httpx.Timeout(10.0, read=None),  # SSE streams stay open
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
        )
        self._tasks = [
            asyncio.create_task(self.mirror.follow(core.feed_socket), name="status-feed"),
            asyncio.create_task(self._watch(core), name="core-watch"),
        ]
        gc.freeze()  # the modules' objects live for ever: full collections skip them

    def begin_stop(self) -> None:
        """A stop was asked for (SIGTERM, Ctrl-C): tell the service at once, so that it ends
        its event streams and drains while the front still passes its answers on."""
        self.stopping = True
        if self._core is not None:
            self._core.request_stop()

    async def _stop(self) -> None:
        self.stopping = True
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._client is not None:
            await self._client.aclose()
        if self._core is not None:
            await self._core.stop(STOP_TIMEOUT_S)
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)

    async def _watch(self, core: CoreProcess) -> None:
        code = await core.wait()
        if self.stopping:
            return
        _log.error("status front: the service process exited (code %s); stopping", code)
        self.core_failed, self.core_exit_code = True, code
        self.on_core_exit()  # the server stops as on SIGTERM, then ``spcmon serve`` exits 1

    async def _pass_on(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The request to the service and its answer back, unchanged (streams included)."""
        limit = self.settings.http.max_body_bytes
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > limit:
                await _problem(send, 413, "Content too large", too_large_detail(limit))
                return
        assert self._client is not None
        target = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        request = self._client.build_request(
            scope["method"],
            httpx.URL(scheme="http", host="core", raw_path=target),
            headers=headers_for_service(scope),
            content=bytes(body),
        )
        try:
            response = await self._client.send(request, stream=True)
        except httpx.TransportError as exc:
            _log.warning("status front: the service did not answer %s: %s", scope["path"], exc)
            detail = "the service is starting, stopping or overloaded; retry shortly"
            await _problem(send, 503, "Service unavailable", detail)
            return
        try:
            answer = [
                (k, v)
                for k, v in response.headers.raw
                if k.lower() not in HOP_BY_HOP and k.lower() not in SET_BY_FRONT
            ]
            edited = scope["method"] in WRITES and 200 <= response.status_code < 300
            if edited and route_path(scope) != MEASUREMENTS:  # pushes: the refresh's delay
                self.mirror.distrust()
            start = {"type": "http.response.start", "status": response.status_code}
            await send({**start, "headers": answer})
            await _stream(response.aiter_raw(), receive, send)
        finally:
            await response.aclose()


def headers_for_service(scope: Scope) -> list[tuple[bytes, bytes]]:
    """The request's headers as passed to the service, which trusts ``X-Forwarded-*`` from
    its private socket: a client's own forwarding claims and ``Expect`` are dropped, and the
    front says who connected to it and over which scheme."""
    headers = [(k, v) for k, v in scope["headers"] if k not in NOT_PASSED_ON]
    if client := scope.get("client"):  # the front's view, never the client's own claim
        headers.append((b"x-forwarded-for", client[0].encode("latin-1")))
    headers.append((b"x-forwarded-proto", scope.get("scheme", "http").encode("latin-1")))
    return headers


async def _stream(chunks: AsyncIterator[bytes], receive: Receive, send: Send) -> None:
    """Copy the answer's body until it ends or the client goes (SSE streams never end)."""

    async def copy() -> None:
        try:
            async for chunk in chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except httpx.TransportError as exc:  # the service went mid-answer: end it here
            _log.warning("status front: answer cut short by the service: %s", exc)
        await send({"type": "http.response.body", "body": b""})

    async def gone() -> None:
        message: Message = {}
        while message.get("type") != "http.disconnect":
            message = await receive()

    copying = asyncio.create_task(copy())
    watching = asyncio.create_task(gone())
    try:
        await asyncio.wait({copying, watching}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (copying, watching):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if copying.done() and not copying.cancelled() and (exc := copying.exception()):
        raise exc


async def _problem(send: Send, status: int, title: str, detail: str) -> None:
    body = json.dumps(
        {"type": "about:blank", "title": title, "status": status, "detail": detail}
    ).encode()
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class FrontServer(uvicorn.Server):
    """uvicorn, telling the service to stop as soon as the front is asked to.

    uvicorn waits for open answers before the lifespan's shutdown; an event stream passed
    on from the service ends only when the service ends it, so the service must hear of
    the stop first, not after that wait.
    """

    def __init__(self, front: StatusFront, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.front = front
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if self._loop is not None:  # a signal handler: the loop does the work
            self._loop.call_soon_threadsafe(self.front.begin_stop)
