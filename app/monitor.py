"""The monitor: glue between stored measurements, the SPC engine and the alarms.

It implements the pipeline's ``Evaluator``: newly stored good measurements go through the
engine (off the event loop), new baseline limits are persisted, violations become chart
signals and, for live data, alarms. With an event bus, live points, violations and alarm
changes are also published for the live stream.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

import anyio.to_thread

from alerts import ChartSignal, IncidentManager
from alerts.early_warnings import EarlyWarning
from alerts.signals import pattern_sizes
from app.capability_ledger import CapabilityLedger
from app.early_warning_feed import EarlyWarningFeed
from app.events import (
    Data,
    EventBus,
    alarm_data,
    point_data,
    violation_data,
    warning_data,
)
from ingest import AlarmRecord, CharacteristicRecord, Measurement, Store, StoredLimits
from spc import (
    BatchResult,
    CusumConfig,
    Engine,
    EwmaConfig,
    LimitSet,
    RollingCapability,
    RuleSignal,
)
from spc.rules import RuleSet, rule_set

_log = logging.getLogger(__name__)


def rules_of(record: CharacteristicRecord) -> RuleSet:
    """The record's rules: one preset name, or rule ids with Nelson's run lengths."""
    if len(record.rules) == 1 and not record.rules[0].isdigit():
        return rule_set(record.rules[0])
    return RuleSet(enabled=frozenset(record.rules))


@dataclass(frozen=True)
class LastPoint:
    time: datetime
    value: float


class Monitor:
    """Owns the engine rows of every characteristic and evaluates batches."""

    def __init__(
        self,
        store: Store,
        alarms: IncidentManager,
        engine: Engine,
        events: EventBus | None = None,
    ) -> None:
        self._store = store
        self._alarms = alarms
        self.engine = engine
        self.events = events  # None: nothing is published
        self._rows: dict[str, int] = {}
        self._ids: list[str] = []  # row -> characteristic id
        self._rules: dict[str, RuleSet] = {}
        self._records: dict[str, CharacteristicRecord] = {}
        self.last: dict[str, LastPoint] = {}
        self.signal_counts: dict[tuple[str, str, str], int] = {}
        self.on_engine_time: Callable[[float], None] | None = None  # seconds per update
        self.early_warnings: EarlyWarningFeed | None = None  # fed each live batch
        self._revisions: dict[str, int] = {}  # bumped whenever a status would change
        self.ledger = CapabilityLedger(store)  # hourly sums: Cpk over any grading period

    def register(self, record: CharacteristicRecord) -> None:
        """Give a characteristic an engine row (a no-op if it has one)."""
        if record.id in self._rows:
            return
        self._add_row(record)

    def unregister(self, characteristic: str) -> None:
        """Stop charting a characteristic; its points become unknown from now on.

        The engine keeps the orphaned row (rows are never reused), so a batch already
        in flight cannot write into another characteristic's state.
        """
        self._rows.pop(characteristic, None)
        self._records.pop(characteristic, None)
        self._rules.pop(characteristic, None)
        self.last.pop(characteristic, None)
        self.ledger.forget(characteristic)
        self._bump(characteristic)

    async def replace(self, record: CharacteristicRecord) -> None:
        """Apply an edited definition: a fresh engine row, limits and tail restored.

        The chart and subgroup size must be unchanged: the stored limits are only valid
        for the chart they were computed for. Call it between pipeline batches
        (``Pipeline.exclusive``): a batch stored but not yet charted would otherwise be
        replayed from the store and then charted again. The old row is left unused
        (engine rows are never freed; an edit costs one row of state).
        """
        self._add_row(record)
        self.ledger.forget(record.id)  # new limits, maybe a new shift: a fresh chain
        await self._restore_one(record.id, self._rows[record.id])
        self._bump(record.id)

    def _add_row(self, record: CharacteristicRecord) -> None:
        self._rules[record.id] = rules_of(record)
        self._rows[record.id] = self.engine.add_characteristic(
            record.lsl,
            record.usl,
            rules=self._rules[record.id],
            ewma=EwmaConfig(*record.ewma) if record.ewma else None,
            cusum=CusumConfig(*record.cusum) if record.cusum else None,
            subgroup_size=record.subgroup_size,
            dispersion="s" if record.chart == "xbar_s" else "r",
        )
        self._ids.append(record.id)
        self._records[record.id] = record

    def __contains__(self, characteristic: object) -> bool:
        return characteristic in self._rows

    @property
    def characteristics(self) -> list[CharacteristicRecord]:
        return list(self._records.values())

    def locate(self, characteristic: str) -> tuple[str, str]:
        """A characteristic's line and qualified process ("line1", "line1.turning")."""
        record = self._records.get(characteristic)
        if record is None:
            return "", ""
        return record.line, f"{record.line}.{record.process}"

    def process_ids(self) -> set[str]:
        """The qualified processes of the charted characteristics ("line1.turning")."""
        return {f"{r.line}.{r.process}" for r in self._records.values()}

    def line_ids(self) -> set[str]:
        return {r.line for r in self._records.values()}

    def record(self, characteristic: str) -> CharacteristicRecord | None:
        return self._records.get(characteristic)

    def revision(self, characteristic: str) -> int:
        """A counter that changes whenever the characteristic's live status may change
        (new points, limits, alarms, its definition): status answers are cached on it."""
        return self._revisions.get(characteristic, 0)

    def _bump(self, characteristic: str) -> None:
        self._revisions[characteristic] = self._revisions.get(characteristic, 0) + 1

    def install_limits(self, characteristic: str, limits: LimitSet) -> None:
        """Put a stored limit set in force (a recalculation)."""
        self.engine.restore_limits(self._rows[characteristic], limits)
        self._bump(characteristic)

    def restart_statistics(self, characteristic: str) -> None:
        """Its run rules, EWMA and CUSUM start afresh (an incident on it was resolved)."""
        row = self._rows.get(characteristic)
        if row is not None and self.engine.limits(row) is not None:
            self.engine.restart_statistics(row)
            self._bump(characteristic)

    def row(self, characteristic: str) -> int:
        """The engine row of a registered characteristic (KeyError if unknown)."""
        return self._rows[characteristic]

    def limits(self, characteristic: str) -> LimitSet | None:
        return self.engine.limits(self._rows[characteristic])

    def capability(self, characteristic: str) -> RollingCapability | None:
        return self.engine.rolling_capability(self._rows[characteristic])

    def baseline_progress(self, characteristic: str) -> tuple[int, int]:
        return self.engine.baseline_progress(self._rows[characteristic])

    async def restore(self) -> None:
        """Rebuild engine state from the store: active limits, then a replay of the tail.

        The replay covers the capability window, or the whole Phase I baseline while
        limits are not frozen yet, and starts on a subgroup boundary so that subgroups
        re-form exactly as they were.
        """
        for char_id, row in list(self._rows.items()):
            await self._restore_one(char_id, row)
        _log.info("engine state restored for %d characteristics", len(self._rows))

    async def _restore_one(self, char_id: str, row: int) -> None:
        engine = self.engine
        stored = await self._store.active_limits(char_id)
        if stored is not None:
            engine.restore_limits(row, stored.limits)
        n = self._records[char_id].subgroup_size
        span = engine.window if stored else max(engine.window, engine.baseline_size * n)
        # subgroups must re-form where they were: only then does the count matter
        total = await self._store.count_charted(char_id) if n > 1 else 0
        self.ledger.align(char_id, total, n)  # its subgroups start where the engine's do
        tail = await self._store.charted_tail(char_id, span + total % n)
        if tail:
            self.last.pop(char_id, None)
            await self._run_engine(tail, live=False)

    async def evaluate(self, measurements: Sequence[Measurement], live: bool) -> None:
        publish = live and self.events is not None
        in_force = self._versions_in_force(measurements) if publish else {}
        signals = await self._run_engine(measurements, live)
        self.ledger.observe(self._records, measurements)  # newly stored: counted once
        if publish:
            try:
                self._publish_live(measurements, in_force, signals)
            except Exception:  # the stream is a convenience: alarms must still be raised
                _log.exception("could not publish the live events of a batch")
        if live:
            # the judged points count towards an incident's automatic resolution
            charted = {c for c in {m.characteristic for m in measurements} if c in self._rows}
            limited = {c for c in charted if self.limits(c) is not None}  # once per batch
            judged = [
                (m.characteristic, m.time) for m in measurements if m.characteristic in limited
            ]
            if signals or judged:
                await self._alarms.handle(signals, judged)
            if self.early_warnings is not None:
                self.early_warnings.submit(measurements)  # evaluated in the background

    def publish_warning(self, warning: EarlyWarning) -> None:
        """The early-warning feed's hook: a ``warning`` event for each raised or cleared one."""
        self._publish("warning", warning.characteristic, warning_data(warning))

    def publish_alarm(self, alarm: AlarmRecord) -> None:
        """The alarm manager's change hook: an ``alarm`` event for every saved state."""
        for characteristic in alarm.characteristics:  # each one's status shows the incident
            self._bump(characteristic)
        self._publish("alarm", alarm.characteristic, alarm_data(alarm))

    def _versions_in_force(self, items: Sequence[Measurement]) -> dict[str, int | None]:
        """The limit version each charted characteristic is judged against (None: Phase I)."""
        versions: dict[str, int | None] = {}
        for char_id in {m.characteristic for m in items if m.characteristic in self._rows}:
            limits = self.limits(char_id)
            versions[char_id] = limits.version if limits else None
        return versions

    def _publish_live(
        self,
        items: Sequence[Measurement],
        in_force: Mapping[str, int | None],
        signals: Sequence[ChartSignal],
    ) -> None:
        # a batch's points first, then its violations (each in batch order)
        for m in items:
            if m.characteristic in in_force:  # the data only when a subscriber wants it
                data = partial(point_data, m, in_force[m.characteristic])
                self._publish("point", m.characteristic, data)
        for s in signals:
            self._publish("violation", s.characteristic, violation_data(s))

    def _publish(self, kind: str, characteristic: str, data: Data) -> None:
        if self.events is None:
            return
        record = self._records.get(characteristic)
        self.events.publish(
            kind,
            data,
            characteristic=characteristic,
            line=record.line if record else None,
            process=record.process if record else None,
        )

    async def _run_engine(self, items: Sequence[Measurement], live: bool) -> list[ChartSignal]:
        # a characteristic deleted while its points were being stored is not charted
        items = [m for m in items if m.characteristic in self._rows]
        rows = [self._rows[m.characteristic] for m in items]
        values = [m.value for m in items]
        result, seconds = await anyio.to_thread.run_sync(self._timed_process, rows, values, live)
        if self.on_engine_time is not None:
            self.on_engine_time(seconds)
        for m in items:
            self.last[m.characteristic] = LastPoint(m.time, m.value)
        for characteristic in {m.characteristic for m in items}:
            self._bump(characteristic)
        for row, limits in result.new_limits.items():
            char_id = self._ids[row]
            reason = f"Phase I baseline: first {limits.baseline_n} points"
            completed = items[result.limit_positions[row]].time  # the last baseline point
            stored = StoredLimits(
                char_id, limits, datetime.now(UTC), reason, effective_at=completed
            )
            await self._store.save_limits(stored)
            _log.info(
                "limits v%d frozen for %s: CL=%.6g UCL=%.6g LCL=%.6g",
                limits.version,
                char_id,
                limits.center,
                limits.ucl,
                limits.lcl,
            )
        return [self._to_chart_signal(s, items[s.position]) for s in result.signals]

    def _timed_process(
        self, rows: list[int], values: list[float], live: bool
    ) -> tuple[BatchResult, float]:
        started = time.perf_counter()
        result = self.engine.process(rows, values, live)
        return result, time.perf_counter() - started

    def _to_chart_signal(self, s: RuleSignal, m: Measurement) -> ChartSignal:
        key = (m.characteristic, s.rule, s.chart)
        self.signal_counts[key] = self.signal_counts.get(key, 0) + 1
        return ChartSignal(
            m.characteristic,
            m.time,
            s.value,
            s.rule,
            s.chart,
            s.side,
            s.limit,
            s.limit_version,
            pattern_sizes(self._rules[m.characteristic], s.rule),
            m.value,
        )
