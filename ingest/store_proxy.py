"""A ``Store`` that hands every call to another one: the base of store wrappers.

A wrapper (the spool, say) subclasses it and overrides only what it changes, and stays a
typed ``Store`` without repeating the interface by hand in each wrapper.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from ingest.model import CostEvent, DeadLetter, InspectionVerdict, Measurement
from ingest.store import (
    AlarmEvent,
    AlarmRecord,
    Bucket,
    CapabilityBucket,
    CharacteristicRecord,
    CostTotal,
    FirstPassCount,
    GradeSnapshot,
    HistoryCursor,
    HistoryPage,
    Store,
    StoredLimits,
)
from spc.capability_sums import CapabilitySums


class StoreProxy:
    """Every ``Store`` method, delegated to ``inner``."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner

    @property
    def kind(self) -> str:
        return self.inner.kind

    async def open(self) -> None:
        await self.inner.open()

    async def close(self) -> None:
        await self.inner.close()

    async def upsert_characteristics(self, records: Sequence[CharacteristicRecord]) -> None:
        await self.inner.upsert_characteristics(records)

    async def list_characteristics(self) -> list[CharacteristicRecord]:
        return await self.inner.list_characteristics()

    async def delete_characteristic(self, characteristic: str) -> bool:
        return await self.inner.delete_characteristic(characteristic)

    async def add_measurements(self, items: Sequence[Measurement]) -> list[Measurement]:
        return await self.inner.add_measurements(items)

    async def add_verdicts(self, items: Sequence[InspectionVerdict]) -> int:
        return await self.inner.add_verdicts(items)

    async def add_cost_events(self, items: Sequence[CostEvent]) -> int:
        return await self.inner.add_cost_events(items)

    async def recent_measurements(self, characteristic: str, limit: int) -> list[Measurement]:
        return await self.inner.recent_measurements(characteristic, limit)

    async def count_measurements(self, characteristic: str | None = None) -> int:
        return await self.inner.count_measurements(characteristic)

    async def count_charted(self, characteristic: str) -> int:
        return await self.inner.count_charted(characteristic)

    async def charted_tail(self, characteristic: str, limit: int) -> list[Measurement]:
        return await self.inner.charted_tail(characteristic, limit)

    async def count_verdicts(self) -> int:
        return await self.inner.count_verdicts()

    async def verdicts(
        self,
        process: str,
        start: datetime,
        end: datetime,
        limit: int = 1000,
        newest: bool = False,
        first_pass_only: bool = False,
    ) -> list[InspectionVerdict]:
        return await self.inner.verdicts(process, start, end, limit, newest, first_pass_only)

    async def history(
        self,
        characteristic: str,
        start: datetime,
        end: datetime,
        limit: int = 1000,
        after: HistoryCursor | None = None,
    ) -> HistoryPage:
        return await self.inner.history(characteristic, start, end, limit, after)

    async def buckets(
        self, characteristic: str, start: datetime, end: datetime, width: timedelta
    ) -> list[Bucket]:
        return await self.inner.buckets(characteristic, start, end, width)

    async def first_pass_counts(self, start: datetime, end: datetime) -> list[FirstPassCount]:
        return await self.inner.first_pass_counts(start, end)

    async def cost_totals(self, start: datetime, end: datetime) -> list[CostTotal]:
        return await self.inner.cost_totals(start, end)

    async def save_limits(self, item: StoredLimits) -> None:
        await self.inner.save_limits(item)

    async def active_limits(self, characteristic: str) -> StoredLimits | None:
        return await self.inner.active_limits(characteristic)

    async def limit_history(self, characteristic: str) -> list[StoredLimits]:
        return await self.inner.limit_history(characteristic)

    async def save_alarm(self, alarm: AlarmRecord) -> AlarmRecord:
        return await self.inner.save_alarm(alarm)

    async def save_alarms(self, alarms: Sequence[AlarmRecord]) -> list[AlarmRecord]:
        return await self.inner.save_alarms(alarms)

    async def get_alarm(self, alarm_id: int) -> AlarmRecord | None:
        return await self.inner.get_alarm(alarm_id)

    async def list_alarms(
        self, characteristic: str | None = None, open_only: bool = True
    ) -> list[AlarmRecord]:
        return await self.inner.list_alarms(characteristic, open_only)

    async def alarm_events(self, alarm_id: int) -> list[AlarmEvent]:
        return await self.inner.alarm_events(alarm_id)

    async def add_dead_letters(self, items: Sequence[DeadLetter]) -> None:
        await self.inner.add_dead_letters(items)

    async def list_dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        return await self.inner.list_dead_letters(limit)

    async def add_grade_snapshots(self, items: Sequence[GradeSnapshot]) -> None:
        await self.inner.add_grade_snapshots(items)

    async def add_capability_sums(self, items: Sequence[CapabilityBucket]) -> None:
        await self.inner.add_capability_sums(items)

    async def capability_totals(self, start: datetime, end: datetime) -> dict[str, CapabilitySums]:
        return await self.inner.capability_totals(start, end)

    async def grade_history(
        self, level: str, entity: str, start: datetime, end: datetime
    ) -> list[GradeSnapshot]:
        return await self.inner.grade_history(level, entity, start, end)
