"""The one ingest pipeline: collectors and the HTTP push submit batches; it stores, then evaluates.

Order of work per flush: dead letters, then measurements/verdicts/costs (one transaction
each), then acknowledgements to the senders (MQTT PUBACK, HTTP response), then SPC
evaluation of the newly stored good-quality measurements. A store failure is retried with
backoff and the senders stay unacknowledged meanwhile, so nothing accepted is lost; the
bounded queue turns a slow store into backpressure on the collectors.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections import deque
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Container,
    Iterable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from ingest.errors import StoreError
from ingest.model import CostEvent, DeadLetter, InspectionVerdict, Measurement, Quality
from ingest.store import Store

_log = logging.getLogger(__name__)

MAX_BATCH_POINTS = 5000
MAX_QUEUED_SUBMISSIONS = 1000
# submissions foreign threads may have on their way to the queue before they wait
MAX_IN_TRANSIT = 64
RETRY_DELAYS_S = (0.1, 0.5, 1.0, 2.0, 5.0)


@dataclass
class Submission:
    """What one sender hands over at once (one MQTT message, one HTTP batch, ...).

    ``live`` is False for historical data (imports, replays): stored and charted, never
    alarmed. ``on_stored`` runs on the event loop once everything is committed (MQTT
    acknowledges there); ``on_evaluated`` once the new points went through SPC (the HTTP
    push answers there, so a client that reads status next sees its own points).
    """

    measurements: list[Measurement] = field(default_factory=list)
    verdicts: list[InspectionVerdict] = field(default_factory=list)
    cost_events: list[CostEvent] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    live: bool = True
    on_stored: Callable[[], None] | None = None
    on_evaluated: Callable[[], None] | None = None

    @property
    def size(self) -> int:
        return len(self.measurements) + len(self.verdicts) + len(self.cost_events)


@dataclass(frozen=True)
class FlushResult:
    """What one flush stored: new rows (duplicates by ingest_id are not counted)."""

    measurements: list[Measurement]
    verdicts: int
    cost_events: int
    dead_letters: list[DeadLetter]


class Evaluator(Protocol):
    """Receives newly stored good-quality measurements, in arrival order."""

    async def evaluate(self, measurements: Sequence[Measurement], live: bool) -> None: ...


class PipelineObserver(Protocol):
    """Hook for metrics: called after each flush."""

    def flushed(self, result: FlushResult, seconds: float) -> None: ...


def unknown_characteristic(m: Measurement, now: datetime) -> DeadLetter:
    return DeadLetter(
        received_at=now,
        source=m.source,
        reason=f"characteristic: unknown characteristic {m.characteristic!r}",
        payload=json.dumps(
            {
                "characteristic": m.characteristic,
                "value": m.value,
                "time": m.time.isoformat(),
                "ingest_id": m.ingest_id,
            }
        ),
    )


def _notify(callbacks: Iterable[Callable[[], None] | None]) -> None:
    for callback in callbacks:
        if callback is None:
            continue
        try:
            callback()
        except Exception:  # an acknowledgement must never stop the pipeline
            _log.exception("notifying a sender failed")


class Pipeline:
    """Bounded queue -> batch -> store -> acknowledge -> evaluate."""

    def __init__(
        self,
        store: Store,
        known_characteristics: Container[str],
        evaluator: Evaluator,
        observer: PipelineObserver | None = None,
        max_batch: int = MAX_BATCH_POINTS,
        max_queued: int = MAX_QUEUED_SUBMISSIONS,
    ) -> None:
        self._store = store
        self._known = known_characteristics
        self._evaluator = evaluator
        self._observer = observer
        self._max_batch = max_batch
        self._queue: asyncio.Queue[Submission] = asyncio.Queue(max_queued)
        # submissions from foreign threads on their way to the queue, oldest first, moved
        # into it by one task in that order (see submit_from_thread)
        self._handover: deque[Submission] = deque()
        self._handover_slots = threading.Semaphore(MAX_IN_TRANSIT)
        self._mover: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._busy = False
        self._flushing = asyncio.Lock()  # held for each batch's store-and-evaluate
        self.degraded = False
        # told the live bad-quality values stored per characteristic (data health)
        self.on_bad_quality: Callable[[Mapping[str, int]], None] | None = None
        """True while the store refuses writes (reported by /healthz)."""
        # told the verdicts of each flush that stored new ones, historical then live
        # (attribute charts); awaited before the senders hear that evaluation is done
        self.on_verdicts: Callable[[Sequence[InspectionVerdict], bool], Awaitable[None]] | None = (
            None
        )

    @property
    def queued(self) -> int:
        """Submissions waiting: in the queue, or on their way to it from other threads."""
        return self._queue.qsize() + len(self._handover)

    async def submit(self, submission: Submission) -> None:
        """Queue a submission; waits while the queue is full (backpressure)."""
        await self._queue.put(submission)

    async def submit_and_wait(self, submission: Submission) -> None:
        """Queue a submission and return once it is stored and evaluated."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        inner = submission.on_evaluated

        def finished() -> None:
            if inner is not None:
                inner()
            if not done.done():
                done.set_result(None)

        submission.on_evaluated = finished
        await self.submit(submission)
        await done

    def submit_from_thread(self, submission: Submission, timeout_s: float | None = None) -> None:
        """Queue from a foreign thread (paho's) without waiting for the event loop each
        time; submissions keep their order. Only when ``MAX_IN_TRANSIT`` submissions are
        still on their way does the thread wait, so a full queue blocks it (flow
        control); TimeoutError after ``timeout_s``. Waiting for the loop at every message
        cost a switch of interpreter per message."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("the pipeline is not running")
        if not self._handover_slots.acquire(timeout=timeout_s):
            raise TimeoutError(f"the pipeline's queue stayed full for {timeout_s} s")
        self._handover.append(submission)
        loop.call_soon_threadsafe(self._move_handover)

    def _move_handover(self) -> None:
        """(On the loop) one task moves the handed-over submissions, oldest first: a task
        per submission would let a later one overtake an earlier one at a full queue."""
        if self._mover is None or self._mover.done():
            self._mover = asyncio.get_running_loop().create_task(self._move_all())

    async def _move_all(self) -> None:
        while self._handover:
            try:
                await self.submit(self._handover[0])
            finally:  # cancelled at shutdown: unacknowledged, the sender sends it again
                self._handover.popleft()
                self._handover_slots.release()

    async def run(self) -> None:
        """Process submissions until cancelled."""
        self._loop = asyncio.get_running_loop()
        while True:
            group = [await self._queue.get()]
            points = group[0].size
            while points < self._max_batch and not self._queue.empty():
                nxt = self._queue.get_nowait()
                group.append(nxt)
                points += nxt.size
            self._busy = True
            try:
                async with self._flushing:
                    await self._flush(group)
            finally:
                self._busy = False

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """Hold the pipeline between batches: no batch is half stored and half evaluated.

        For changes to the evaluator's state that must not interleave with a batch (an
        edited characteristic replaying its stored tail, new limits installed); keep it
        short: ingest waits meanwhile (submissions queue up, nothing is lost).
        """
        async with self._flushing:
            yield

    async def drain(self, timeout_s: float | None = None) -> bool:
        """Wait until everything queued so far is flushed; False if ``timeout_s`` ran out.

        Used at shutdown (bounded: a store that stays down must not hang the service;
        what is still queued is then unacknowledged and the broker redelivers it).
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        while self._busy or not self._queue.empty() or self._handover:
            if deadline is not None and loop.time() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    async def _flush(self, group: list[Submission]) -> None:
        started = asyncio.get_running_loop().time()
        now = datetime.now(UTC)
        dead: list[DeadLetter] = [d for s in group for d in s.dead_letters]
        kept: list[tuple[Measurement, bool]] = []
        for sub in group:
            for m in sub.measurements:
                if m.characteristic in self._known:
                    kept.append((m, sub.live))
                else:
                    dead.append(unknown_characteristic(m, now))
        verdicts = [v for s in group for v in s.verdicts]
        costs = [c for s in group for c in s.cost_events]
        result = await self._store_with_retry([m for m, _ in kept], verdicts, costs, dead)
        _notify(sub.on_stored for sub in group)
        await self._evaluate(result.measurements, kept)
        if result.verdicts:  # none new (a resend): nothing to chart
            await self._tell_verdicts(group)
        _notify(sub.on_evaluated for sub in group)
        if self._observer is not None:
            self._observer.flushed(result, asyncio.get_running_loop().time() - started)

    async def _store_with_retry(
        self,
        measurements: list[Measurement],
        verdicts: list[InspectionVerdict],
        costs: list[CostEvent],
        dead: list[DeadLetter],
    ) -> FlushResult:
        # Each step's result is kept across attempts: a retry after a partial failure must
        # neither re-report stored dead letters as new nor lose the fresh measurements.
        attempt = 0
        dead_done: list[DeadLetter] | None = None
        fresh: list[Measurement] | None = None
        n_verdicts: int | None = None
        n_costs: int | None = None
        while True:
            try:
                if dead_done is None:
                    if dead:
                        await self._store.add_dead_letters(dead)
                    dead_done = dead
                if fresh is None:
                    fresh = await self._store.add_measurements(measurements)
                if n_verdicts is None:
                    n_verdicts = await self._store.add_verdicts(verdicts) if verdicts else 0
                if n_costs is None:
                    n_costs = await self._store.add_cost_events(costs) if costs else 0
                if self.degraded:
                    _log.warning("store is writable again after %d failed attempts", attempt)
                self.degraded = False
                return FlushResult(fresh, n_verdicts, n_costs, dead_done)
            except StoreError as exc:
                self.degraded = True
                delay = RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)]
                _log.error("store write failed (%s); retrying in %.1f s", exc, delay)
                attempt += 1
                await asyncio.sleep(delay)

    def _tell_bad(self, bad: Iterable[Measurement]) -> None:
        counts: dict[str, int] = {}
        for m in bad:
            counts[m.characteristic] = counts.get(m.characteristic, 0) + 1
        if counts and self.on_bad_quality is not None:
            try:
                self.on_bad_quality(counts)
            except Exception:  # data health is advice: ingest goes on
                _log.exception("bad-quality hook failed")

    async def _tell_verdicts(self, group: list[Submission]) -> None:
        hook = self.on_verdicts
        if hook is None:
            return
        for live in (False, True):
            part = [v for sub in group if sub.live is live for v in sub.verdicts]
            if not part:
                continue
            try:
                await hook(part, live)
            except Exception:  # charting is downstream of storing: ingest goes on
                _log.exception("the verdict hook failed on %d verdicts", len(part))

    async def _evaluate(
        self, fresh: list[Measurement], kept: list[tuple[Measurement, bool]]
    ) -> None:
        if not fresh:
            return
        live_flags = {m.ingest_id: live for m, live in kept}
        good = [m for m in fresh if m.quality is Quality.GOOD]
        for live in (False, True):
            part = [m for m in good if live_flags.get(m.ingest_id, True) is live]
            if not part:
                continue
            try:
                await self._evaluator.evaluate(part, live)
            except Exception:  # evaluation bugs must not stop ingest; data is already stored
                _log.exception("SPC evaluation of %d measurements failed", len(part))
        # after the good values: a batch's bad ones are taken as its latest news
        bad = (m for m in fresh if m.quality is Quality.BAD and live_flags.get(m.ingest_id, True))
        self._tell_bad(bad)
