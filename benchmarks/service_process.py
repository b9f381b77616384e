"""The real service as its own process, for the benchmarks that load it from outside."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx


def spcmon(*args: str, env: dict[str, str]) -> str:
    """Run an ``spcmon`` command of this environment; its standard output."""
    command = [str(Path(sys.executable).with_name("spcmon")), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout


@contextlib.contextmanager
def running_service(env: dict[str, str], config: Path, port: int, log: Path) -> Iterator[int]:
    """`spcmon serve` in its own process until /healthz answers (its pid); stopped on exit.

    Its output goes to ``log``; a service that exits or takes over 120 s to answer raises
    RuntimeError with the log's tail.
    """
    command = [str(Path(sys.executable).with_name("spcmon")), "serve", "--config", str(config)]
    with log.open("wb") as out:
        proc = subprocess.Popen([*command, "--port", str(port)], env=env, stdout=out, stderr=out)
        try:
            deadline = time.monotonic() + 120
            while not _healthy(port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the service did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.2)
            yield proc.pid
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
