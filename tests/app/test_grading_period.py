"""Grading periods: relative spans ending now, or whole UTC days inclusive."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.periods import parse_period

NOW = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)


def _day(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        (None, NOW - timedelta(days=30), NOW),
        ("7d", NOW - timedelta(days=7), NOW),
        ("24h", NOW - timedelta(hours=24), NOW),
        (
            "2026-01-01/2026-03-31",
            datetime(2026, 1, 1, tzinfo=UTC),
            datetime(2026, 4, 1, tzinfo=UTC),
        ),
        (
            "2026-02-28/2026-02-28",
            datetime(2026, 2, 28, tzinfo=UTC),
            datetime(2026, 3, 1, tzinfo=UTC),
        ),
    ],
)
def test_periods_are_half_open_spans(text: str | None, start: datetime, end: datetime) -> None:
    period = parse_period(text, NOW)
    assert (period.start, period.end) == (start, end)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0d", "longer than zero"),
        ("7w", "expected e.g. 7d"),
        ("2026-03-31/2026-01-01", "is before"),
        ("2026-02-30/2026-03-01", "expected e.g. 7d"),
        ("0001-01-01/9999-12-31", "years 1970 to 2999"),
        ("2026-01-01/9999-12-31", "years 1970 to 2999"),
    ],
)
def test_a_bad_period_says_what_is_accepted(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_period(text, NOW)
