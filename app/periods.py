"""Grading periods as the API and settings take them: ``7d``, ``24h`` or a date range."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

DEFAULT_PERIOD = "30d"
EARLIEST_YEAR, LATEST_YEAR = 1970, 2999  # beyond: no plant data, and datetime overflows
_RELATIVE = re.compile(r"^(\d{1,4})([hd])$")


@dataclass(frozen=True)
class Period:
    """A half-open grading period ``[start, end)`` and how it was asked for."""

    start: datetime
    end: datetime
    label: str


def parse_period(text: str | None, now: datetime) -> Period:
    """``7d``, ``24h`` (ending now) or ``2026-01-01/2026-03-31`` (whole UTC days, inclusive).

    Raises ``ValueError`` with a message that says what is accepted.
    """
    label = text or DEFAULT_PERIOD
    if m := _RELATIVE.match(label):
        amount, unit = int(m.group(1)), m.group(2)
        span = timedelta(hours=amount) if unit == "h" else timedelta(days=amount)
        if amount == 0:
            raise ValueError("period: must be longer than zero")
        return Period(now - span, now, label)
    first, sep, last = label.partition("/")
    try:
        if not sep:
            raise ValueError
        start_day, end_day = date.fromisoformat(first), date.fromisoformat(last)
    except ValueError:
        raise ValueError(
            f"period: expected e.g. 7d, 24h or 2026-01-01/2026-03-31, got {label!r}"
        ) from None
    if end_day < start_day:
        raise ValueError(f"period: {last} is before {first}")
    if start_day.year < EARLIEST_YEAR or end_day.year > LATEST_YEAR:
        raise ValueError(f"period: dates must lie in the years {EARLIEST_YEAR} to {LATEST_YEAR}")
    start = datetime(start_day.year, start_day.month, start_day.day, tzinfo=UTC)
    end = datetime(end_day.year, end_day.month, end_day.day, tzinfo=UTC) + timedelta(days=1)
    return Period(start, end, label)
