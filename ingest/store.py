"""The storage interface: one small Protocol per aggregate, combined as ``Store``.

Every implementation (SQLite now, PostgreSQL/TimescaleDB next) passes the same contract
test suite (tests/ingest/test_store_contract.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ingest.model import CostEvent, DeadLetter, InspectionVerdict, Measurement
from spc import LimitSet


@dataclass(frozen=True)
class CharacteristicRecord:
    """A characteristic as the service knows it; ``origin`` is "config" or "api"."""

    id: str
    name: str
    unit: str
    line: str
    process: str
    lsl: float | None
    usl: float | None
    target: float | None
    chart: str
    subgroup_size: int
    rules: tuple[str, ...]  # rule ids "1".."8", or one preset name such as ("nelson",)
    source_kind: str | None  # "opcua", "mqtt" or None (pushed over HTTP only)
    source_address: str | None
    origin: str = "config"
    ewma: tuple[float, float] | None = (0.2, 3.0)  # (lambda, L), None: off
    cusum: tuple[float, float] | None = (0.5, 4.0)  # (k, h) in sigma units, None: off


@dataclass(frozen=True)
class AlarmRecord:
    """An alarm on one characteristic, rule and chart; ``id`` is None until stored."""

    characteristic: str
    rule: str
    chart: str
    state: str  # "open" | "acknowledged" | "resolved"
    opened_at: datetime
    last_at: datetime
    count: int
    limit_version: int
    last_value: float
    message: str
    id: int | None = None


@dataclass(frozen=True)
class StoredLimits:
    """A versioned limit set with when and why it was made."""

    characteristic: str
    limits: LimitSet
    created_at: datetime
    reason: str


class CharacteristicStore(Protocol):
    async def upsert_characteristics(self, records: Sequence[CharacteristicRecord]) -> None: ...
    async def list_characteristics(self) -> list[CharacteristicRecord]: ...


class MeasurementStore(Protocol):
    async def add_measurements(self, items: Sequence[Measurement]) -> list[Measurement]:
        """Store a batch atomically; return the ones not already stored (by ingest_id)."""
        ...

    async def add_verdicts(self, items: Sequence[InspectionVerdict]) -> int: ...
    async def add_cost_events(self, items: Sequence[CostEvent]) -> int: ...
    async def recent_measurements(self, characteristic: str, limit: int) -> list[Measurement]:
        """The newest ``limit`` measurements of a characteristic, oldest first."""
        ...

    async def count_measurements(self, characteristic: str | None = None) -> int: ...
    async def count_charted(self, characteristic: str) -> int:
        """How many good-quality measurements of a characteristic were stored (and charted)."""
        ...

    async def charted_tail(self, characteristic: str, limit: int) -> list[Measurement]:
        """The last ``limit`` good-quality measurements in the order they were stored.

        That is the order the engine saw them in: replaying it rebuilds the engine's state
        exactly (subgroups included), unlike time order when data arrived out of order.
        """
        ...

    async def count_verdicts(self) -> int: ...


class LimitStore(Protocol):
    async def save_limits(self, item: StoredLimits) -> None: ...
    async def active_limits(self, characteristic: str) -> StoredLimits | None: ...


class AlarmStore(Protocol):
    async def save_alarm(self, alarm: AlarmRecord) -> AlarmRecord:
        """Insert (id None) or update an alarm; returns it with its id."""
        ...

    async def list_alarms(
        self, characteristic: str | None = None, open_only: bool = True
    ) -> list[AlarmRecord]: ...


class DeadLetterStore(Protocol):
    async def add_dead_letters(self, items: Sequence[DeadLetter]) -> None: ...
    async def list_dead_letters(self, limit: int = 100) -> list[DeadLetter]: ...


class Store(
    CharacteristicStore, MeasurementStore, LimitStore, AlarmStore, DeadLetterStore, Protocol
):
    """Everything the service stores. ``kind`` names the backend for /healthz."""

    kind: str

    async def open(self) -> None: ...
    async def close(self) -> None: ...
