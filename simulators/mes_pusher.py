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
  the next add, flush or close); `close` then sends nothing more, it dead-letters the rest;
- any other answer (400, a 422 for a malformed body, 413 for a batch over the service's
  body limit: lower ``batch_size``): the batch is dead-lettered with the service's detail;
- any other exception from the client: the batch is dead-lettered, the exception raised.

The dead-letter file holds JSON Lines ``{"at", "reason", "status", "row", "batch"}``
where ``batch`` is a push body that can be posted again as it is (`read_dead_letters`).
"""

from __future__ import annotations

import logging
import random
import threading
import time as _time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

from simulators import mes_wire as wire
from simulators.mes_wire import DeadLetter, PushClient, PushStats, RetryPolicy, read_dead_letters

_log = logging.getLogger(__name__)
__all__ = [
    "DeadLetter",
    "MesPusher",
    "PushClient",
    "PushStats",
    "PusherConfigError",
    "RetryPolicy",
    "read_dead_letters",
]


class PusherConfigError(RuntimeError):
    """The service refuses the pusher itself (key, role or URL): retrying cannot help."""


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
        self._pending = wire.Batch()
        self._stats = PushStats()
        self._lock = threading.Lock()  # the buffer, the counters, the dead-letter file
        self._send_lock = threading.Lock()  # one batch on the wire at a time, in fill order
        self._rng = random.Random()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failure: Exception | None = None  # from the background thread, raised once
        self._refused: PusherConfigError | None = None  # the service refuses us: stop sending

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
        row = wire.measurement_row(
            characteristic, value, time, part=part, lot=lot, quality=quality, ingest_id=ingest_id
        )
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
        row = wire.verdict_row(process, part, ok, time, first_pass=first_pass, defects=defects)
        self._add("verdicts", row)

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
        row = wire.cost_event_row(scope, category, amount, time, currency=currency, note=note)
        self._add("cost_events", row)

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
        """Stop the thread, send what is left (after a refusal: dead-letter it), log counters."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        try:
            if self._refused is None:
                self.flush()
            else:
                while batch := self._take():
                    reason = f"not sent: {self._refused}"
                    self._write_letter(reason, None, None, batch.body(self._historical), len(batch))
                self._raise_failure()  # a refusal the background thread met, not raised yet
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

    def _take(self) -> wire.Batch | None:
        """The next batch to send, with its key; None when nothing is buffered."""
        with self._lock:
            batch = self._pending.take(self._batch_size)
            if not batch:
                return None
            self._batch_count += 1
            batch.key = f"{self._key_prefix}-{self._batch_count}"
        return batch

    def _send_one(self) -> bool:
        with self._send_lock:
            batch = self._take()
            if batch is None:
                return False
            try:
                self._deliver(batch)
            except PusherConfigError as exc:  # the batch is kept already
                self._refused = exc
                raise
            except Exception as exc:  # e.g. a client's own error type: keep the batch, then fail
                reason = f"unexpected {type(exc).__name__}: {exc}"
                self._write_letter(reason, None, None, batch.body(self._historical), len(batch))
                raise
        return True

    def _deliver(self, batch: wire.Batch) -> None:
        body = batch.body(self._historical)
        attempts = self._retry.max_attempts
        for attempt in range(1, attempts + 1):
            status: int | None = None
            wait: float | None = None
            try:
                answer = self._client.post(wire.ENDPOINT, json=body)
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                status = answer.status_code
                if status != 429 and status < 500:
                    self._settle(batch, answer)
                    return
                problem, wait = f"{status} {wire.error_detail(answer)}", wire.retry_after_s(answer)
            if attempt < attempts:
                delay = self._retry.delay(attempt, wait, self._rng)
                _log.warning("MES batch %s: %s; retry in %.3f s", batch.key, problem, delay)
                if attempt == 1:
                    with self._lock:
                        self._stats.batches_retried += 1
                self._sleep(delay)
        reason = f"gave up after {attempts} attempts: {problem}"
        self._write_letter(reason, status, None, body, len(batch))

    def _settle(self, batch: wire.Batch, answer: wire.Answer) -> None:
        status, body = answer.status_code, batch.body(self._historical)
        problem = wire.CONFIG_PROBLEMS.get(status)
        parsed = wire.row_answer(answer) if 200 <= status < 300 or status == 422 else None
        if parsed is None:  # a configuration problem or another shape: keep the whole batch
            detail = wire.error_detail(answer)
            self._write_letter(f"{status} {detail}", status, None, body, len(batch))
            if problem is not None:
                raise PusherConfigError(
                    f"the service refused the push ({status}): {problem} ({detail})"
                )
            return
        accepted, rejections = parsed
        with self._lock:
            self._stats.batches_sent += 1
            self._stats.rows_sent += len(batch)
            self._stats.rows_accepted += accepted
            self._stats.rows_rejected += len(rejections)
        for reason, row, letter in batch.rejected_rows(rejections):
            self._write_letter(reason, status, row, letter.body(self._historical), 1)

    def _write_letter(
        self, reason: str, status: int | None, row: str | None, body: dict[str, Any], rows: int
    ) -> None:
        """Append one entry standing for ``rows`` rows; ``row`` None: a whole batch."""
        with self._lock:
            wire.append_dead_letter(self._dead_letter_path, reason, status, row, body)
            self._stats.rows_dead_lettered += rows
            self._stats.batches_dead_lettered += row is None
        what = row or f"batch {body['idempotency_key']} ({rows} rows)"
        log = _log.error if row is None else _log.warning
        log("MES %s dead-lettered to %s: %s", what, self._dead_letter_path, reason)
