"""Alarm lifecycle: signals in, alarm changes out.

The rule of the walking skeleton: one alarm per (characteristic, rule, chart) while it is
not resolved; a repeated violation updates that alarm (count, last time and value) instead
of opening another. Grouping across characteristics, acknowledgement, auto-resolution and
escalation belong to the alerting issue.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace

from alerts.signals import ChartSignal
from ingest.store import AlarmRecord, AlarmStore

_log = logging.getLogger(__name__)
AlarmKey = tuple[str, str, str]


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
    """Keeps the open alarms in memory and persists every change."""

    def __init__(self, store: AlarmStore) -> None:
        self._store = store
        self._open: dict[AlarmKey, AlarmRecord] = {}

    async def load(self) -> None:
        """Read the unresolved alarms from the store (on start-up)."""
        alarms = await self._store.list_alarms(open_only=True)
        self._open = {alarm_key(a.characteristic, a.rule, a.chart): a for a in alarms}

    async def handle(self, signals: Sequence[ChartSignal]) -> list[AlarmRecord]:
        """Apply signals; returns the stored alarm records that changed."""
        saved = []
        for record in apply_signals(signals, self._open):
            stored = await self._store.save_alarm(record)
            if record.id is None:
                _log.warning("alarm opened on %s: %s", stored.characteristic, stored.message)
            self._open[alarm_key(stored.characteristic, stored.rule, stored.chart)] = stored
            saved.append(stored)
        return saved

    def open_alarms(self, characteristic: str | None = None) -> list[AlarmRecord]:
        return [
            a
            for a in self._open.values()
            if characteristic is None or a.characteristic == characteristic
        ]
