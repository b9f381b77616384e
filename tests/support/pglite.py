"""A WASM PostgreSQL 17 with TimescaleDB (PGlite) on a loopback port, for tests.

``tests/support/pglite/server.mjs`` serves one PGlite database over the PostgreSQL wire
protocol, so psycopg connects to it as to any server. PGlite is a single backend session:
the server serves one client at a time and queues the others, and resets the session
between clients. Needs ``node`` and the npm package installed from the lock file
(``npm ci --ignore-scripts`` in ``tests/support/pglite``; ``./scripts/bootstrap`` does it).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from app.local_broker import free_port

PGLITE_DIR = Path(__file__).resolve().parent / "pglite"
SERVER_SCRIPT = PGLITE_DIR / "server.mjs"
NODE_MODULES = PGLITE_DIR / "node_modules"
HOST = "127.0.0.1"
START_TIMEOUT_S = 60.0  # a first start runs initdb in WASM: several seconds, more on a busy CI
STOP_TIMEOUT_S = 15.0
LOG_TAIL_CHARS = 4000


@dataclass(frozen=True)
class PgliteServer:
    """A running PGlite server: where it listens, its data directory, log and process."""

    host: str
    port: int
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    @property
    def dsn(self) -> str:
        """A libpq URI for psycopg (no TLS: the server answers 'N' to SSLRequest)."""
        return f"postgresql://postgres@{self.host}:{self.port}/postgres?sslmode=disable"


def pglite_available() -> str | None:
    """None when node and the installed npm package are present, else why they are not."""
    if shutil.which("node") is None:
        return "node is not installed (apt-get install nodejs npm)"
    if not (NODE_MODULES / "@unni-craftsman" / "pglite" / "package.json").is_file():
        return f"PGlite is not installed: run `npm ci --ignore-scripts` in {PGLITE_DIR}"
    return None


def _log_tail(log_path: Path) -> str:
    try:
        text = log_path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return text[-LOG_TAIL_CHARS:]


def _wait_until_ready(server: PgliteServer, timeout_s: float) -> None:
    """Poll with ``SELECT 1`` until the server answers; raise with the log tail if it doesn't."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        code = server.process.poll()
        if code is not None:
            raise RuntimeError(
                f"PGlite server exited with code {code} while starting "
                f"(log {server.log_path}):\n{_log_tail(server.log_path)}"
            )
        # A timed-out psycopg connection keeps its socket until garbage-collected, and the
        # server would then hand PGlite to it: never let an attempt outlive the deadline.
        remaining = max(2, int(deadline - time.monotonic()))
        try:
            with psycopg.connect(server.dsn, connect_timeout=remaining, autocommit=True) as conn:
                conn.execute("SELECT 1").fetchone()
            return
        except psycopg.OperationalError as exc:
            last_error = exc
            time.sleep(0.2)
    raise RuntimeError(
        f"PGlite server did not accept connections within {timeout_s:.0f} s "
        f"(last error: {last_error}; log {server.log_path}):\n{_log_tail(server.log_path)}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the server closes PGlite so the data directory stays consistent), then kill."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def running_pglite(
    data_dir: Path, port: int | None = None, timeout_s: float = START_TIMEOUT_S
) -> Iterator[PgliteServer]:
    """Serve PGlite with its data in ``data_dir`` on a free loopback port; stop it on exit.

    The data directory is created (initdb) on first use and reused as it is afterwards. The
    server's output is appended to ``<data_dir>.pglite.log`` beside ``data_dir``.
    """
    reason = pglite_available()
    if reason is not None:
        raise RuntimeError(reason)
    node = shutil.which("node")
    assert node is not None  # checked by pglite_available()
    data_dir = data_dir.resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    log_path = data_dir.parent / f"{data_dir.name}.pglite.log"
    port = port or free_port()
    command = [node, str(SERVER_SCRIPT), "--data-dir", str(data_dir), "--port", str(port)]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command, cwd=PGLITE_DIR, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
        try:
            server = PgliteServer(HOST, port, data_dir, log_path, process)
            _wait_until_ready(server, timeout_s)
            yield server
        finally:
            _stop(process)
