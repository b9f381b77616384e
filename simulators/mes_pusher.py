"""A simulated MES: buffers readings and pushes them in batches to ``POST /api/v1/measurements``.

Rows are buffered by `MesPusher.add_measurement`, `add_verdict` and `add_cost_event`; a
batch is sent when ``batch_size`` rows are waiting, on `MesPusher.flush`, every
``flush_interval_s`` from a background thread (started by `start` / ``with``), and on
`close`. Sends are serialised, so batches arrive in the order they were filled; adds are
thread-safe. Times go out as ISO 8601 UTC with microseconds and ``Z``.

Resends are harmless: each batch carries an ``idempotency_key`` (``<uuid4 prefix>-<n>``)
kept across its retries, and a measurement of a part gets the ``ingest_id``
``<part>:<characteristic>``.

Failures, and what happens:

- connection error, timeout, 429, 5xx: the same batch is retried with exponential
  backoff and jitter (``Retry-After`` honoured, both capped); past the budget the whole
  batch goes to the dead-letter file and the pusher carries on;
- rows the service rejects one by one (202 or 422 with ``row``/``reason``): each goes
  to the dead-letter file with the service's reason; the others are stored;
- 401, 403, 404, 405: a configuration error (key, role, URL) no retry can fix: the batch
  is dead-lettered, then `PusherConfigError` is raised (from the background thread: on
  the next add, flush or close);
- any other answer (400, a 422 for a malformed body, 413 for a batch over the service's
  body limit: lower ``batch_size``): the batch is dead-lettered with the service's detail;
- any other exception from the client: the batch is dead-lettered, the exception raised.

The dead-letter file holds JSON Lines ``{"at", "reason", "status", "row", "batch"}``
where ``batch`` is a push body that can be posted again as it is (`read_dead_letters`).
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import math
import random
import re
import threading
import time as _time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self

import httpx

from simulators.scenario import utc_iso

_log = logging.getLogger(__name__)

ENDPOINT = "/api/v1/measurements"
_QUALITIES = frozenset({"good", "uncertain", "bad"})
# mirrors the service's cost categories (simulators may not import ingest): an unknown
# one would make the service refuse the whole batch, so it is refused here, at the add
COST_CATEGORIES = frozenset(
    {"scrap", "rework", "downgrade", "stoppage", "incident", "claim", "return"}
    | {"price_reduction", "warranty", "output_value"}
)
_KINDS = ("measurements", "verdicts", "cost_events")
_CONFIG_PROBLEMS = {
    401: "the API key is missing or not valid",
    403: "the API key lacks the ingest role",
    404: "no push endpoint at this base URL",
    405: "no push endpoint at this base URL",
}
_ROW = re.compile(r"^(measurements|verdicts|cost_events)\[(\d+)\]$")


class PusherConfigError(RuntimeError):
    """The service refuses the pusher itself (key, role or URL): retrying cannot help."""


class _Answer(Protocol):
    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def text(self) -> str: ...
    def json(self) -> Any: ...


class PushClient(Protocol):
    """What the pusher needs of its client: `httpx.Client` or FastAPI's ``TestClient``."""

    def post(self, url: str, *, json: Any) -> _Answer: ...


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts per batch (the first included) and backoff in seconds.

    The n-th retry waits ``min(cap_s, base_s * 2**(n-1))`` scaled by a random factor in
    [0.5, 1] ("equal jitter"), or the server's ``Retry-After`` capped at ``cap_s``.
    """

    max_attempts: int = 6
    base_s: float = 0.5
    cap_s: float = 30.0

    def delay(self, retry: int, retry_after: float | None, rng: random.Random) -> float:
        if retry_after is not None:
            return min(self.cap_s, retry_after)
        return min(self.cap_s, self.base_s * 2.0 ** (retry - 1)) * rng.uniform(0.5, 1.0)


@dataclass
class PushStats:
    """Row and batch counters since the pusher was made."""

    rows_added: int = 0
    rows_sent: int = 0  # rows in batches the service answered
    rows_accepted: int = 0  # as the service counts them (resent duplicates included)
    rows_rejected: int = 0  # refused one by one by the service
    rows_dead_lettered: int = 0  # written to the dead-letter file, for any reason
    batches_sent: int = 0
    batches_retried: int = 0  # batches that needed more than one attempt
    batches_dead_lettered: int = 0  # whole batches written to the dead-letter file


@dataclass(frozen=True)
class DeadLetter:
    """One line of the dead-letter file; ``batch`` is a push body, ready to post again."""

    at: str
    reason: str
    status: int | None
    row: str | None
    batch: dict[str, Any]


@dataclass
class _Batch:
    key: str | None = None
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {k: [] for k in _KINDS})

    def __len__(self) -> int:
        return sum(len(r) for r in self.rows.values())

    def body(self, historical: bool) -> dict[str, Any]:
        return {"idempotency_key": self.key, "historical": historical, **self.rows}

    def take(self, limit: int) -> _Batch:
        """Remove and return up to ``limit`` rows, measurements first."""
        out = _Batch()
        for kind in _KINDS:
            n = min(limit - len(out), len(self.rows[kind]))
            out.rows[kind], self.rows[kind] = self.rows[kind][:n], self.rows[kind][n:]
        return out


def _stamp(moment: datetime) -> str:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"time: {moment.isoformat()} is naive; pass an aware datetime (UTC)")
    return utc_iso(moment)


def _finite(name: str, value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(f"{name}: {value} is not finite; the service accepts finite numbers")
    return float(value)


def _retry_after(answer: _Answer) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), else None."""
    text = answer.headers.get("retry-after", "").strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
        return max(0.0, (when - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):  # unparseable, or a date without a zone
        return None


def _detail(answer: _Answer) -> str:
    try:
        return str(answer.json().get("detail") or answer.text)[:500]
    except (ValueError, AttributeError):
        return answer.text[:500]


def _row_answer(answer: _Answer) -> tuple[int, list[dict[str, Any]]] | None:
    """Rows accepted and per-row rejections of a 2xx or 422 answer; None for another shape
    (a 422 for a malformed body lists fields, not rows)."""
    try:
        payload = answer.json()
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    items = payload.get("rejected", payload.get("errors"))
    if not isinstance(items, list) or not all(isinstance(i, dict) and "row" in i for i in items):
        return None
    accepted = payload.get("accepted", 0)
    return (accepted if isinstance(accepted, int) else 0), items


def read_dead_letters(path: Path | str) -> list[DeadLetter]:
    """Every entry of a dead-letter file, oldest first (empty when there is no file)."""
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [DeadLetter(**json.loads(line)) for line in lines if line.strip()]


def _ingest_id(part: str, characteristic: str) -> str:
    # the service takes ingest ids of up to 128 characters
    text = f"{part}:{characteristic}"
    return text if len(text) <= 128 else "sha256:" + hashlib.sha256(text.encode()).hexdigest()


class MesPusher:
    """Push buffered rows to the service in batches; see the module docstring for failures.

    ``client`` carries the base URL and the ``Authorization`` header of an ingest key.
    ``flush_interval_s`` None keeps the pusher synchronous (sends happen in the calling
    thread at ``batch_size`` rows, `flush` and `close`); otherwise `start` (or ``with``)
    also runs a daemon thread that flushes every interval. ``sleep`` waits out backoffs.
    """

    def __init__(
        self,
        client: PushClient,
        *,
        dead_letter_path: Path | str,
        batch_size: int = 500,
        flush_interval_s: float | None = 1.0,
        historical: bool = False,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = _time.sleep,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size: must be at least 1, got {batch_size}")
        if flush_interval_s is not None and flush_interval_s <= 0:
            raise ValueError(f"flush_interval_s: must be positive or None, got {flush_interval_s}")
        self._client = client
        self._dead_letter_path = Path(dead_letter_path)
        self._batch_size = batch_size
        self._interval = flush_interval_s
        self._historical = historical
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._key_prefix = uuid.uuid4().hex[:12]
        self._batch_count = 0
        self._pending = _Batch()
        self._stats = PushStats()
        self._lock = threading.Lock()  # the buffer, the counters, the dead-letter file
        self._send_lock = threading.Lock()  # one batch on the wire at a time, in fill order
        self._rng = random.Random()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failure: Exception | None = None  # from the background thread, raised once

    @property
    def stats(self) -> PushStats:
        """A snapshot of the counters."""
        with self._lock:
            return replace(self._stats)

    def add_measurement(
        self,
        characteristic: str,
        value: float,
        time: datetime,
        *,
        part: str | None = None,
        lot: str | None = None,
        quality: str = "good",
        ingest_id: str | None = None,
    ) -> None:
        """Buffer one reading of ``characteristic`` (in its configured unit) taken at ``time``.

        ``quality`` is good, uncertain or bad (only good values are charted). ``ingest_id``
        defaults to ``<part>:<characteristic>`` when ``part`` is given: pass your own to
        measure the same part twice. ``ValueError`` for a naive ``time``, a non-finite
        ``value`` or another ``quality``.
        """
        if quality not in _QUALITIES:
            raise ValueError(f"quality: expected one of {sorted(_QUALITIES)}, got {quality!r}")
        row: dict[str, Any] = {
            "characteristic": characteristic,
            "value": _finite("value", value),
            "time": _stamp(time),
            "quality": quality,
        }
        ingest_id = ingest_id or (_ingest_id(part, characteristic) if part else None)
        extra = {"part": part, "lot": lot, "ingest_id": ingest_id}
        row.update({k: v for k, v in extra.items() if v is not None})
        self._add("measurements", row)

    def add_verdict(
        self,
        process: str,
        part: str,
        ok: bool,
        time: datetime,
        *,
        first_pass: bool = True,
        defects: Sequence[str] = (),
    ) -> None:
        """Buffer one OK/NOK inspection of ``part`` at ``process`` (e.g. ``line2.vision``)."""
        row = {"process": process, "part": part, "ok": ok, "first_pass": first_pass}
        self._add("verdicts", {**row, "time": _stamp(time), "defects": list(defects)})

    def add_cost_event(
        self,
        scope: str,
        category: str,
        amount: float,
        time: datetime,
        *,
        currency: str = "CNY",
        note: str | None = None,
    ) -> None:
        """Buffer one cost event: ``amount`` (>= 0, in ``currency``) of ``category`` for a
        line id or the plant id (``scope``)."""
        if category not in COST_CATEGORIES:
            raise ValueError(
                f"category: expected one of {sorted(COST_CATEGORIES)}, got {category!r}"
            )
        if _finite("amount", amount) < 0:
            raise ValueError(f"amount: must be >= 0, got {amount}")
        row = {"scope": scope, "category": category, "amount": float(amount), "currency": currency}
        self._add("cost_events", {**row, "time": _stamp(time), "note": note})

    def flush(self) -> None:
        """Send every buffered row now, in this thread, in batches of at most ``batch_size``."""
        self._raise_failure()
        while self._send_one():
            pass

    def start(self) -> Self:
        """Start the background flushing thread (when ``flush_interval_s`` is set)."""
        if self._interval is not None and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="mes-pusher", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop the thread, send what is left and log the counters at INFO."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        try:
            self.flush()
        finally:
            _log.info("MES pusher closed: %s", self.stats)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _add(self, kind: str, row: dict[str, Any]) -> None:
        self._raise_failure()
        with self._lock:
            self._pending.rows[kind].append(row)
            self._stats.rows_added += 1
            full = len(self._pending) >= self._batch_size
        if full:
            self._send_one()

    def _raise_failure(self) -> None:
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure

    def _run(self) -> None:
        assert self._interval is not None
        while not self._stop.wait(self._interval):
            try:
                self.flush()
            except Exception as exc:  # handed to the caller's next add, flush or close
                _log.exception("MES pusher background flush failed; flushing thread stops")
                self._failure = exc
                return

    def _send_one(self) -> bool:
        with self._send_lock:
            with self._lock:
                batch = self._pending.take(self._batch_size)
                if not batch:
                    return False
                self._batch_count += 1
                batch.key = f"{self._key_prefix}-{self._batch_count}"
            try:
                self._deliver(batch)
            except Exception as exc:  # e.g. a client's own error type: keep the batch, then fail
                if not isinstance(exc, PusherConfigError):  # that one is kept already
                    reason = f"unexpected {type(exc).__name__}: {exc}"
                    self._write_letter(reason, None, None, batch.body(self._historical), len(batch))
                raise
        return True

    def _deliver(self, batch: _Batch) -> None:
        body = batch.body(self._historical)
        attempts = self._retry.max_attempts
        for attempt in range(1, attempts + 1):
            status: int | None = None
            wait: float | None = None
            try:
                answer = self._client.post(ENDPOINT, json=body)
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                status = answer.status_code
                if status != 429 and status < 500:
                    self._settle(batch, answer)
                    return
                problem, wait = f"{status} {_detail(answer)}", _retry_after(answer)
            if attempt < attempts:
                delay = self._retry.delay(attempt, wait, self._rng)
                _log.warning("MES batch %s: %s; retry in %.3f s", batch.key, problem, delay)
                if attempt == 1:
                    with self._lock:
                        self._stats.batches_retried += 1
                self._sleep(delay)
        reason = f"gave up after {attempts} attempts: {problem}"
        self._write_letter(reason, status, None, body, len(batch))

    def _settle(self, batch: _Batch, answer: _Answer) -> None:
        status, body = answer.status_code, batch.body(self._historical)
        if status in _CONFIG_PROBLEMS:
            detail = _detail(answer)
            self._write_letter(f"{status} {detail}", status, None, body, len(batch))
            raise PusherConfigError(
                f"the service refused the push ({status}): {_CONFIG_PROBLEMS[status]} ({detail})"
            )
        parsed = _row_answer(answer) if 200 <= status < 300 or status == 422 else None
        if parsed is None:
            self._write_letter(f"{status} {_detail(answer)}", status, None, body, len(batch))
            return
        accepted, rejections = parsed
        with self._lock:
            self._stats.batches_sent += 1
            self._stats.rows_sent += len(batch)
            self._stats.rows_accepted += accepted
            self._stats.rows_rejected += len(rejections)
        for item in rejections:
            self._reject_row(batch, item, status)

    def _reject_row(self, batch: _Batch, item: dict[str, Any], status: int) -> None:
        reason = f"{item.get('field')}: {item.get('reason')}"
        match = _ROW.match(str(item["row"]))
        if match is None or int(match[2]) >= len(batch.rows[match[1]]):
            # cannot tell which row: keep them all (the batch key keeps a replay harmless)
            self._write_letter(reason, status, str(item["row"]), batch.body(self._historical), 1)
            return
        letter = _Batch()
        letter.rows[match[1]].append(batch.rows[match[1]][int(match[2])])
        self._write_letter(reason, status, match[0], letter.body(self._historical), 1)

    def _write_letter(
        self, reason: str, status: int | None, row: str | None, body: dict[str, Any], rows: int
    ) -> None:
        """Append one entry standing for ``rows`` rows; ``row`` None: a whole batch."""
        entry = DeadLetter(utc_iso(datetime.now(UTC)), reason, status, row, body)
        with self._lock:
            self._dead_letter_path.parent.mkdir(parents=True, exist_ok=True)
            with self._dead_letter_path.open("a", encoding="utf-8") as out:
                out.write(json.dumps(asdict(entry)) + "\n")
            self._stats.rows_dead_lettered += rows
            self._stats.batches_dead_lettered += row is None
        what = row or f"batch {body['idempotency_key']} ({rows} rows)"
        log = _log.error if row is None else _log.warning
        log("MES %s dead-lettered to %s: %s", what, self._dead_letter_path, reason)
