"""The incident manager: chart signals in, one incident per problem out.

Rules (`alerts.incident_rules`, `alerts.incident_policy`): a paging signal opens an
incident unless its characteristic already has an unresolved one (the signal becomes its
evidence) or another characteristic of the same process had one within the grouping
window (the incident grows). Non-paging signals only add evidence to an existing
incident. An incident resolves itself after a run of in-control points on each of its
characteristics, escalates when nobody acknowledges it, and a process opens at most
``max_new_per_hour`` incidents an hour. Every change is saved with one transaction per
batch, audited (`ingest.store.alarm_event`) and told to the observers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from alerts import incident_rules as rules
from alerts.incident_policy import IncidentPolicy
from alerts.signals import ChartSignal
from ingest.store import Acknowledgement, AlarmRecord, AlarmStore, Resolution

_log = logging.getLogger(__name__)
AlarmObserver = Callable[[AlarmRecord], None]
"""Told every saved incident state; must not block or raise."""
Transition = Callable[[str, AlarmRecord], None]
"""Told ``opened``, ``escalated``, ``acknowledged`` or ``resolved`` with the incident."""
Locate = Callable[[str], tuple[str, str]]
"""A characteristic's (line, qualified process), e.g. ("line1", "line1.turning")."""


class IncidentManager:
    """Keeps the unresolved incidents in memory and saves every change."""

    def __init__(
        self,
        store: AlarmStore,
        locate: Locate,
        policy: IncidentPolicy | None = None,
        on_change: AlarmObserver | None = None,
        on_transition: Transition | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self.locate = locate
        self.policy = policy or IncidentPolicy()
        self.on_change = on_change
        self.on_transition = on_transition
        # told each characteristic of a resolved incident: its detection restarts from zero
        # (a CUSUM left near its limit after a false alarm would cross again at once)
        self.on_resolved: Callable[[str], None] | None = None
        self._clock = clock
        self._open = _OpenIncidents()
        self._latest: dict[str, AlarmRecord] = {}  # per process, for rate-limited re-opening
        self._opened_times: dict[str, list[datetime]] = {}
        self._calm: dict[str, int] = {}  # points in a row without a paging signal
        # one change at a time: a batch's signals and an acknowledgement must not overwrite
        # each other's save (each computes from the state the other is changing)
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        """Read the unresolved incidents from the store (on start-up)."""
        for incident in await self._store.list_alarms(open_only=True):
            assert incident.id is not None
            self._open[incident.id] = incident
            self._latest[incident.process] = incident

    def open_alarms(self, characteristic: str | None = None) -> list[AlarmRecord]:
        """The unresolved incidents (concerning ``characteristic``), oldest first."""
        if characteristic is None:
            return sorted(self._open.values(), key=lambda i: i.id or 0)
        return list(self._open.concerning(characteristic))

    async def handle(
        self, signals: Sequence[ChartSignal], points: Sequence[tuple[str, datetime]] = ()
    ) -> list[AlarmRecord]:
        """Fold a live batch's signals and judged points (characteristic, time) in; returns
        the saved incidents that changed."""
        async with self._lock:
            return await self._handle(signals, points)

    async def _handle(
        self, signals: Sequence[ChartSignal], points: Sequence[tuple[str, datetime]]
    ) -> list[AlarmRecord]:
        changed: dict[int | str, AlarmRecord] = {}  # by id, or a temporary key when new
        transitions: list[tuple[str, int | str]] = []
        paging_at: dict[str, datetime] = {}
        # the unresolved incidents by process: a signal can only join its own process's,
        # so a batch costs O(signals x incidents of a process), not of the plant
        by_process: dict[str, list[int | str]] = {}
        for open_id, incident in self._open.items():
            by_process.setdefault(incident.process, []).append(open_id)
        # at one point, the paging signals first: the others then join their incident
        for s in sorted(signals, key=lambda s: (s.time, not self.policy.pages(s.rule, s.chart))):
            self._fold(s, changed, transitions, paging_at, by_process)
        self._count_calm(points, paging_at)
        now = self._clock()
        for key, incident in list(self._candidates(changed)):
            done = rules.resolved_if_calm(incident, self._calm, self.policy, now)
            if done is not None:
                changed[key] = done
                transitions.append(("resolved", key))
        return await self._save(changed, transitions)

    async def escalate_due(self) -> list[AlarmRecord]:
        """Escalate the open incidents nobody acknowledged in time (call periodically)."""
        async with self._lock:
            return await self._escalate_due()

    async def _escalate_due(self) -> list[AlarmRecord]:
        now = self._clock()
        changed: dict[int | str, AlarmRecord] = {}
        for incident_id, incident in self._open.items():
            up = rules.escalated_if_due(incident, now, self.policy)
            if up is not None:
                changed[incident_id] = up
        return await self._save(changed, [("escalated", key) for key in changed])

    async def acknowledge(
        self,
        alarm_id: int,
        by: str,
        comment: str,
        cause: str | None = None,
        action: str | None = None,
    ) -> AlarmRecord:
        """Move an open incident to acknowledged with who, when, why, cause and action.

        Raises ``UnknownAlarm`` for an id never stored, ``AlarmStateError`` unless open.
        """
        async with self._lock:
            current = await self._current(alarm_id, wanted=("open",))
            ack = Acknowledgement(by, self._clock(), comment, cause, action)
            acked = replace(current, state="acknowledged", ack=ack)
            return await self._change(current, acked, "acknowledged")  # fmt: skip

    async def resolve(self, alarm_id: int, by: str, note: str) -> AlarmRecord:
        """Resolve an open or acknowledged incident by hand (who and why are kept)."""
        async with self._lock:
            current = await self._current(alarm_id, wanted=("open", "acknowledged"))
            done = Resolution(by, self._clock(), note)
            details = replace(current.details, resolution=done)
            resolved = replace(current, state="resolved", details=details)
            return await self._change(current, resolved, "resolved")

    def _fold(
        self,
        s: ChartSignal,
        changed: dict[int | str, AlarmRecord],
        transitions: list[tuple[str, int | str]],
        paging_at: dict[str, datetime],
        by_process: dict[str, list[int | str]],
    ) -> None:
        pages = self.policy.pages(s.rule, s.chart)
        if pages:
            paging_at[s.characteristic] = s.time
            self._calm[s.characteristic] = 0
        line, process = self.locate(s.characteristic)
        live: dict[int | str, AlarmRecord] = {}
        for k in by_process.get(process, ()):
            incident = changed.get(k) or (self._open.get(k) if isinstance(k, int) else None)
            if incident is not None and incident.state != "resolved":
                live[k] = incident
        found = rules.joinable(live.values(), s, process, self.policy)
        if found is not None:
            found_key = next(k for k, v in live.items() if v is found)
            # evidence of any kind can make an incident critical (a point beyond a limit)
            severity = self.policy.severity(s.rule, s.chart)
            changed[found_key] = rules.with_evidence(found, s, severity)
            return
        if not pages:
            return  # charts show it; nobody is paged
        opened = self._opened_times.setdefault(process, [])
        latest = self._latest.get(process)
        if latest is not None and rules.over_rate(opened, s.time, self.policy):
            key: int | str = latest.id if latest.id is not None else f"new-{process}"
            current = changed.get(key, latest)
            changed[key] = rules.reopened(current, s, self.policy)
            if key not in by_process.setdefault(process, []):
                by_process[process].append(key)
            if current.state == "resolved":
                transitions.append(("opened", key))
            return
        new_key = f"new-{len(changed)}-{s.characteristic}"
        changed[new_key] = rules.opened_by(s, line, process, self.policy)
        by_process.setdefault(process, []).append(new_key)
        opened.append(s.time)
        del opened[: -self.policy.max_new_per_hour]  # only the last ones matter
        transitions.append(("opened", new_key))

    def _candidates(
        self, changed: dict[int | str, AlarmRecord]
    ) -> list[tuple[int | str, AlarmRecord]]:
        """Unresolved incidents as this batch has changed them so far."""
        merged: dict[int | str, AlarmRecord] = dict(self._open.items())
        merged.update(changed)
        return [(k, v) for k, v in merged.items() if v.state != "resolved"]

    def _count_calm(
        self, points: Sequence[tuple[str, datetime]], paging_at: dict[str, datetime]
    ) -> None:
        for characteristic, time in points:
            last = paging_at.get(characteristic)
            if last is None or time > last:
                self._calm[characteristic] = self._calm.get(characteristic, 0) + 1

    async def _save(
        self, changed: dict[int | str, AlarmRecord], transitions: list[tuple[str, int | str]]
    ) -> list[AlarmRecord]:
        if not changed:
            return []
        keys = list(changed)
        saved = await self._store.save_alarms([changed[k] for k in keys])
        by_key = dict(zip(keys, saved, strict=True))
        for incident in saved:
            self._remember(incident)
            self._tell(incident)
        for kind, key in transitions:
            self._announce(kind, by_key[key])
        return saved

    async def _current(self, alarm_id: int, wanted: tuple[str, ...]) -> AlarmRecord:
        current = self._open.get(alarm_id)
        if current is None:
            stored = await self._store.get_alarm(alarm_id)
            if stored is None:
                raise UnknownAlarm(f"no alarm with id {alarm_id}")
            current = stored
        if current.state not in wanted:
            raise AlarmStateError(f"alarm {alarm_id} is {current.state}, not {' or '.join(wanted)}")
        return current

    async def _change(self, current: AlarmRecord, new: AlarmRecord, kind: str) -> AlarmRecord:
        assert current.id is not None
        if current.id in self._open:
            self._open[current.id] = new  # before the await: a second request sees it
        try:
            saved = await self._store.save_alarm(new)
        except BaseException:
            if self._open.get(current.id) is new:
                self._open[current.id] = current
            raise
        self._remember(saved)
        self._tell(saved)
        self._announce(kind, saved)
        return saved

    def _remember(self, incident: AlarmRecord) -> None:
        assert incident.id is not None
        if incident.state == "resolved":
            self._open.pop(incident.id, None)
        else:
            self._open[incident.id] = incident
        latest = self._latest.get(incident.process)
        if latest is None or (latest.id or 0) <= incident.id:
            self._latest[incident.process] = incident

    def _tell(self, incident: AlarmRecord) -> None:
        if self.on_change is not None:
            try:
                self.on_change(incident)
            except Exception:  # an observer must not cost us the incident
                _log.exception("incident observer failed on incident %s", incident.id)

    def _announce(self, kind: str, incident: AlarmRecord) -> None:
        if kind == "resolved" and self.on_resolved is not None:
            for characteristic in incident.characteristics:
                try:
                    self.on_resolved(characteristic)
                except Exception:
                    _log.exception("restart after incident %s failed", incident.id)
        log = _log.warning if kind in ("opened", "escalated") else _log.info
        log("incident %s %s on %s: %s", incident.id, kind, incident.process, incident.message)
        if self.on_transition is not None:
            try:
                self.on_transition(kind, incident)
            except Exception:
                _log.exception("incident transition hook failed on incident %s", incident.id)


class UnknownAlarm(LookupError):
    """No alarm with this id was ever stored."""


class AlarmStateError(Exception):
    """The alarm's state does not allow the change (e.g. acknowledging a resolved alarm)."""


class _OpenIncidents(dict[int, AlarmRecord]):
    """The unresolved incidents by id, with an index by characteristic built on demand.

    Every status answer asks for its characteristic's incidents; scanning all of them
    each time cost more than the rest of the answer with a few hundred open.
    """

    def __init__(self) -> None:
        super().__init__()
        self._index: dict[str, tuple[AlarmRecord, ...]] | None = None

    def concerning(self, characteristic: str) -> tuple[AlarmRecord, ...]:
        """The incidents that concern ``characteristic``, oldest (lowest id) first."""
        if self._index is None:
            index: dict[str, list[AlarmRecord]] = {}
            for incident in sorted(self.values(), key=lambda i: i.id or 0):
                for char in dict.fromkeys(incident.characteristics):  # each once
                    index.setdefault(char, []).append(incident)
            self._index = {char: tuple(found) for char, found in index.items()}
        return self._index.get(characteristic, ())

    def __setitem__(self, key: int, value: AlarmRecord) -> None:
        self._index = None
        super().__setitem__(key, value)

    def __delitem__(self, key: int) -> None:
        self._index = None
        super().__delitem__(key)

    def pop(self, key: int, *default: AlarmRecord | None) -> AlarmRecord | None:  # type: ignore[override]
        self._index = None
        return super().pop(key, *default)
