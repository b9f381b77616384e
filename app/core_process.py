"""The service run as a child process of the status front (``http.status_front``).

The child is ``spcmon serve --core-dir DIR``: the whole service, listening on
``DIR/http.sock`` and feeding status answers on ``DIR/status.sock``. Its standard input
is a pipe from the front; when the pipe closes (the front stopped, or was killed) the
child stops as on SIGTERM, so no orphaned service keeps the database and the broker
session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

import httpx

_log = logging.getLogger(__name__)
HTTP_SOCKET = "http.sock"
FEED_SOCKET = "status.sock"


class CoreFailed(RuntimeError):
    """The service process exited, or did not become ready in time."""


class CoreProcess:
    """Starts the service process, waits until it answers, and stops it."""

    def __init__(self, socket_dir: Path, config: Path | None) -> None:
        self.socket_dir = socket_dir
        self.argv = [sys.executable, "-m", "app.cli", "serve", "--core-dir", str(socket_dir)]
        if config is not None:
            self.argv += ["--config", str(config)]
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def http_socket(self) -> Path:
        return self.socket_dir / HTTP_SOCKET

    @property
    def feed_socket(self) -> Path:
        return self.socket_dir / FEED_SOCKET

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def start(self, timeout_s: float) -> None:
        """Start the child and wait until its ``/healthz`` answers 200.

        Raises ``CoreFailed`` if it exits first or is not ready within ``timeout_s``
        (opening the store and compiling the kernels take a few seconds).
        """
        self._proc = await asyncio.create_subprocess_exec(*self.argv, stdin=asyncio.subprocess.PIPE)
        transport = httpx.AsyncHTTPTransport(uds=str(self.http_socket))
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(transport=transport, base_url="http://core") as client:
            while True:
                if self._proc.returncode is not None:
                    raise CoreFailed(
                        f"the service process exited with code {self._proc.returncode} "
                        "while starting (its log above says why)"
                    )
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/healthz", timeout=2.0)).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise CoreFailed(f"the service process was not ready within {timeout_s:.0f} s")
                await asyncio.sleep(0.1)

    async def wait(self) -> int:
        """The child's exit code, once it exits."""
        assert self._proc is not None
        return await self._proc.wait()

    def request_stop(self) -> None:
        """Ask the child to stop without waiting (it drains its pipeline first)."""
        proc = self._proc
        if proc is not None and proc.returncode is None and proc.stdin is not None:
            proc.stdin.close()  # the child's watcher takes this as SIGTERM

    async def stop(self, timeout_s: float) -> None:
        """Ask the child to stop (it drains its pipeline first); kill it after ``timeout_s``."""
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        self.request_stop()
        try:
            await asyncio.wait_for(proc.wait(), timeout_s)
        except TimeoutError:
            _log.error("the service process did not stop within %.0f s; killing it", timeout_s)
            proc.kill()
            await proc.wait()


def remove_sockets(core_dir: Path) -> None:
    """In the child, at exit: its two sockets, and their directory if nothing else is in
    it (never more: the directory is given on the command line)."""
    for name in (HTTP_SOCKET, FEED_SOCKET):
        (core_dir / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # not empty, or already removed by the front
        core_dir.rmdir()


def stop_when_parent_goes() -> None:
    """In the child: SIGTERM ourselves when standard input (the front's pipe) closes."""

    def watch() -> None:
        with contextlib.suppress(OSError, ValueError):
            while sys.stdin.buffer.read(4096):
                pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
