"""The one measurement model: every collector and the HTTP push produce these records.

Times are timezone-aware UTC datetimes. ``ingest_id`` is a deterministic key derived
from the source's own identity of the record, so a redelivered message or a resent
batch maps to the same key and is stored once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from ingest.errors import InvalidRecord

MAX_FUTURE_SKEW = timedelta(minutes=5)
"""A timestamp further ahead of the receiving clock than this is rejected."""


class Quality(StrEnum):
    """Quality of a reading as reported by its source (OPC UA status classes)."""

    GOOD = "good"
    UNCERTAIN = "uncertain"
    BAD = "bad"


class CostCategory(StrEnum):
    """Kinds of cost events; internal and external losses per the grading document."""

    SCRAP = "scrap"
    REWORK = "rework"
    DOWNGRADE = "downgrade"
    STOPPAGE = "stoppage"
    INCIDENT = "incident"
    CLAIM = "claim"
    RETURN = "return"
    PRICE_REDUCTION = "price_reduction"
    WARRANTY = "warranty"
    OUTPUT_VALUE = "output_value"

    @property
    def is_internal_loss(self) -> bool:
        return self in _INTERNAL

    @property
    def is_external_loss(self) -> bool:
        return self in _EXTERNAL


_INTERNAL = frozenset(
    {
        CostCategory.SCRAP,
        CostCategory.REWORK,
        CostCategory.DOWNGRADE,
        CostCategory.STOPPAGE,
        CostCategory.INCIDENT,
    }
)
_EXTERNAL = frozenset(
    {CostCategory.CLAIM, CostCategory.RETURN, CostCategory.PRICE_REDUCTION, CostCategory.WARRANTY}
)


MAX_ABS_VALUE = 1e100
"""Larger readings are refused: no instrument gives them, and their squares (summed for
the bucket statistics) would overflow a double."""


def _check_time(value: datetime, name: str = "time") -> None:
    if not isinstance(value, datetime):
        raise InvalidRecord(name, f"must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None:
        raise InvalidRecord(name, "must carry a timezone (UTC offset)")
    if value - datetime.now(UTC) > MAX_FUTURE_SKEW:
        raise InvalidRecord(name, f"{value.isoformat()} is more than 5 minutes in the future")


def _check_text(value: str, name: str, required: bool = True) -> None:
    # the common case, plain ASCII text, in a few C calls: no surrogate can hide in it
    if (
        type(value) is str
        and len(value) <= 256
        and value.isascii()
        and "\x00" not in value
        and not (required and (not value or value.isspace()))
    ):
        return
    if not isinstance(value, str):
        raise InvalidRecord(name, f"must be text, got {type(value).__name__}")
    if required and not value.strip():
        raise InvalidRecord(name, "must not be empty")
    if len(value) > 256:
        raise InvalidRecord(name, "longer than 256 characters")
    if "\x00" in value:  # PostgreSQL text cannot hold NUL: refuse it on every backend alike
        raise InvalidRecord(name, "contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, e.g. from a JSON "\ud800" escape
        raise InvalidRecord(name, "is not valid Unicode text (a lone surrogate)") from None


def _check_value(value: float) -> None:
    if type(value) is float and -MAX_ABS_VALUE <= value <= MAX_ABS_VALUE:
        return  # finite (NaN fails both comparisons) and in range: the common case
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRecord("value", f"must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise InvalidRecord("value", f"must be finite, got {value}")
    if abs(value) > MAX_ABS_VALUE:
        raise InvalidRecord("value", f"beyond ±{MAX_ABS_VALUE:g}, got {value:g}")


@dataclass(frozen=True, slots=True)
class Measurement:
    """One variables measurement of a quality characteristic, in its configured unit."""

    time: datetime
    characteristic: str
    value: float
    ingest_id: str
    source: str
    part: str | None = None
    lot: str | None = None
    quality: Quality = Quality.GOOD

    def __post_init__(self) -> None:
        _check_time(self.time)
        _check_text(self.characteristic, "characteristic")
        _check_text(self.ingest_id, "ingest_id")
        _check_value(self.value)
        if self.part is not None:
            _check_text(self.part, "part")
        if self.lot is not None:
            _check_text(self.lot, "lot")


@dataclass(frozen=True, slots=True)
class InspectionVerdict:
    """An OK/NOK verdict on one unit at one inspection station (attributes data).

    ``first_pass`` is True for a unit's first submission to this inspection and False for
    re-inspection after rework; only first submissions count towards first-pass yield.
    """

    time: datetime
    process: str
    part: str
    ok: bool
    first_pass: bool
    ingest_id: str
    source: str
    defects: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        _check_time(self.time)
        _check_text(self.process, "process")
        _check_text(self.part, "part")
        _check_text(self.ingest_id, "ingest_id")
        if not isinstance(self.ok, bool):
            raise InvalidRecord("ok", "must be true or false")
        if not isinstance(self.first_pass, bool):
            raise InvalidRecord("first_pass", "must be true or false")


@dataclass(frozen=True, slots=True)
class CostEvent:
    """A quality cost (or the output value it is measured against) for a line or plant.

    ``amount`` is in ``currency`` units and never negative.
    """

    time: datetime
    scope: str
    category: CostCategory
    amount: float
    currency: str
    ingest_id: str
    source: str
    note: str | None = None

    def __post_init__(self) -> None:
        _check_time(self.time)
        _check_text(self.scope, "scope")
        _check_text(self.currency, "currency")
        _check_text(self.ingest_id, "ingest_id")
        if not isinstance(self.category, CostCategory):
            raise InvalidRecord("category", f"unknown cost category {self.category!r}")
        if isinstance(self.amount, bool) or not isinstance(self.amount, int | float):
            raise InvalidRecord("amount", "must be a number")
        if not math.isfinite(self.amount) or self.amount < 0:
            raise InvalidRecord("amount", f"must be finite and not negative, got {self.amount}")
        if self.note is not None and len(self.note) > 2000:
            raise InvalidRecord("note", "longer than 2000 characters")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Input that was rejected, kept verbatim with the reason so nothing is lost."""

    received_at: datetime
    source: str
    reason: str
    payload: str
