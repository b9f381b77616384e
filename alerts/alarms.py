"""Alarm lifecycle: signals in, alarm changes out.

The rule of the walking skeleton: one alarm per (characteristic, rule, chart) while it is
not resolved; a repeated violation updates that alarm (count, last time and value) instead
of opening another. An operator acknowledges an open alarm (who, when and why are kept
with it); grouping across characteristics, auto-resolution and escalation belong to the
alerting issue.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from alerts.signals import ChartSignal
from ingest.store import Acknowledgement, AlarmRecord, AlarmStore

_log = logging.getLogger(__name__)
AlarmKey = tuple[str, str, str]
AlarmObserver = Callable[[AlarmRecord], None]
"""Told every saved alarm state (opened, updated, ...); must not block or raise."""


def alarm_key(characteristic: str, rule: str, chart: str) -> AlarmKey:
    return (characteristic, rule, chart)


def apply_signals(
    signals: Sequence[ChartSignal], open_alarms: Mapping[AlarmKey, AlarmRecord]
) -> list[AlarmRecord]:
    """Pure: the alarms to insert or update for these signals, one record per key."""
    changed: dict[AlarmKey, AlarmRecord] = {}
    for s in signals:
        key = alarm_key(s.characteristic, s.rule, s.chart)
        current = changed.get(key) or open_alarms.get(key)
        if current is None:
            changed[key] = AlarmRecord(
                characteristic=s.characteristic,
                rule=s.rule,
                chart=s.chart,
                state="open",
                opened_at=s.time,
                last_at=s.time,
                count=1,
                limit_version=s.limit_version,
                last_value=s.value,
                message=s.describe(),
            )
        else:
            changed[key] = replace(
                current,
                last_at=max(current.last_at, s.time),
                count=current.count + 1,
                last_value=s.value,
                limit_version=s.limit_version,
                message=s.describe(),
            )
    return list(changed.values())


class AlarmManager:
    """Keeps the open alarms in memory and persists every change.

    ``on_change``, when set, is called with every alarm state saved (the live event
    stream uses it); a failing observer is logged, never allowed to stop alarm handling.
    ``clock`` gives the acknowledgement time (aware UTC).
    """

    def __init__(
        self,
        store: AlarmStore,
        on_change: AlarmObserver | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._open: dict[AlarmKey, AlarmRecord] = {}
        self.on_change = on_change
        self._clock = clock

    async def load(self) -> None:
        """Read the unresolved alarms from the store (on start-up)."""
        alarms = await self._store.list_alarms(open_only=True)
        self._open = {alarm_key(a.characteristic, a.rule, a.chart): a for a in alarms}

    async def handle(self, signals: Sequence[ChartSignal]) -> list[AlarmRecord]:
        """Apply signals; returns the stored alarm records that changed."""
        saved = []
        for record in apply_signals(signals, self._open):
            stored = await self._save(record)
            if record.id is None:
                _log.warning("alarm opened on %s: %s", stored.characteristic, stored.message)
            self._open[alarm_key(stored.characteristic, stored.rule, stored.chart)] = stored
            saved.append(stored)
        return saved

    async def _save(self, record: AlarmRecord) -> AlarmRecord:
        """Persist one alarm state and tell the observer (every write must tell it)."""
        stored = await self._store.save_alarm(record)
        self._notify(stored)
        return stored

    def _notify(self, stored: AlarmRecord) -> None:
        if self.on_change is not None:
            try:
                self.on_change(stored)
            except Exception:  # an observer must not cost us the alarm
                _log.exception("alarm change observer failed on alarm %s", stored.id)

    def open_alarms(self, characteristic: str | None = None) -> list[AlarmRecord]:
        return [
            a
            for a in self._open.values()
            if characteristic is None or a.characteristic == characteristic
        ]

    async def acknowledge(
        self,
        alarm_id: int,
        by: str,
        comment: str,
        cause: str | None = None,
        action: str | None = None,
    ) -> AlarmRecord:
        """Move an open alarm to acknowledged, saving who, when and why with it.

        The save adds the acknowledgement to the alarm's audit history (who, the comment,
        at the acknowledgement's time). Raises ``UnknownAlarm`` for an id never stored and
        ``AlarmStateError`` for an alarm already acknowledged or resolved.
        """
        current = next((a for a in self._open.values() if a.id == alarm_id), None)
        if current is None:
            stored = await self._store.get_alarm(alarm_id)
            if stored is None:
                raise UnknownAlarm(f"no alarm with id {alarm_id}")
            raise AlarmStateError(f"alarm {alarm_id} is {stored.state}, not open")
        if current.state != "open":
            raise AlarmStateError(f"alarm {alarm_id} is {current.state}, not open")
        key = alarm_key(current.characteristic, current.rule, current.chart)
        ack = Acknowledgement(by, self._clock(), comment, cause, action)
        acknowledged = replace(current, state="acknowledged", ack=ack)
        self._open[key] = acknowledged  # before the await: a second acknowledge sees it
        try:
            saved = await self._store.save_alarm(acknowledged)
        except BaseException:
            if self._open.get(key) is acknowledged:
                self._open[key] = current
            raise
        if self._open.get(key) is acknowledged:
            self._open[key] = saved
        self._notify(saved)
        _log.info(
            "alarm %d on %s acknowledged by %s: %s (cause: %s; action: %s)",
            alarm_id,
            saved.characteristic,
            by,
            comment,
            cause,
            action,
        )
        return saved


class UnknownAlarm(LookupError):
    """No alarm with this id was ever stored."""


class AlarmStateError(Exception):
    """The alarm's state does not allow the change (e.g. acknowledging a resolved alarm)."""
