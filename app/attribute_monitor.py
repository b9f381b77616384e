"""Live p charts of the first-pass inspection verdicts, one per process.

The pipeline's ``on_verdicts`` hook feeds ``AttributeMonitor.observe`` with the verdicts
it stored. Only first submissions count (a re-inspection after rework is not the
process); each process's verdicts go, in (time, ingest_id) order within a batch, into an
``spc.attribute_engine.AttributeChart``: ``subgroup_size`` consecutive verdicts make one
subgroup, the first ``baseline_subgroups`` the Phase I baseline. Historical verdicts are
charted like live ones (their points are judged), but only live ones publish
``violation`` events; no incident is opened (incidents are keyed by characteristic).

The frozen limits are saved in the store's limit sets under the pseudo characteristic
``<line>.<process>#p<n>`` (``#`` never occurs in a characteristic id; the subgroup size
is part of the key because the limits belong to it). At start each process is rebuilt
from the store: a replay of its first k·n first-pass verdicts (the baseline's points;
their limits are saved again if none were), the saved limits installed, then a replay of
the newest ``history`` subgroups, aligned on the count of stored first-pass verdicts, and
of the open subgroup. Live, subgroups are cut in arrival order (a batch sorted by time);
the replay cuts them in time order: they differ only where verdicts arrived late.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from app.events import EventBus
from ingest import InspectionVerdict, Store, StoredLimits
from spc import LimitSet
from spc.attribute_engine import (
    AttributeChart,
    AttributeLimits,
    AttributePoint,
    AttributeSignal,
)

_log = logging.getLogger(__name__)
CHART = "p"
BEGINNING = datetime.min.replace(tzinfo=UTC)
END_OF_TIME = datetime.max.replace(tzinfo=UTC)
HISTORY_SUBGROUPS = 1000
"""Subgroups kept in memory per process (and replayed at start)."""
REMEMBERED_IDS = 20_000
"""Recent verdict ids kept to chart a re-delivered verdict once (see ``observe``)."""


def limits_key(process: str, subgroup_size: int) -> str:
    """The pseudo characteristic id of a process's p-chart limits, e.g. ``line2.vision#p50``."""
    return f"{process}#{CHART}{subgroup_size}"


@dataclass(frozen=True)
class SubgroupPoint:
    """One plotted subgroup: ``number`` counts the process's first-pass subgroups from the
    oldest stored one; ``time`` is the last verdict's time, ``first_time`` the first's."""

    number: int
    first_time: datetime
    time: datetime
    defectives: int
    n: int
    p: float
    limit_version: int | None
    violations: tuple[AttributeSignal, ...]


@dataclass
class ProcessChart:
    """A process's chart state as the API reads it."""

    process: str
    chart: AttributeChart
    points: deque[SubgroupPoint]
    stored: StoredLimits | None = None  # the limits in force, as saved
    offset: int = 0  # subgroup number of the engine's subgroup 0
    open_since: datetime | None = None  # the open subgroup's first verdict
    last_p: float | None = None


@dataclass
class _RecentIds:
    limit: int
    ids: OrderedDict[str, None] = field(default_factory=OrderedDict)

    def first_time(self, ingest_id: str) -> bool:
        """True the first time an id is seen (among the last ``limit`` ids)."""
        if ingest_id in self.ids:
            return False
        self.ids[ingest_id] = None
        if len(self.ids) > self.limit:
            self.ids.popitem(last=False)
        return True


class AttributeMonitor:
    """The p chart of every process that sends inspection verdicts."""

    def __init__(
        self,
        store: Store,
        events: EventBus | None = None,
        subgroup_size: int = 50,
        baseline_subgroups: int = 25,
        history: int = HISTORY_SUBGROUPS,
    ) -> None:
        self._store = store
        self.events = events
        self.subgroup_size = subgroup_size
        self.baseline_subgroups = baseline_subgroups
        self.history = history
        self._charts: dict[str, ProcessChart] = {}
        self._recent = _RecentIds(REMEMBERED_IDS)

    def chart(self, process: str) -> ProcessChart:
        """The process's chart (a fresh, empty one if it has no verdicts yet)."""
        return self._charts.get(process) or self._new(process)

    def last_p(self) -> dict[str, float]:
        """Each charted process's last subgroup p."""
        return {k: c.last_p for k, c in self._charts.items() if c.last_p is not None}

    def _new(self, process: str) -> ProcessChart:
        chart = AttributeChart(CHART, self.subgroup_size, self.baseline_subgroups)
        return ProcessChart(process, chart, deque(maxlen=self.history))

    async def restore(self, processes: Iterable[str]) -> None:
        """Rebuild every process's chart from the store (module docstring)."""
        counts = await self._store.first_pass_counts(BEGINNING, END_OF_TIME)
        totals = {c.process: c.inspected for c in counts}
        for process in sorted(set(processes) | set(totals)):
            self._charts[process] = await self._restored(process, totals.get(process, 0))
        _log.info("attribute charts restored for %d processes", len(self._charts))

    async def _restored(self, process: str, total: int) -> ProcessChart:
        state = self._new(process)
        n, k = self.subgroup_size, self.baseline_subgroups
        stored = await self._store.active_limits(limits_key(process, n))
        # the baseline is replayed to show its points; saved limits, if any, then win
        first = await self._read(process, min(total, k * n), newest=False)
        await self._chart(state, first, live=False, save=stored is None)
        if stored is not None:
            state.chart.restore_limits(_attribute_limits(stored.limits, n))
            state.stored = stored
        remaining = total - len(first)
        if remaining > 0 and state.chart.limits is not None:
            tail = min(remaining, remaining % n + self.history * n)
            state.offset = (total - tail) // n - state.chart.subgroups
            await self._chart(state, await self._read(process, tail, newest=True), live=False)
        return state

    async def _read(self, process: str, count: int, newest: bool) -> list[InspectionVerdict]:
        if count <= 0:
            return []
        found = await self._store.verdicts(
            process, BEGINNING, END_OF_TIME, count, newest=newest, first_pass_only=True
        )
        for v in found:
            self._recent.first_time(v.ingest_id)
        return found

    async def observe(self, verdicts: Sequence[InspectionVerdict], live: bool) -> None:
        """The pipeline's hook: chart the newly stored first-pass verdicts.

        The pipeline calls only when a flush stored something new, but a flush may mix
        new verdicts with re-deliveries: those are skipped by their ingest id among the
        last ``REMEMBERED_IDS`` seen (restart included: the replay counts as seen).
        """
        by_process: dict[str, list[InspectionVerdict]] = {}
        for v in verdicts:
            if v.first_pass and self._recent.first_time(v.ingest_id):
                by_process.setdefault(v.process, []).append(v)
        for process, items in by_process.items():
            state = self._charts.get(process)
            if state is None:
                state = self._charts[process] = self._new(process)
            items.sort(key=lambda v: (v.time, v.ingest_id))
            try:
                await self._chart(state, items, live)
            except Exception:  # one process's failure must not stop the others
                _log.exception("could not chart %d verdicts of %s", len(items), process)

    async def _chart(
        self,
        state: ProcessChart,
        items: Sequence[InspectionVerdict],
        live: bool,
        save: bool = True,
    ) -> None:
        if not items:
            return
        batch = state.chart.add_units([0 if v.ok else 1 for v in items])
        start = 0
        for point in batch.points:
            first = state.open_since if start == 0 and state.open_since else items[start].time
            state.open_since = None
            shown = _subgroup(state.offset, point, first, items[point.position].time)
            state.points.append(shown)
            state.last_p = shown.p
            start = point.position + 1
            if live and point.signals:
                self._publish(state, shown, point)
        if start < len(items) and state.open_since is None:
            state.open_since = items[start].time
        if save and batch.new_limits is not None and batch.limits_at is not None:
            completed = items[batch.points[batch.limits_at].position].time
            await self._save(state, batch.new_limits, completed)

    async def _save(
        self, state: ProcessChart, limits: AttributeLimits, completed: datetime
    ) -> None:
        reason = (
            f"Phase I baseline: first {limits.baseline_n} subgroups of {self.subgroup_size} "
            "first-pass inspections"
        )
        stored = StoredLimits(
            limits_key(state.process, self.subgroup_size),
            LimitSet(
                limits.version, limits.center, limits.ucl, limits.lcl, limits.sigma,
                0.0, 0.0, limits.baseline_n,
            ),
            datetime.now(UTC),
            reason,
            effective_at=completed,
        )  # fmt: skip
        state.stored = stored
        _log.info(
            "p chart limits v%d frozen for %s: p-bar=%.6g UCL=%.6g LCL=%.6g",
            limits.version, state.process, limits.center, limits.ucl, limits.lcl,
        )  # fmt: skip
        await self._store.save_limits(stored)

    def _publish(self, state: ProcessChart, shown: SubgroupPoint, point: AttributePoint) -> None:
        if self.events is None:
            return
        line, _, short = state.process.partition(".")
        run = state.chart.rules.same_side
        for signal in point.signals:
            self.events.publish(
                "violation",
                violation_data(shown, point, signal, run),
                characteristic=f"{state.process}#{CHART}",
                line=line,
                process=short,
            )


def violation_data(
    shown: SubgroupPoint, point: AttributePoint, signal: AttributeSignal, run: int
) -> dict[str, Any]:
    """A ``violation`` event's data for a p chart point (the keys of
    ``app.events.violation_data``); ``run`` is test 2's run length."""
    above = signal.side == "high"
    limit = (point.ucl if above else point.lcl) if signal.rule == "1" else None
    if limit is not None:
        where = f"{'above UCL' if above else 'below LCL'} {limit:.4g}"
    else:
        where = f"{run} or more subgroups in a row {'above' if above else 'below'} p-bar"
    return {
        "time": shown.time.isoformat(),
        "value": shown.p,
        "rule": signal.rule,
        "chart": CHART,
        "side": signal.side,
        "limit": limit,
        "limit_version": shown.limit_version,
        "message": (
            f"p chart, subgroup {shown.number}: p = {shown.p:.4g} "
            f"({shown.defectives} of {shown.n} nonconforming), {where} (rule {signal.rule})"
        ),
    }


def _subgroup(offset: int, point: AttributePoint, first: datetime, last: datetime) -> SubgroupPoint:
    return SubgroupPoint(
        number=offset + point.index,
        first_time=first,
        time=last,
        defectives=int(point.count),
        n=int(point.size),
        p=point.value,
        limit_version=point.limit_version,
        violations=point.signals,
    )


def _attribute_limits(limits: LimitSet, subgroup_size: int) -> AttributeLimits:
    return AttributeLimits(
        limits.version, CHART, limits.center, limits.ucl, limits.lcl, limits.sigma,
        float(subgroup_size), limits.baseline_n,
    )  # fmt: skip
