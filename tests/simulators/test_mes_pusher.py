"""The MES pusher against the real service in-process, and against a flaky local receiver."""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app import Settings, create_app
from app.auth import Role
from simulators.mes_pusher import (
    MesPusher,
    PusherConfigError,
    RetryPolicy,
    read_dead_letters,
)
from tests.conftest import DEMO_CONFIG
from tests.support.api import key_headers

CHAR = "line1.turning.diameter"
FAST = RetryPolicy(max_attempts=3, base_s=0.001, cap_s=0.01)
# the service refuses times in the future: each test pushes into its own past hour
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)


def _hour(n: int) -> datetime:
    return T0 + timedelta(hours=n)


@dataclass
class Service:
    client: TestClient  # called with an ingest key
    settings: Settings
    admin: dict[str, str]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One running service for the module: its start costs seconds of JIT."""
    settings = Settings(config=DEMO_CONFIG, data_dir=tmp_path_factory.mktemp("mes") / "data")
    ingest = key_headers(settings, Role.INGEST)
    with TestClient(create_app(settings), headers=ingest) as client:
        yield Service(client, settings, key_headers(settings, Role.ADMIN))


def _pusher(client: Any, tmp_path: Path, **options: Any) -> MesPusher:
    options = {"flush_interval_s": None, "retry": FAST, **options}
    return MesPusher(client, dead_letter_path=tmp_path / "dead.jsonl", **options)


def _stored(service: Service, start: datetime, characteristic: str = CHAR) -> list[dict[str, Any]]:
    params = {"characteristic": characteristic, "start": start.isoformat()}
    params["end"] = (start + timedelta(hours=1)).isoformat()
    answer = service.client.get("/api/v1/measurements", params=params, headers=service.admin)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def _store_call(service: Service, method: str, start: datetime) -> Any:
    store = service.client.app.state.service.store  # type: ignore[attr-defined]
    return service.client.portal.call(getattr(store, method), start, start + timedelta(hours=1))  # type: ignore[union-attr]


class _AnswerLostOnce:
    """The network loses the service's first answer: the batch is stored, the sender times out."""

    def __init__(self, client: TestClient) -> None:
        self.client, self.lost = client, False

    def post(self, url: str, *, json: Any) -> Any:
        answer = self.client.post(url, json=json)
        if not self.lost:
            self.lost = True
            raise httpx.ReadTimeout("the answer was lost")
        return answer


class _WithHeaders:
    def __init__(self, client: TestClient, headers: dict[str, str]) -> None:
        self.client, self.headers = client, headers

    def post(self, url: str, *, json: Any) -> Any:
        return self.client.post(url, json=json, headers=self.headers)


def test_rows_verdicts_and_cost_events_arrive_in_batches_of_batch_size(
    service: Service, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    t = _hour(0)
    with caplog.at_level(logging.INFO), _pusher(service.client, tmp_path, batch_size=4) as pusher:
        for i in range(6):
            pusher.add_measurement(CHAR, 25.0 + i / 1000, t + timedelta(seconds=i), part=f"A{i}")
        pusher.add_verdict("line2.vision", "A0", False, t, defects=["gap"])
        pusher.add_cost_event("line1", "scrap", 12.5, t, note="A0 scrapped")
        assert pusher.stats.batches_sent == 2  # full batches go without waiting for a flush

    stored = _stored(service, t)
    assert [m["value"] for m in stored] == [25.0 + i / 1000 for i in range(6)]
    assert [m["ingest_id"] for m in stored] == [f"A{i}:{CHAR}" for i in range(6)]
    assert {m["source"] for m in stored} == {"http:mes"}
    counts = _store_call(service, "first_pass_counts", t)
    assert [(c.process, c.inspected, c.passed) for c in counts] == [("line2.vision", 1, 0)]
    costs = _store_call(service, "cost_totals", t)
    assert [(c.scope, c.category, c.amount) for c in costs] == [("line1", "scrap", 12.5)]
    stats = pusher.stats
    assert (stats.rows_added, stats.rows_sent, stats.rows_accepted) == (8, 8, 8)
    assert (stats.rows_dead_lettered, stats.batches_retried) == (0, 0)
    assert not (tmp_path / "dead.jsonl").exists()
    assert "MES pusher closed: PushStats(rows_added=8" in caplog.text


def test_a_row_with_an_unknown_characteristic_is_dead_lettered_and_the_rest_stored(
    service: Service, tmp_path: Path
) -> None:
    t = _hour(1)
    with _pusher(service.client, tmp_path) as pusher:
        pusher.add_measurement(CHAR, 25.001, t, part="B0")
        pusher.add_measurement("line1.no.such", 1.0, t, part="B1")
        pusher.add_measurement(CHAR, 25.002, t + timedelta(seconds=1), part="B2")

    assert [m["part"] for m in _stored(service, t)] == ["B0", "B2"]
    [letter] = read_dead_letters(tmp_path / "dead.jsonl")
    assert (letter.status, letter.row) == (202, "measurements[1]")
    assert letter.reason == "characteristic: unknown characteristic 'line1.no.such'"
    assert [m["part"] for m in letter.batch["measurements"]] == ["B1"]
    stats = pusher.stats
    assert (stats.rows_accepted, stats.rows_rejected, stats.rows_dead_lettered) == (2, 1, 1)


def test_a_batch_whose_every_row_is_rejected_is_dead_lettered_row_by_row(
    service: Service, tmp_path: Path
) -> None:
    with _pusher(service.client, tmp_path) as pusher:
        pusher.add_measurement("line1.no.such", 1.0, _hour(2), part="C0")
        pusher.add_verdict("line2.vision", "C0", True, datetime.now(UTC) + timedelta(hours=1))

    letters = read_dead_letters(tmp_path / "dead.jsonl")
    assert [(d.status, d.row) for d in letters] == [(422, "measurements[0]"), (422, "verdicts[0]")]
    assert "in the future" in letters[1].reason
    assert pusher.stats.rows_dead_lettered == 2
    assert pusher.stats.batches_dead_lettered == 0


def test_a_batch_resent_after_a_lost_answer_is_stored_once(
    service: Service, tmp_path: Path
) -> None:
    t = _hour(3)
    # no part: the rows' identities come from the batch key, which the resend keeps
    with _pusher(_AnswerLostOnce(service.client), tmp_path) as pusher:
        for i in range(3):
            pusher.add_measurement(CHAR, 25.0, t + timedelta(seconds=i))
        pusher.add_verdict("line2.vision", "D0", True, t)
        pusher.add_cost_event("line1", "rework", 3.0, t)

    assert len(_stored(service, t)) == 3
    assert [c.inspected for c in _store_call(service, "first_pass_counts", t)] == [1]
    assert [c.events for c in _store_call(service, "cost_totals", t)] == [1]
    assert (pusher.stats.batches_retried, pusher.stats.rows_accepted) == (1, 5)
    assert not (tmp_path / "dead.jsonl").exists()


@pytest.mark.parametrize(
    ("role", "status", "problem"),
    [
        (Role.VIEWER, 403, "lacks the ingest role"),
        (None, 401, "is missing or not valid"),
    ],
)
def test_a_key_the_service_refuses_raises_a_clear_configuration_error(
    service: Service, tmp_path: Path, role: Role | None, status: int, problem: str
) -> None:
    headers = key_headers(service.settings, role) if role else {"Authorization": "Bearer nope"}
    pusher = _pusher(_WithHeaders(service.client, headers), tmp_path)
    pusher.add_measurement(CHAR, 25.0, _hour(4), part="E0")

    with pytest.raises(PusherConfigError, match=rf"\({status}\): the API key {problem}"):
        pusher.flush()

    assert _stored(service, _hour(4)) == []
    [letter] = read_dead_letters(tmp_path / "dead.jsonl")  # kept for a replay with a good key
    assert (letter.status, letter.row, len(letter.batch["measurements"])) == (status, None, 1)


class _Broken:
    def post(self, url: str, *, json: Any) -> Any:
        raise RuntimeError("not an HTTP failure")


def test_an_unexpected_client_error_is_raised_after_the_batch_is_dead_lettered(
    tmp_path: Path,
) -> None:
    pusher = _pusher(_Broken(), tmp_path)
    pusher.add_measurement(CHAR, 25.0, T0, part="J0")
    with pytest.raises(RuntimeError, match="not an HTTP failure"):
        pusher.flush()
    [letter] = read_dead_letters(tmp_path / "dead.jsonl")
    assert letter.reason == "unexpected RuntimeError: not an HTTP failure"
    assert letter.batch["measurements"][0]["part"] == "J0"


@pytest.mark.parametrize(
    ("call", "problem"),
    [
        (lambda p: p.add_measurement(CHAR, 1.0, datetime(2026, 1, 1)), "naive"),
        (lambda p: p.add_measurement(CHAR, math.nan, T0), "value: nan is not finite"),
        (lambda p: p.add_measurement(CHAR, 1.0, T0, quality="fine"), "quality"),
        (lambda p: p.add_cost_event("line1", "lunch", 1.0, T0), "category"),
        (lambda p: p.add_cost_event("line1", "scrap", -1.0, T0), "amount: must be >= 0"),
    ],
)
def test_rows_the_service_would_refuse_whole_are_refused_at_the_add(
    tmp_path: Path, call: Any, problem: str
) -> None:
    pusher = _pusher(None, tmp_path)
    with pytest.raises(ValueError, match=problem):
        call(pusher)
    assert pusher.stats.rows_added == 0


# --- a real local receiver that fails on purpose ---------------------------------------


@dataclass
class _Receiver:
    """An HTTP server on a free port: bound at once (connections refused) until `listen`.

    Each POST takes the next step of ``script`` (a status, ``(status, retry_after)`` or
    ``"drop"``: close without answering); with the script spent, it answers 202 and stores
    the batch once per idempotency key, as the service does.
    """

    script: list[int | str | tuple[int, str]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    stored: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler, bind_and_activate=False)
        self.server.server_bind()
        self.server.receiver = self  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread: threading.Thread | None = None

    def listen(self) -> None:
        if self.thread is None:
            self.server.server_activate()
            self.thread = threading.Thread(
                target=self.server.serve_forever, args=(0.01,), daemon=True
            )
            self.thread.start()

    def rows(self) -> int:
        """Measurements stored."""
        return sum(len(batch["measurements"]) for batch in self.stored.values())

    def close(self) -> None:
        if self.thread is not None:
            self.server.shutdown()
        self.server.server_close()


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        receiver: _Receiver = self.server.receiver  # type: ignore[attr-defined]
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        receiver.requests.append(body)
        step = receiver.script.pop(0) if receiver.script else 202
        if step == "drop":
            return
        status, retry_after = step if isinstance(step, tuple) else (int(step), None)
        if status == 202:
            receiver.stored.setdefault(body["idempotency_key"], body)
        rows = sum(len(body[k]) for k in ("measurements", "verdicts", "cost_events"))
        answer = json.dumps({"accepted": rows, "rejected": []} if status == 202 else {}).encode()
        self.send_response(status)
        if retry_after:
            self.send_header("Retry-After", retry_after)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    receiver = _Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def http(receiver: _Receiver) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=receiver.url, timeout=2.0) as client:
        yield client


def test_a_batch_is_retried_until_the_receiver_recovers_and_arrives_once(
    receiver: _Receiver, http: httpx.Client, tmp_path: Path
) -> None:
    receiver.script = ["drop", (429, "7"), (503, "Wed, 21 Oct 2015 07:28:00 GMT")]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        receiver.listen()  # the receiver comes back during the first backoff

    policy = RetryPolicy(max_attempts=6, base_s=0.001, cap_s=60.0)
    with _pusher(http, tmp_path, retry=policy, sleep=sleep) as pusher:
        for i in range(3):
            pusher.add_measurement(CHAR, 25.0, T0 + timedelta(seconds=i), part=f"F{i}")

    # refused, dropped, 429, 503, then stored: the refused attempt never reached it
    assert len(receiver.requests) == 4
    assert len({r["idempotency_key"] for r in receiver.requests}) == 1
    assert receiver.rows() == 3
    assert waits[2:] == [7.0, 0.0]  # Retry-After: seconds, or a date (here long past)
    assert [0.0005 * 2**i <= w <= 0.001 * 2**i for i, w in enumerate(waits[:2])] == [True] * 2
    assert (pusher.stats.batches_retried, pusher.stats.rows_accepted) == (1, 3)
    assert not (tmp_path / "dead.jsonl").exists()


def test_a_receiver_down_past_the_retry_budget_leaves_the_whole_batch_replayable(
    receiver: _Receiver, http: httpx.Client, service: Service, tmp_path: Path
) -> None:
    t = _hour(5) + timedelta(microseconds=250)
    with _pusher(http, tmp_path) as pusher:  # the receiver never listens
        pusher.add_measurement(CHAR, 25.003, t, part="G0", lot="L7", quality="uncertain")
        pusher.add_measurement(CHAR, 25.004, t + timedelta(seconds=1))
        pusher.add_verdict("line2.vision", "G0", True, t, first_pass=False)
        pusher.add_cost_event("line1", "stoppage", 40.0, t, currency="EUR")

    [letter] = read_dead_letters(tmp_path / "dead.jsonl")
    assert letter.reason.startswith("gave up after 3 attempts: ConnectError")
    assert (letter.status, letter.row) == (None, None)
    stamp = t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert letter.batch["measurements"][0] == {
        "characteristic": CHAR,
        "value": 25.003,
        "time": stamp,
        "quality": "uncertain",
        "part": "G0",
        "lot": "L7",
        "ingest_id": f"G0:{CHAR}",
    }
    assert [len(letter.batch[k]) for k in ("measurements", "verdicts", "cost_events")] == [2, 1, 1]
    stats = pusher.stats
    assert (stats.rows_sent, stats.rows_dead_lettered, stats.batches_dead_lettered) == (0, 4, 1)

    replay = service.client.post("/api/v1/measurements", json=letter.batch)
    assert replay.json() == {"accepted": 4, "rejected": []}
    stored = [(m["part"], m["value"], m["quality"]) for m in _stored(service, _hour(5))]
    assert stored == [("G0", 25.003, "uncertain"), (None, 25.004, "good")]


def test_the_background_thread_flushes_rows_added_from_many_threads(
    receiver: _Receiver, http: httpx.Client, tmp_path: Path
) -> None:
    receiver.listen()

    def produce(pusher: MesPusher, worker: int) -> None:
        for i in range(101):
            pusher.add_measurement(CHAR, 25.0, T0, part=f"H{worker}-{i}")

    with _pusher(http, tmp_path, batch_size=50, flush_interval_s=0.02) as pusher:
        workers = [threading.Thread(target=produce, args=(pusher, w)) for w in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        deadline = time.monotonic() + 5
        while receiver.rows() < 404 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert receiver.rows() == 404  # the remainder went without a flush or close

    ids = [m["ingest_id"] for b in receiver.stored.values() for m in b["measurements"]]
    assert len(set(ids)) == 404
    assert max(len(b["measurements"]) for b in receiver.stored.values()) <= 50


def _flushing() -> bool:
    return any(thread.name == "mes-pusher" for thread in threading.enumerate())


def test_a_refusal_in_the_background_thread_is_raised_by_the_next_add(
    receiver: _Receiver, http: httpx.Client, tmp_path: Path
) -> None:
    receiver.script = [403]
    receiver.listen()
    pusher = _pusher(http, tmp_path, flush_interval_s=0.01).start()
    pusher.add_measurement(CHAR, 25.0, T0, part="I0")
    deadline = time.monotonic() + 5
    while _flushing() and time.monotonic() < deadline:  # it stops on the refusal
        time.sleep(0.01)

    with pytest.raises(PusherConfigError, match=r"\(403\): the API key lacks the ingest role"):
        pusher.add_measurement(CHAR, 25.0, T0, part="I1")
    pusher.close()
    assert pusher.stats.batches_dead_lettered == 1


def test_close_after_a_refusal_keeps_the_rest_without_sending_it_again(
    receiver: _Receiver, http: httpx.Client, tmp_path: Path
) -> None:
    receiver.script = [401]  # then it would take anything: close must not try
    receiver.listen()
    pusher = _pusher(http, tmp_path, batch_size=2)
    pusher.add_measurement(CHAR, 25.0, T0, part="K0")
    with pytest.raises(PusherConfigError, match=r"\(401\)"):
        pusher.add_measurement(CHAR, 25.0, T0, part="K1")
    pusher.add_measurement(CHAR, 25.0, T0, part="K2")

    pusher.close()

    assert (len(receiver.requests), receiver.rows()) == (1, 0)
    refused, unsent = read_dead_letters(tmp_path / "dead.jsonl")
    assert [m["part"] for m in refused.batch["measurements"]] == ["K0", "K1"]
    assert [m["part"] for m in unsent.batch["measurements"]] == ["K2"]
    assert unsent.reason.startswith("not sent: the service refused the push (401)")
    assert pusher.stats.rows_dead_lettered == 3
