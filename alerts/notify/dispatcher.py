"""Fan-out of notifications to notifiers, each behind its own queue and retry loop.

``submit`` is synchronous, cheap and never raises: it filters by each notifier's minimum
severity and puts the notification on that notifier's queue. One worker task per
notifier sends in order, retrying retryable failures with exponential backoff and
jitter; what still fails after the retry budget, fails for good, overflows a queue or is
left at shutdown goes to a JSON Lines dead-letter file with the reason. A slow or broken
receiver therefore only delays its own queue.

Dead-letter line: ``{"dead_lettered_at": ISO 8601, "notifier": name, "reason": text,
"attempts": n, "notification": {...}}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

from alerts.notify.errors import NotifyError
from alerts.notify.model import Notification, Notifier, severity_rank

_log = logging.getLogger(__name__)
_CLOSE_TIMEOUT_S = 5.0  # per notifier, after the flush deadline


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one notification on one notifier.

    Attempt k (1-based) failing is followed by a pause of ``min(max_delay_s,
    base_delay_s * 2**(k-1))`` seconds, of which a random fraction up to ``jitter`` is
    taken off (so many dispatchers do not retry in step). ``attempt_timeout_s`` bounds
    one ``send``; ``max_attempts`` is the budget, after which the notification is
    dead-lettered.
    """

    max_attempts: int = 5
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0
    jitter: float = 0.5
    attempt_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts must be at least 1")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("RetryPolicy.jitter is a fraction between 0 and 1")
        if self.base_delay_s < 0 or self.max_delay_s < 0 or self.attempt_timeout_s <= 0:
            raise ValueError("RetryPolicy delays must be >= 0 and the timeout > 0 (seconds)")


def backoff_delay(policy: RetryPolicy, attempt: int, rand: float) -> float:
    """Pause in seconds after failed attempt ``attempt`` (1-based); ``rand`` in [0, 1)."""
    ceiling = min(policy.max_delay_s, policy.base_delay_s * 2.0 ** (attempt - 1))
    return ceiling * (1.0 - policy.jitter * rand)


@dataclass(frozen=True)
class NotifierStats:
    """Counters of one notifier since the dispatcher was built.

    ``sent``: notifications delivered; ``failed``: failed attempts (retried or not);
    ``dead_lettered``: notifications given up; ``queued``: waiting now.
    """

    sent: int = 0
    failed: int = 0
    dead_lettered: int = 0
    queued: int = 0


class _Lane:
    """One notifier with its queue, worker and counters."""

    def __init__(self, notifier: Notifier, queue_size: int) -> None:
        self.notifier = notifier
        self.queue: asyncio.Queue[Notification] = asyncio.Queue(maxsize=queue_size)
        self.worker: asyncio.Task[None] | None = None
        self.sent = self.failed = self.dead_lettered = 0


class Dispatcher:
    """Delivers notifications to ``notifiers`` (distinct names), dead-letters to a file.

    ``submit`` must be called on the event loop's thread (or before ``start``). The
    dispatcher owns the notifiers: ``aclose`` closes them.
    """

    def __init__(
        self,
        notifiers: Sequence[Notifier],
        dead_letter_path: Path,
        *,
        policy: RetryPolicy | None = None,
        queue_size: int = 1000,
        rand: Callable[[], float] = random.random,
    ) -> None:
        names = [n.name for n in notifiers]
        if len(set(names)) != len(names):
            raise ValueError(f"notifier names must be distinct, got {names}")
        for notifier in notifiers:
            severity_rank(notifier.min_severity)
        self._lanes = [_Lane(n, queue_size) for n in notifiers]
        self._dead_letter_path = dead_letter_path
        self._policy = policy or RetryPolicy()
        self._rand = rand
        self._closed = False

    def submit(self, n: Notification) -> None:
        """Queue ``n`` for every notifier whose minimum severity it reaches; never raises."""
        try:
            rank = severity_rank(n.severity)
            for lane in self._lanes:
                if rank < severity_rank(lane.notifier.min_severity):
                    continue
                if self._closed:
                    self._dead_letter(lane, n, "submitted after the dispatcher was closed", 0)
                    continue
                try:
                    lane.queue.put_nowait(n)
                except asyncio.QueueFull:
                    self._dead_letter(lane, n, "queue full: the receiver is too far behind", 0)
        except Exception:  # the caller is alarm handling: it must go on whatever happens here
            _log.exception("submitting notification %r failed", getattr(n, "key", n))

    async def start(self) -> None:
        """Start one worker task per notifier (on the running loop)."""
        for lane in self._lanes:
            if lane.worker is None:
                name = f"notifier:{lane.notifier.name}"
                lane.worker = asyncio.create_task(self._work(lane), name=name)

    async def aclose(self, timeout_s: float = 10.0) -> None:
        """Stop taking notifications, deliver what is queued for up to ``timeout_s``
        seconds, dead-letter what is left, then close the notifiers. Idempotent."""
        if self._closed:
            return
        self._closed = True
        pending = [lane for lane in self._lanes if lane.worker is not None]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await asyncio.gather(*(lane.queue.join() for lane in pending))
        for lane in self._lanes:
            if lane.worker is not None:
                lane.worker.cancel()
                await asyncio.wait([lane.worker])  # unlike awaiting it, keeps our own cancel
                lane.worker = None
            self._dead_letter_leftovers(lane)
            try:
                async with asyncio.timeout(_CLOSE_TIMEOUT_S):
                    await lane.notifier.aclose()
            except Exception:
                _log.exception("closing notifier %s failed", lane.notifier.name)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def stats(self) -> dict[str, NotifierStats]:
        """A snapshot of every notifier's counters, by notifier name."""
        return {
            lane.notifier.name: NotifierStats(
                lane.sent, lane.failed, lane.dead_lettered, lane.queue.qsize()
            )
            for lane in self._lanes
        }

    async def _work(self, lane: _Lane) -> None:
        while True:
            n = await lane.queue.get()
            try:
                await self._deliver(lane, n)
            except asyncio.CancelledError:
                self._dead_letter(lane, n, "not delivered before shutdown", 0)
                raise
            finally:
                lane.queue.task_done()

    async def _deliver(self, lane: _Lane, n: Notification) -> None:
        policy, name = self._policy, lane.notifier.name
        for attempt in range(1, policy.max_attempts + 1):
            try:
                async with asyncio.timeout(policy.attempt_timeout_s):
                    await lane.notifier.send(n)
            except NotifyError as exc:
                error, retryable = exc.message, exc.retryable
            except TimeoutError:
                error, retryable = f"no answer within {policy.attempt_timeout_s} s", True
            except Exception as exc:  # a notifier bug: log it, treat it as transient
                _log.exception("notifier %s raised an unexpected error", name)
                error, retryable = f"{type(exc).__name__}: {exc}", True
            else:
                lane.sent += 1
                return
            lane.failed += 1
            if not retryable:
                self._dead_letter(lane, n, f"not retryable: {error}", attempt)
                return
            if attempt == policy.max_attempts:
                self._dead_letter(lane, n, f"gave up after {attempt} attempts: {error}", attempt)
                return
            _log.warning("notifier %s attempt %d for %s failed: %s", name, attempt, n.key, error)
            await asyncio.sleep(backoff_delay(policy, attempt, self._rand()))

    def _dead_letter_leftovers(self, lane: _Lane) -> None:
        while not lane.queue.empty():
            self._dead_letter(lane, lane.queue.get_nowait(), "not delivered before shutdown", 0)
            lane.queue.task_done()

    def _dead_letter(self, lane: _Lane, n: Notification, reason: str, attempts: int) -> None:
        lane.dead_lettered += 1
        _log.error("notification %s dead-lettered for %s: %s", n.key, lane.notifier.name, reason)
        record = {
            "dead_lettered_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "notifier": lane.notifier.name,
            "reason": reason,
            "attempts": attempts,
            "notification": n.to_dict(),
        }
        line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        try:  # one short append; rare enough not to need a thread
            self._dead_letter_path.parent.mkdir(parents=True, exist_ok=True)
            with self._dead_letter_path.open("a", encoding="utf-8") as f:
                f.write(line)
        except OSError:
            _log.exception("cannot write the dead-letter file %s", self._dead_letter_path)
