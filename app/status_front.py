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
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
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
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
MEASUREMENTS = "/api/v1/measurements"


class StatusMirror:
    """Copies of the status answers, kept current from the service's feed."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[bytes, str]] = {}
        self._heard = float("-inf")  # time.monotonic() of the last frame
        self._frames = 0
        self._trusted_from = 0  # frame count from which the copies may be used again

    def fresh(self) -> bool:
        return self._frames >= self._trusted_from and time.monotonic() - self._heard < STALE_AFTER_S

    def distrust(self) -> None:
        """Stop using the copies until two more frames came: the second was surely made
        after an edit that has just been answered (so a client reads its own write)."""
        self._trusted_from = self._frames + 2

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
                    for characteristic, etag, body in await read_frame(reader):
                        if etag:
                            self.answers[characteristic] = (body, etag)
                        else:
                            self.answers.pop(characteristic, None)
                    self._heard = time.monotonic()
                    self._frames += 1
            except (asyncio.IncompleteReadError, ConnectionError):
                _log.warning("status front: the service's status feed closed; reconnecting")
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
        self.core_failed = False  # the service exited on its own: ``spcmon serve`` exits 1
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

    async def _stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self._client.aclose()
        if self._core is not None:
            await self._core.stop(STOP_TIMEOUT_S)
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)

    async def _watch(self, core: CoreProcess) -> None:
        code = await core.wait()
        _log.error("status front: the service process exited (code %s); stopping", code)
        self.core_failed = True
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
        headers = [(k, v) for k, v in scope["headers"] if k not in HOP_BY_HOP]
        if client := scope.get("client"):
            headers.append((b"x-forwarded-for", client[0].encode("latin-1")))
        request = self._client.build_request(
            scope["method"],
            httpx.URL(scheme="http", host="core", raw_path=target),
            headers=headers,
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


async def _stream(chunks: AsyncIterator[bytes], receive: Receive, send: Send) -> None:
    """Copy the answer's body until it ends or the client goes (SSE streams never end)."""

    async def copy() -> None:
        async for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
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
