"""The storage interface: one small Protocol per aggregate, combined as ``Store``.

Every implementation (embedded SQLite, PostgreSQL, PostgreSQL with TimescaleDB) passes the
same contract test suite (tests/ingest/test_store_contract.py).

Conventions shared by every backend:

- times are timezone-aware UTC datetimes, kept to the microsecond;
- a record is identified by its ``ingest_id`` (and, for measurements, its time): storing it
  again is a no-op, so a resend or a replay after a crash never doubles data;
- time ranges are half-open, ``start <= time < end``;
- statistics (buckets, counts for charting) use good-quality measurements only, as the
  engine does; raw history returns every quality so an audit sees everything.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from ingest.model import CostCategory, CostEvent, DeadLetter, InspectionVerdict, Measurement
from spc import LimitSet
from spc.capability_sums import CapabilitySums

BUCKET_ORIGIN = datetime(2000, 1, 3, tzinfo=UTC)
"""Buckets are aligned to this Monday midnight UTC (TimescaleDB's ``time_bucket`` default),
so a week bucket starts on Monday and every backend cuts time at the same instants."""


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
    cusum: tuple[float, float] | None = (0.35, 6.7)  # (k, h) in sigma units, None: off


def characteristic_values(
    r: CharacteristicRecord, as_json: Callable[[Any], Any]
) -> tuple[Any, ...]:
    """A characteristic's column values in table order; ``as_json`` encodes its two JSON
    columns (rules, and the EWMA/CUSUM settings) the way the backend's driver wants."""
    return (
        r.id, r.name, r.unit, r.line, r.process, r.lsl, r.usl, r.target, r.chart,
        r.subgroup_size, as_json(list(r.rules)), r.source_kind, r.source_address, r.origin,
        as_json({"ewma": r.ewma, "cusum": r.cusum}),
    )  # fmt: skip


@dataclass(frozen=True)
class Acknowledgement:
    """Who acknowledged an alarm, when, and why: the operator's comment, cause and action."""

    by: str
    at: datetime
    comment: str
    cause: str | None = None
    action: str | None = None


@dataclass(frozen=True)
class Evidence:
    """One signal an incident holds: what happened on which characteristic, when."""

    time: datetime
    characteristic: str
    rule: str
    chart: str
    value: float
    limit: float | None
    limit_version: int
    message: str


@dataclass(frozen=True)
class Resolution:
    """Who resolved an incident (``system`` for the automatic resolution), when and why."""

    by: str
    at: datetime
    note: str


@dataclass(frozen=True)
class IncidentDetails:
    """What an incident groups: its characteristics, recent evidence, escalation, end.

    ``evidence`` keeps the first and the most recent signals (at most ``MAX_EVIDENCE``);
    the alarm's ``count`` is the number of all signals it absorbed.
    """

    characteristics: tuple[str, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    escalated_at: datetime | None = None
    resolution: Resolution | None = None


MAX_EVIDENCE = 50


@dataclass(frozen=True)
class AlarmRecord:
    """An incident: one problem, opened by a signal on ``characteristic`` (its ``rule`` and
    ``chart``), possibly grouping several characteristics of one process (``details``).
    ``id`` is None until stored; ``ack`` is None until acknowledged and stays afterwards.
    """

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
    ack: Acknowledgement | None = None
    line: str = ""
    process: str = ""  # qualified, e.g. "line1.turning"
    severity: str = "warning"  # "warning" | "critical"
    details: IncidentDetails = IncidentDetails()

    @property
    def characteristics(self) -> tuple[str, ...]:
        """Every characteristic the incident concerns, the opening one first."""
        return self.details.characteristics or (self.characteristic,)


def details_to_json(details: IncidentDetails) -> str:
    """The ``details`` column: JSON with ISO 8601 times (both backends store this text)."""
    resolution = details.resolution
    return json.dumps(
        {
            "characteristics": list(details.characteristics),
            "evidence": [
                {"time": e.time.isoformat(), "characteristic": e.characteristic,
                 "rule": e.rule, "chart": e.chart, "value": e.value, "limit": e.limit,
                 "limit_version": e.limit_version, "message": e.message}
                for e in details.evidence
            ],
            "escalated_at": details.escalated_at.isoformat() if details.escalated_at else None,
            "resolution": None if resolution is None else {
                "by": resolution.by, "at": resolution.at.isoformat(), "note": resolution.note
            },
        }
    )  # fmt: skip


def escalated_at(text: str | None) -> datetime | None:
    """The ``escalated_at`` of the details, as the database extracted it (ISO 8601)."""
    return datetime.fromisoformat(text) if text else None


def details_from_json(text: str | Mapping[str, Any] | None) -> IncidentDetails:
    """Inverse of `details_to_json` (PostgreSQL hands jsonb over already decoded)."""
    if not text:
        return IncidentDetails()
    doc = json.loads(text) if isinstance(text, str) else text
    res = doc.get("resolution")
    escalated = doc.get("escalated_at")
    return IncidentDetails(
        characteristics=tuple(doc.get("characteristics", ())),
        evidence=tuple(
            Evidence(datetime.fromisoformat(e["time"]), e["characteristic"], e["rule"],
                     e["chart"], e["value"], e["limit"], e["limit_version"], e["message"])
            for e in doc.get("evidence", ())
        ),
        escalated_at=datetime.fromisoformat(escalated) if escalated else None,
        resolution=None if res is None else Resolution(
            res["by"], datetime.fromisoformat(res["at"]), res["note"]
        ),
    )  # fmt: skip


@dataclass(frozen=True)
class AlarmEvent:
    """One saved state of an alarm: its audit history is the list of these.

    The save that acknowledges gives ``actor`` (who) and ``note`` (their comment), at the
    acknowledgement's time; any other save, the alarm's ``last_at`` (see ``alarm_event``).
    """

    alarm_id: int
    recorded_at: datetime
    state: str
    count: int
    last_value: float
    actor: str | None = None
    note: str | None = None


def alarm_event(
    saved: AlarmRecord,
    stored_ack: Acknowledgement | None,
    stored_state: str | None = None,
    stored_escalated: datetime | None = None,
) -> AlarmEvent:
    """The audit event of saving ``saved`` over a row acknowledged as ``stored_ack``, in
    ``stored_state`` and escalated at ``stored_escalated`` (None, None for a new row).

    Every backend writes this event: a save that sets the acknowledgement records who,
    why and when; one that resolves, who resolved (``system`` when automatic) and why; one
    that escalates, the escalation; any other save, the state at the alarm's ``last_at``.
    """
    if saved.id is None:
        raise ValueError("alarm_event: the alarm has no id yet; save it first")
    ack = saved.ack
    if ack is not None and ack != stored_ack:
        return AlarmEvent(
            saved.id, ack.at, saved.state, saved.count, saved.last_value, ack.by, ack.comment
        )
    res = saved.details.resolution
    if saved.state == "resolved" and stored_state not in (None, "resolved") and res is not None:
        return AlarmEvent(saved.id, res.at, saved.state, saved.count, saved.last_value,
                          res.by, res.note)  # fmt: skip
    escalated = saved.details.escalated_at
    if escalated is not None and stored_escalated is None and stored_state is not None:
        return AlarmEvent(saved.id, escalated, saved.state, saved.count, saved.last_value,
                          "system", f"escalated: {saved.severity}")  # fmt: skip
    return AlarmEvent(saved.id, saved.last_at, saved.state, saved.count, saved.last_value)


@dataclass(frozen=True)
class StoredLimits:
    """A versioned limit set with when, why and by whom it was made.

    ``effective_at`` is the measurement time after which the limits judge points: for
    Phase I limits the time of the point that completed the baseline (history pushed
    late is charted against the limits the engine used), for recalculated limits the
    time they were installed. ``None`` (sets stored before it was kept): ``created_at``.
    """

    characteristic: str
    limits: LimitSet
    created_at: datetime
    reason: str
    author: str = "system"
    effective_at: datetime | None = None

    @property
    def in_force_after(self) -> datetime:
        """Points measured after this time are judged by these limits (until the next)."""
        return self.effective_at or self.created_at


@dataclass(frozen=True)
class Bucket:
    """Sufficient statistics of a characteristic's good measurements in one time bucket.

    ``start`` is the bucket's first instant (aligned to ``BUCKET_ORIGIN``); ``total`` is
    Σx and ``total_sq`` Σx², in the characteristic's unit and unit². Together with ``n``
    they give the mean and the sample variance of any union of buckets without raw data.
    """

    start: datetime
    n: int
    mean: float
    minimum: float
    maximum: float
    total: float
    total_sq: float


@dataclass(frozen=True)
class HistoryCursor:
    """Where a page of raw history stopped: the last row's time and storage sequence."""

    time: datetime
    seq: int


@dataclass(frozen=True)
class HistoryPage:
    """Raw measurements in time order, and the cursor of the next page (None: no more)."""

    items: list[Measurement]
    next_after: HistoryCursor | None


@dataclass(frozen=True)
class FirstPassCount:
    """First-submission inspections of a process in a period, and how many passed."""

    process: str
    inspected: int
    passed: int


@dataclass(frozen=True)
class CostTotal:
    """The sum of cost events of one scope, category and currency in a period."""

    scope: str
    category: CostCategory
    currency: str
    amount: float
    events: int


@dataclass(frozen=True)
class GradeSnapshot:
    """A quality grade of one entity at one instant, with the metrics it was graded on.

    ``level`` is "characteristic", "process", "line" or "plant"; ``grade`` is 1..5 or
    None for insufficient data; ``metrics`` maps a metric name to its value (None when
    it could not be computed).
    """

    taken_at: datetime
    level: str
    entity: str
    grade: int | None
    limiting_metric: str | None
    metrics: Mapping[str, float | None] = field(default_factory=dict)


@dataclass(frozen=True)
class CapabilityBucket:
    """The capability sums of one characteristic's values measured in ``[start, start + 1 h)``.

    Saving adds them to what the store holds for the same characteristic, hour and
    shift (the service flushes increments), so a bucket grows as its hour's values come.
    """

    characteristic: str
    start: datetime
    sums: CapabilitySums


class CharacteristicStore(Protocol):
    async def upsert_characteristics(self, records: Sequence[CharacteristicRecord]) -> None: ...
    async def list_characteristics(self) -> list[CharacteristicRecord]: ...
    async def delete_characteristic(self, characteristic: str) -> bool:
        """Forget a characteristic's definition (its data stays); False if it was unknown."""
        ...


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
    async def verdicts(
        self,
        process: str,
        start: datetime,
        end: datetime,
        limit: int = 1000,
        newest: bool = False,
        first_pass_only: bool = False,
    ) -> list[InspectionVerdict]:
        """A process's verdicts in ``[start, end)`` in (time, ingest_id) order, at most
        ``limit``: the earliest ones, or with ``newest`` the latest ones (still returned
        oldest first); ``first_pass_only`` keeps first submissions only."""
        ...

    async def history(
        self,
        characteristic: str,
        start: datetime,
        end: datetime,
        limit: int = 1000,
        after: HistoryCursor | None = None,
    ) -> HistoryPage:
        """Raw measurements (every quality) in ``[start, end)``, in time order, one page.

        Pass the previous page's ``next_after`` as ``after`` to read the next page.
        """
        ...

    async def buckets(
        self, characteristic: str, start: datetime, end: datetime, width: timedelta
    ) -> list[Bucket]:
        """Per-bucket sufficient statistics of good measurements in ``[start, end)``.

        ``width`` is a whole number of seconds; buckets with no data are omitted. A bucket
        is included when its start lies in the range, so align ``start`` and ``end`` to
        the width for exact totals.
        """
        ...

    async def first_pass_counts(self, start: datetime, end: datetime) -> list[FirstPassCount]:
        """First-pass inspections and passes per process in ``[start, end)``, by process."""
        ...

    async def cost_totals(self, start: datetime, end: datetime) -> list[CostTotal]:
        """Cost events summed per scope, category and currency in ``[start, end)``."""
        ...


class LimitStore(Protocol):
    async def save_limits(self, item: StoredLimits) -> None: ...
    async def active_limits(self, characteristic: str) -> StoredLimits | None: ...
    async def limit_history(self, characteristic: str) -> list[StoredLimits]:
        """Every limit set of a characteristic, oldest version first."""
        ...


class AlarmStore(Protocol):
    async def save_alarm(self, alarm: AlarmRecord) -> AlarmRecord:
        """Insert (id None) or update an alarm and add an event; returns it with its id."""
        ...

    async def save_alarms(self, alarms: Sequence[AlarmRecord]) -> list[AlarmRecord]:
        """`save_alarm` for each, in one transaction (a batch's changes cost one commit)."""
        ...

    async def get_alarm(self, alarm_id: int) -> AlarmRecord | None:
        """One alarm, whatever its state; None for an id never stored."""
        ...

    async def list_alarms(
        self, characteristic: str | None = None, open_only: bool = True
    ) -> list[AlarmRecord]:
        """Alarms in id order; with ``characteristic``, those concerning it (opened on it
        or grouping it); ``open_only``: the unresolved ones."""
        ...

    async def alarm_events(self, alarm_id: int) -> list[AlarmEvent]:
        """Every saved state of an alarm, oldest first (its audit history)."""
        ...


class DeadLetterStore(Protocol):
    async def add_dead_letters(self, items: Sequence[DeadLetter]) -> None: ...
    async def list_dead_letters(self, limit: int = 100) -> list[DeadLetter]: ...


class GradeStore(Protocol):
    async def add_grade_snapshots(self, items: Sequence[GradeSnapshot]) -> None: ...
    async def add_capability_sums(self, items: Sequence[CapabilityBucket]) -> None:
        """Add each bucket's sums to the stored ones (same characteristic, start, shift)."""
        ...

    async def capability_totals(self, start: datetime, end: datetime) -> dict[str, CapabilitySums]:
        """Per characteristic, the sums of its buckets starting in ``[start, end)``."""
        ...

    async def grade_history(
        self, level: str, entity: str, start: datetime, end: datetime
    ) -> list[GradeSnapshot]:
        """Snapshots of one entity in ``[start, end)``, oldest first."""
        ...


class Store(
    CharacteristicStore,
    MeasurementStore,
    LimitStore,
    AlarmStore,
    DeadLetterStore,
    GradeStore,
    Protocol,
):
    """Everything the service stores. ``kind`` names the backend for /healthz:
    "sqlite", "postgresql" or "timescaledb"."""

    @property
    def kind(self) -> str: ...

    async def open(self) -> None: ...
    async def close(self) -> None: ...
