"""A local mosquitto on a loopback port: the demo's broker, and the tests'.

Debian's mosquitto lives in /usr/sbin, often not on PATH. The config keeps messages for
persistent sessions on disk in ``workdir`` and sets no in-flight limit, so a consumer
that acknowledges after storage is not throttled to a handful of messages.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/bin/mosquitto")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mosquitto_binary() -> str:
    """Path of the mosquitto executable, or RuntimeError saying how to install it."""
    for candidate in MOSQUITTO_PATHS:
        if Path(candidate).exists():
            return candidate
    found = shutil.which("mosquitto")
    if found is None:
        raise RuntimeError("mosquitto is not installed: run ./scripts/bootstrap "
                           "(or `apt-get install mosquitto`)")  # fmt: skip
    return found


def wait_for_port(port: int, what: str, timeout_s: float = 15.0) -> None:
    """Block until something accepts TCP connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not start listening on port {port}")


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"


@contextmanager
def running_mosquitto(
    workdir: Path, port: int | None = None, listener_options: str = "", anonymous: bool = True
) -> Iterator[Broker]:
    """Start mosquitto with persistence in ``workdir`` (log: mosquitto.log); stop on exit.

    ``listener_options``: mosquitto.conf lines for the listener (TLS files, say);
    ``anonymous`` False refuses clients without a valid login (set a ``password_file``
    in ``listener_options``).
    """
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\n{listener_options}\n"
        f"allow_anonymous {'true' if anonymous else 'false'}\npersistence true\n"
        f"persistence_location {workdir.resolve()}/\n"
        "max_inflight_messages 0\nmax_queued_messages 100000\n"
    )
    with (workdir / "mosquitto.log").open("wb") as log:
        proc = subprocess.Popen([mosquitto_binary(), "-c", str(conf)], stdout=log, stderr=log)
        try:
            wait_for_port(port, f"mosquitto (log: {workdir / 'mosquitto.log'})", timeout_s=10)
            yield Broker("127.0.0.1", port, proc)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
