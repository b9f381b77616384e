"""The status front (``SPCMON_HTTP__STATUS_FRONT=true``): two real processes, real sockets.

``spcmon serve`` is started as an operator starts it; the front answers status polls from
its copies and passes everything else to the service process, whose own Unix socket the
tests also call directly to compare the two answers byte for byte.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest

from app.auth import KeyRing, Role
from app.core_process import HTTP_SOCKET
from app.local_broker import free_port
from app.status_frames import encode_frame, read_frame
from app.status_front import headers_for_service
from tests.conftest import DEMO_CONFIG

CHAR = "line1.turning.diameter"
STATUS = f"/api/v1/characteristics/{CHAR}/status"
MAX_BODY = 64 * 1024


@dataclass
class Front:
    proc: subprocess.Popen[bytes]
    port: int
    keys: dict[Role, str]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def headers(self, role: Role = Role.ADMIN) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    @property
    def core_pid(self) -> int:
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        (pid,) = children.split()
        return int(pid)

    @property
    def core(self) -> httpx.Client:
        """A client of the service process's own socket (behind the front)."""
        argv = Path(f"/proc/{self.core_pid}/cmdline").read_bytes().split(b"\0")
        socket_dir = argv[argv.index(b"--core-dir") + 1].decode()
        transport = httpx.HTTPTransport(uds=str(Path(socket_dir) / HTTP_SOCKET))
        return httpx.Client(transport=transport, base_url="http://core", timeout=10)


def _start(tmp_path: Path, demo_config_path: Path) -> Front:
    data = tmp_path / "data"
    ring = KeyRing(data / "api-keys.json")
    keys = {role: ring.create(f"test-{role.value}", role)[1] for role in Role}
    env = {
        **os.environ,
        "SPCMON_DATA_DIR": str(data),
        "SPCMON_HTTP__STATUS_FRONT": "true",
        "SPCMON_HTTP__STATUS_FRONT_REFRESH_S": "0.1",
        "SPCMON_HTTP__MAX_BODY_BYTES": str(MAX_BODY),
        "SPCMON_GRADES__REFRESH_S": "3600",  # no grade recomputation between two reads
    }
    port = free_port()
    spcmon = str(Path(sys.executable).with_name("spcmon"))
    log = tmp_path / "service.log"
    with log.open("wb") as out:
        command = [spcmon, "serve", "--config", str(demo_config_path), "--port", str(port)]
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    front = Front(proc, port, keys, log)
    deadline = time.monotonic() + 120
    while True:
        assert proc.poll() is None, f"the service exited:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"not ready in 120 s:\n{log.read_text()[-3000:]}"
        try:
            if httpx.get(f"{front.url}/healthz", timeout=2).status_code == 200:
                return front
        except httpx.HTTPError:
            pass
        time.sleep(0.1)


def _stop(front: Front) -> int:
    if front.proc.poll() is None:
        front.proc.send_signal(signal.SIGTERM)
    return front.proc.wait(60)


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    running = _start(tmp_path_factory.mktemp("front"), DEMO_CONFIG)
    core_pid = running.core_pid
    try:
        _push(running, CHAR, list(np.random.default_rng(3).normal(25.0, 0.01, 30)))
        yield running
    finally:
        code = _stop(running)
    assert code == -signal.SIGTERM, running.log.read_text()[-3000:]  # stopped as asked
    assert not Path(f"/proc/{core_pid}").exists(), "the service process outlived the front"


T0 = datetime.now(UTC) - timedelta(hours=1)
_pushed = {"n": 0}


def _push(front: Front, char: str, values: list[float]) -> None:
    start = _pushed["n"]
    _pushed["n"] += len(values)
    rows = [
        {
            "characteristic": char,
            "value": v,
            "time": (T0 + timedelta(seconds=start + i)).isoformat(),
        }
        for i, v in enumerate(values)
    ]
    answer = httpx.post(
        f"{front.url}/api/v1/measurements",
        json={"measurements": rows},
        headers=front.headers(Role.INGEST),
        timeout=30,
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["accepted"] == len(values)


def _front_status(front: Front, until_value: float, timeout_s: float = 5.0) -> httpx.Response:
    """The front's status answer, once it shows ``until_value`` as the last value."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = httpx.get(front.url + STATUS, headers=front.headers(Role.VIEWER), timeout=10)
        assert answer.status_code == 200, answer.text
        if (answer.json()["last"] or {}).get("value") == until_value:
            return answer
        assert time.monotonic() < deadline, f"still {answer.json()['last']} after {timeout_s} s"
        time.sleep(0.05)


def test_a_status_poll_gets_the_services_own_answer_within_the_refresh(front: Front) -> None:
    _push(front, CHAR, [25.0042])
    pushed = time.monotonic()
    through_front = _front_status(front, 25.0042)
    seen_after = time.monotonic() - pushed
    with front.core as core:
        direct = core.get(STATUS, headers=front.headers(Role.VIEWER))

    assert seen_after < 2.0  # refresh 0.1 s; generous for a loaded test machine
    assert through_front.content == direct.content
    for header in ("etag", "cache-control", "content-type", "content-length"):
        assert through_front.headers[header] == direct.headers[header]
    again = httpx.get(
        front.url + STATUS,
        headers={**front.headers(Role.VIEWER), "If-None-Match": through_front.headers["etag"]},
    )
    assert again.status_code == 304
    assert again.headers["etag"] == through_front.headers["etag"]


def test_status_is_answered_by_the_front_while_the_service_is_stopped(front: Front) -> None:
    _push(front, CHAR, [25.0077])
    expected = _front_status(front, 25.0077)
    os.kill(front.core_pid, signal.SIGSTOP)  # the service stalls (as under a heavy batch)
    try:
        answer = httpx.get(front.url + STATUS, headers=front.headers(Role.VIEWER), timeout=2)
        with pytest.raises(httpx.ReadTimeout):  # anything else waits for the service
            httpx.get(f"{front.url}/api/v1/characteristics", headers=front.headers(), timeout=1)
    finally:
        os.kill(front.core_pid, signal.SIGCONT)
    assert answer.status_code == 200
    assert answer.content == expected.content


def test_copies_are_not_used_once_the_feed_goes_quiet(front: Front) -> None:
    from app.status_front import STALE_AFTER_S

    _push(front, CHAR, [25.0011])
    _front_status(front, 25.0011)
    os.kill(front.core_pid, signal.SIGSTOP)
    try:
        time.sleep(STALE_AFTER_S + 0.5)
        with pytest.raises(httpx.ReadTimeout):  # passed to the stopped service, not answered
            httpx.get(front.url + STATUS, headers=front.headers(Role.VIEWER), timeout=1)
    finally:
        os.kill(front.core_pid, signal.SIGCONT)
    _front_status(front, 25.0011)  # and the copies come back with the feed


@pytest.mark.parametrize(
    ("path", "role", "status", "in_detail"),
    [
        ("/api/v1/characteristics/nope/status", Role.VIEWER, 404, "nope"),
        (STATUS, None, 401, "needs a key"),
        (STATUS, Role.INGEST, 403, "viewer role"),
        ("/api/v1/no-such-route", Role.VIEWER, 404, "no route"),
    ],
)
def test_what_the_front_cannot_answer_gets_the_services_problem(
    front: Front, path: str, role: Role | None, status: int, in_detail: str
) -> None:
    headers = front.headers(role) if role else {}
    answer = httpx.get(front.url + path, headers=headers, timeout=10)
    with front.core as core:
        direct = core.get(path, headers=headers)

    assert answer.status_code == direct.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    assert in_detail in answer.json()["detail"]
    assert answer.json() == direct.json()
    if status == 401:
        assert answer.headers["www-authenticate"] == "Bearer"


def test_a_rejected_push_is_named_and_an_oversized_one_refused(front: Front) -> None:
    bad = httpx.post(
        f"{front.url}/api/v1/measurements?x=1",
        json={"measurements": [{"characteristic": CHAR, "value": "abc"}]},
        headers=front.headers(Role.INGEST),
    )
    huge = httpx.post(
        f"{front.url}/api/v1/measurements",
        content=b"[" + b"1," * MAX_BODY + b"1]",
        headers={**front.headers(Role.INGEST), "Content-Type": "application/json"},
    )

    assert bad.status_code == 422
    assert "measurements.0.value" in bad.text
    assert huge.status_code == 413
    assert "SPCMON_HTTP__MAX_BODY_BYTES" in huge.json()["detail"]
    assert front.proc.poll() is None


def test_the_event_stream_passes_through_and_ends_with_the_client(front: Front) -> None:
    with httpx.Client(base_url=front.url, headers=front.headers(Role.VIEWER)) as client:
        url = f"/api/v1/stream?characteristic={CHAR}"
        with client.stream("GET", url, timeout=10) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            _push(front, CHAR, [25.0123])
            deadline = time.monotonic() + 10
            for line in stream.iter_lines():
                if line.startswith("data:") and '"value":25.0123' in line.replace(" ", ""):
                    break
                assert time.monotonic() < deadline, "no point event through the front"
    with httpx.Client(base_url=front.url) as again:  # the front still serves after it
        assert again.get("/healthz").status_code == 200


def test_a_deleted_characteristic_is_no_longer_answered_from_copies(front: Front) -> None:
    new = {"id": "line1.turning.front_probe", "name": "probe", "unit": "mm",
           "line": "line1", "process": "turning", "lsl": 1.0, "usl": 2.0}  # fmt: skip
    created = httpx.post(f"{front.url}/api/v1/characteristics", json=new, headers=front.headers())
    assert created.status_code == 201, created.text
    _push(front, new["id"], [1.5])
    path = f"/api/v1/characteristics/{new['id']}/status"
    deadline = time.monotonic() + 5
    while httpx.get(front.url + path, headers=front.headers()).json().get("last") is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)

    deleted = httpx.delete(
        f"{front.url}/api/v1/characteristics/{new['id']}", headers=front.headers()
    )
    assert deleted.status_code == 204, deleted.text
    assert httpx.get(front.url + path, headers=front.headers()).status_code == 404


def test_the_front_exits_with_an_error_when_the_service_dies(
    tmp_path: Path, demo_config_path: Path
) -> None:
    running = _start(tmp_path, demo_config_path)
    try:
        os.kill(running.core_pid, signal.SIGKILL)
        code = running.proc.wait(30)
    finally:
        _stop(running)
    assert code == 1  # a supervisor (systemd, compose) restarts both
    assert "the service process exited" in running.log.read_text()


def test_the_service_stops_when_the_front_is_killed(tmp_path: Path, demo_config_path: Path) -> None:
    running = _start(tmp_path, demo_config_path)
    core_pid = running.core_pid
    argv = Path(f"/proc/{core_pid}/cmdline").read_bytes().split(b"\0")
    socket_dir = Path(argv[argv.index(b"--core-dir") + 1].decode())
    assert (socket_dir / HTTP_SOCKET).is_socket()
    running.proc.kill()
    running.proc.wait(10)
    deadline = time.monotonic() + 45  # it drains its pipeline first
    while Path(f"/proc/{core_pid}").exists() and b"(zombie)" not in _state(core_pid):
        assert time.monotonic() < deadline, "the service process outlived its front"
        time.sleep(0.1)
    assert not socket_dir.exists(), "the killed front's private socket directory was left"


def _state(pid: int) -> bytes:
    try:
        return b"(zombie)" if b") Z" in Path(f"/proc/{pid}/stat").read_bytes() else b""
    except FileNotFoundError:
        return b"(zombie)"


@pytest.mark.anyio
async def test_frames_carry_answers_gone_characteristics_and_heartbeats() -> None:
    changes = [("line1.Ø-bore", '"abc"', json.dumps({"v": 1}).encode()), ("gone", "", b"")]
    reader = asyncio.StreamReader()
    reader.feed_data(encode_frame(changes, 12.5) + encode_frame([], 13.25))
    reader.feed_eof()

    assert await read_frame(reader) == (12.5, changes)
    assert await read_frame(reader) == (13.25, [])
    with pytest.raises(asyncio.IncompleteReadError):
        await read_frame(reader)


def test_a_clients_forwarding_claims_never_reach_the_service() -> None:
    """The service trusts X-Forwarded-* on its private socket (it may be behind a real
    proxy only through the front): only the front's own view of the client passes."""
    scope = {
        "type": "http",
        "scheme": "http",
        "client": ("192.0.2.7", 50123),
        "headers": [
            (b"host", b"spc.example"),
            (b"authorization", b"Bearer k"),
            (b"x-forwarded-for", b"10.0.0.1"),
            (b"x-forwarded-proto", b"https"),
            (b"x-forwarded-host", b"evil.example"),
            (b"forwarded", b"for=10.0.0.1;proto=https"),
            (b"expect", b"100-continue"),
        ],
    }
    assert headers_for_service(scope) == [
        (b"host", b"spc.example"),
        (b"authorization", b"Bearer k"),
        (b"x-forwarded-for", b"192.0.2.7"),
        (b"x-forwarded-proto", b"http"),
    ]
    # a Unix-socket client has no address: no X-Forwarded-For at all, not a claimed one
    unix = {**scope, "client": None}
    assert (b"x-forwarded-for", b"10.0.0.1") not in headers_for_service(unix)
    assert [k for k, _ in headers_for_service(unix)].count(b"x-forwarded-for") == 0


def test_stopping_the_front_with_an_event_stream_open_stops_both_promptly(
    tmp_path: Path, demo_config_path: Path
) -> None:
    """``docker stop`` signals the front alone; the stream must not hold the stop up."""
    running = _start(tmp_path, demo_config_path)
    core_pid = running.core_pid
    with httpx.Client(base_url=running.url, headers=running.headers(Role.VIEWER)) as client:
        with client.stream("GET", "/api/v1/stream", timeout=60) as stream:
            assert stream.status_code == 200
            asked = time.monotonic()
            running.proc.send_signal(signal.SIGTERM)
            for _ in stream.iter_raw():  # ends when the service ends the stream
                pass
        code = running.proc.wait(60)
    assert time.monotonic() - asked < 20
    assert code == -signal.SIGTERM
    assert not Path(f"/proc/{core_pid}").exists()
    assert "the service process exited" not in running.log.read_text()


def test_a_stop_of_both_processes_is_not_reported_as_a_failure(
    tmp_path: Path, demo_config_path: Path
) -> None:
    """``systemctl stop`` and Ctrl-C signal the whole process group."""
    running = _start(tmp_path, demo_config_path)
    os.kill(running.core_pid, signal.SIGTERM)
    running.proc.send_signal(signal.SIGTERM)
    assert running.proc.wait(60) == -signal.SIGTERM  # not 1: nothing failed
