"""Early warnings fed from the live data: drift forecast, capability, data health,
autocorrelation (`alerts.early_warnings`), with the limits and spec the monitor knows.

The checks cost about 0.4 ms per characteristic and call (a Theil–Sen slope, a Cpk
interval, an autocorrelation), too much to run for every characteristic of every ingest
batch (500 characteristics: 200 ms). So ingest only hands the values over (`submit`,
`submit_bad`: appends, microseconds), and a background task evaluates a characteristic
once it has ``every_points`` new values or its oldest waiting value is ``max_wait_s`` old
(`evaluate_due`, a few characteristics per turn of the event loop), in one call with
all of them. A periodic check finds the sources gone quiet. Raised, escalated and
cleared warnings are kept (``active``) and told to the listener (notifiers, event
stream).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from alerts.early_warnings import EarlyWarning, EarlyWarningEvaluator
from ingest.model import Measurement
from ingest.store import CharacteristicRecord
from spc import LimitSet

_log = logging.getLogger(__name__)
Listener = Callable[[EarlyWarning], None]
EVERY_POINTS = 25
MAX_WAIT_S = 5.0
MAX_PER_CALL = 100  # characteristics per evaluation round: ~40 ms of the interpreter


@dataclass
class _Pending:
    times: list[datetime] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    bad: int = 0
    since: float = 0.0  # monotonic time of the oldest waiting value


class EarlyWarningFeed:
    """Collects live values and evaluates them in coalesced calls; thread-safe."""

    def __init__(
        self,
        record: Callable[[str], CharacteristicRecord | None],
        limits: Callable[[str], LimitSet | None],
        listener: Listener | None = None,
        every_points: int = EVERY_POINTS,
        max_wait_s: float = MAX_WAIT_S,
        max_per_call: int = MAX_PER_CALL,
    ) -> None:
        self._record = record
        self._limits = limits
        self.listener = listener  # told each warning (events, the stream)
        # told the warnings of one evaluation together (notifications group data health)
        self.batch_listener: Callable[[Sequence[EarlyWarning]], None] | None = None
        self.every_points = every_points
        self.max_wait_s = max_wait_s
        self.max_per_call = max_per_call
        self._evaluator = EarlyWarningEvaluator()
        self._context: dict[str, tuple[int | None, float | None, float | None]] = {}
        self._pending: dict[str, _Pending] = {}
        self._pending_lock = threading.Lock()  # callers may be on other threads (collectors)
        self._lock = threading.Lock()  # the evaluator is not thread-safe

    def submit(self, measurements: Sequence[Measurement]) -> None:
        """A live batch's good values: kept until their characteristic is evaluated."""
        now = time.monotonic()
        with self._pending_lock:
            for m in measurements:
                p = self._pending.get(m.characteristic)
                if p is None:
                    p = self._pending[m.characteristic] = _Pending(since=now)
                p.times.append(m.time)
                p.values.append(m.value)

    def submit_bad(self, counts: Mapping[str, int]) -> None:
        """The pipeline's hook: live bad-quality values stored, per characteristic."""
        now = time.monotonic()
        with self._pending_lock:
            for char, n in counts.items():
                p = self._pending.setdefault(char, _Pending(since=now))
                p.bad += n
                p.since = min(p.since, now - self.max_wait_s)  # data health: at once

    def evaluate_due(self, force: bool = False, limit: int | None = None) -> list[EarlyWarning]:
        """Evaluate the characteristics whose values are due (all with ``force``), at most
        ``limit`` (default ``max_per_call``) of them, the longest-waiting first; returns the
        warnings raised or cleared, not yet told (`tell` them on the event loop)."""
        now = time.monotonic()
        with self._pending_lock:
            due = self._due(now, force)
            if not force:
                # a bounded number per call: the evaluation shares the interpreter with
                # the event loop that answers the API
                due = sorted(due, key=lambda c: self._pending[c].since)
                due = due[: self.max_per_call if limit is None else limit]
            batches = {c: self._pending.pop(c) for c in due}
        out: list[EarlyWarning] = []
        with self._lock:
            for char in sorted(batches):
                if self._record(char) is None:
                    continue
                p = batches[char]
                self._update_context(char)
                out += self._evaluator.observe(char, p.times, p.values, p.bad)
        return out

    def due(self) -> int:
        """How many characteristics have values due for evaluation now."""
        with self._pending_lock:
            return len(self._due(time.monotonic(), False))

    def _due(self, now: float, force: bool) -> list[str]:
        return [
            c for c, p in self._pending.items()
            if force or len(p.values) >= self.every_points or now - p.since >= self.max_wait_s
        ]  # fmt: skip

    def sources_offline(
        self, characteristics: Sequence[str], at: datetime, reason: str
    ) -> list[EarlyWarning]:
        """Sources known to be gone (a Sparkplug NDEATH or DDEATH): a quiet-source warning
        each at once, cleared by their next value; returned, not yet told."""
        with self._lock:
            return [
                w
                for char in characteristics
                if self._record(char) is not None
                for w in self._evaluator.source_offline(char, at, reason)
            ]

    def check_quiet(self, now: datetime) -> list[EarlyWarning]:
        """The sources silent for too long at ``now`` (call periodically); not yet told."""
        with self._lock:
            return self._evaluator.check_quiet(now)

    def active(self, characteristic: str | None = None) -> list[EarlyWarning]:
        """The warnings raised now (of one characteristic, or all)."""
        with self._lock:
            return self._evaluator.active(characteristic)

    def forget(self, characteristic: str) -> None:
        """A deleted characteristic: its state goes."""
        with self._pending_lock:
            self._pending.pop(characteristic, None)
        with self._lock:
            self._evaluator.remove(characteristic)
            self._context.pop(characteristic, None)

    def _update_context(self, char: str) -> None:
        record = self._record(char)
        assert record is not None
        limits = self._limits(char)
        key = (limits.version if limits else None, record.lsl, record.usl)
        if self._context.get(char) == key:
            return
        self._context[char] = key
        individuals = record.subgroup_size == 1  # X-bar limits are for means, not values
        self._evaluator.set_context(
            char,
            center=limits.center if limits else None,
            sigma=limits.sigma if limits and limits.sigma > 0 else None,
            ucl=limits.ucl if limits and individuals else None,
            lcl=limits.lcl if limits and individuals else None,
            lsl=record.lsl,
            usl=record.usl,
            unit=record.unit or None,
        )

    def tell(self, warnings: Sequence[EarlyWarning]) -> None:
        """Log the warnings and hand them to the listener (call on the event loop: the
        listener publishes events and submits notifications)."""
        if warnings:  # one line per call: a stopped line can raise hundreds at once
            raised = sum(1 for w in warnings if not w.cleared)
            _log.info("early warnings: %d raised, %d cleared", raised, len(warnings) - raised)
        for w in warnings:
            _log.debug("early warning %s on %s: %s", "cleared" if w.cleared else w.kind,
                       w.characteristic, w.message)  # fmt: skip
            if self.listener is not None:
                try:
                    self.listener(w)
                except Exception:
                    _log.exception("early-warning listener failed on %s", w.characteristic)
        if warnings and self.batch_listener is not None:
            try:
                self.batch_listener(warnings)
            except Exception:
                _log.exception("early-warning batch listener failed")
