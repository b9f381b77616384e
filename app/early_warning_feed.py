"""Early warnings fed from the live data: drift forecast, capability, data health,
autocorrelation (`alerts.early_warnings`), with the limits and spec the monitor knows.

Each live batch's good values go to the evaluator on a worker thread (about 1 ms per
characteristic); bad-quality counts come from the pipeline; a periodic check finds the
sources gone quiet. Raised, escalated and cleared warnings are kept (``active``), told to
the notifiers and published on the event stream.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from alerts.early_warnings import EarlyWarning, EarlyWarningEvaluator
from ingest.model import Measurement
from ingest.store import CharacteristicRecord
from spc import LimitSet

_log = logging.getLogger(__name__)
Listener = Callable[[EarlyWarning], None]


class EarlyWarningFeed:
    """Feeds the evaluator with each characteristic's context and data; thread-safe."""

    def __init__(
        self,
        record: Callable[[str], CharacteristicRecord | None],
        limits: Callable[[str], LimitSet | None],
        listener: Listener | None = None,
    ) -> None:
        self._record = record
        self._limits = limits
        self.listener = listener
        self._evaluator = EarlyWarningEvaluator()
        self._context: dict[str, tuple[int | None, float | None, float | None]] = {}
        self._lock = threading.Lock()  # the evaluator is not thread-safe

    def observe(
        self, measurements: Sequence[Measurement], bad: Mapping[str, int] | None = None
    ) -> list[EarlyWarning]:
        """Evaluate one live batch (good values) and the bad-quality counts beside it."""
        times: dict[str, list[datetime]] = {}
        values: dict[str, list[float]] = {}
        for m in measurements:
            times.setdefault(m.characteristic, []).append(m.time)
            values.setdefault(m.characteristic, []).append(m.value)
        bad = bad or {}
        out: list[EarlyWarning] = []
        with self._lock:
            for char in sorted(set(times) | set(bad)):
                if self._record(char) is None:
                    continue
                self._update_context(char)
                out += self._evaluator.observe(
                    char, times.get(char, []), values.get(char, []), bad.get(char, 0)
                )
        self._tell(out)
        return out

    def observe_bad(self, counts: Mapping[str, int]) -> None:
        """The pipeline's hook: live bad-quality values stored, per characteristic."""
        self.observe((), counts)

    def check_quiet(self, now: datetime) -> list[EarlyWarning]:
        """The sources silent for too long at ``now`` (call periodically)."""
        with self._lock:
            out = self._evaluator.check_quiet(now)
        self._tell(out)
        return out

    def active(self, characteristic: str | None = None) -> list[EarlyWarning]:
        """The warnings raised now (of one characteristic, or all)."""
        with self._lock:
            return self._evaluator.active(characteristic)

    def forget(self, characteristic: str) -> None:
        """A deleted characteristic: its state goes."""
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

    def _tell(self, warnings: list[EarlyWarning]) -> None:
        for w in warnings:
            log = _log.info if w.cleared else _log.warning
            log("early warning %s on %s: %s", "cleared" if w.cleared else w.kind,
                w.characteristic, w.message)  # fmt: skip
            if self.listener is not None:
                try:
                    self.listener(w)
                except Exception:
                    _log.exception("early-warning listener failed on %s", w.characteristic)
