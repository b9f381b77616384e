"""Validation of the one measurement model: every bad field is named in InvalidRecord."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from ingest.errors import InvalidRecord
from ingest.model import CostCategory, Quality
from tests.ingest.records import cost_event, measurement, verdict

NAIVE = datetime(2025, 3, 14, 8, 0)


class SubFloat(float):
    """A float that is not exactly ``float``, as ``numpy.float64`` is."""


LONG_TEXT = "x" * 257


def _future(minutes: float) -> datetime:
    return datetime.now(UTC) + timedelta(minutes=minutes)


def _later(minutes: float) -> Callable[[], datetime]:
    """A time that far ahead of the clock when the test runs (not when it is collected)."""
    return lambda: _future(minutes)


def _resolve(overrides: dict[str, Any]) -> dict[str, Any]:
    return {k: v() if callable(v) else v for k, v in overrides.items()}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        pytest.param({"time": NAIVE}, "time", id="naive time"),
        pytest.param({"time": _later(10)}, "time", id="time 10 min in the future"),
        pytest.param({"time": "2025-03-14T08:00:00Z"}, "time", id="time as text"),
        pytest.param({"characteristic": ""}, "characteristic", id="empty characteristic"),
        pytest.param({"characteristic": "   "}, "characteristic", id="blank characteristic"),
        pytest.param({"characteristic": LONG_TEXT}, "characteristic", id="long characteristic"),
        pytest.param({"value": math.nan}, "value", id="NaN value"),
        pytest.param({"value": math.inf}, "value", id="inf value"),
        pytest.param({"value": -math.inf}, "value", id="-inf value"),
        pytest.param({"value": True}, "value", id="bool value"),
        pytest.param({"value": "25.01"}, "value", id="string value"),
        pytest.param({"value": None}, "value", id="missing value"),
        pytest.param({"ingest_id": ""}, "ingest_id", id="empty ingest id"),
        pytest.param({"part": ""}, "part", id="empty part"),
        pytest.param({"part": LONG_TEXT}, "part", id="long part"),
        pytest.param({"lot": LONG_TEXT}, "lot", id="long lot"),
    ],
)
def test_a_bad_measurement_field_is_named_in_the_error(
    overrides: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidRecord) as caught:
        measurement(**_resolve(overrides))

    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        pytest.param({"time": NAIVE}, "time", id="naive time"),
        pytest.param({"time": _later(6)}, "time", id="time 6 min in the future"),
        pytest.param({"process": ""}, "process", id="empty process"),
        pytest.param({"process": LONG_TEXT}, "process", id="long process"),
        pytest.param({"part": " "}, "part", id="blank part"),
        pytest.param({"ok": "OK"}, "ok", id="ok as text"),
        pytest.param({"ok": 1}, "ok", id="ok as int"),
        pytest.param({"first_pass": None}, "first_pass", id="first_pass missing"),
        pytest.param({"ingest_id": ""}, "ingest_id", id="empty ingest id"),
    ],
)
def test_a_bad_verdict_field_is_named_in_the_error(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRecord) as caught:
        verdict(**_resolve(overrides))

    assert caught.value.field == field


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        pytest.param({"time": NAIVE}, "time", id="naive time"),
        pytest.param({"time": _later(60)}, "time", id="time an hour in the future"),
        pytest.param({"scope": ""}, "scope", id="empty scope"),
        pytest.param({"scope": LONG_TEXT}, "scope", id="long scope"),
        pytest.param({"currency": ""}, "currency", id="empty currency"),
        pytest.param({"category": "bribe"}, "category", id="unknown category"),
        pytest.param({"category": "scrap"}, "category", id="category as plain text"),
        pytest.param({"amount": -0.01}, "amount", id="negative cost"),
        pytest.param({"amount": math.nan}, "amount", id="NaN cost"),
        pytest.param({"amount": math.inf}, "amount", id="inf cost"),
        pytest.param({"amount": False}, "amount", id="bool cost"),
        pytest.param({"amount": "100"}, "amount", id="string cost"),
        pytest.param({"ingest_id": ""}, "ingest_id", id="empty ingest id"),
    ],
)
def test_a_bad_cost_event_field_is_named_in_the_error(
    overrides: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidRecord) as caught:
        cost_event(**_resolve(overrides))

    assert caught.value.field == field


def test_good_records_construct() -> None:
    m = measurement(value=25, part=None, lot=None, quality=Quality.UNCERTAIN)
    v = verdict(ok=False, first_pass=False, defects=("scratch",))
    c = cost_event(category=CostCategory.OUTPUT_VALUE, amount=0, note="y" * 1000)

    assert (m.value, m.part, m.quality) == (25, None, Quality.UNCERTAIN)
    assert (v.ok, v.first_pass, v.defects) == (False, False, ("scratch",))
    assert (c.category, c.amount) == (CostCategory.OUTPUT_VALUE, 0)


@pytest.mark.parametrize(
    "when",
    [
        pytest.param(datetime(2025, 3, 14, 10, 0, tzinfo=timezone(timedelta(hours=2))), id="+02"),
        pytest.param(_future(4), id="4 min ahead, within the clock skew allowance"),
        pytest.param(datetime(1999, 1, 1, tzinfo=UTC), id="long ago"),
    ],
)
def test_any_aware_time_not_far_in_the_future_is_accepted(when: datetime) -> None:
    assert measurement(time=when).time == when
    assert verdict(time=when).time == when
    assert cost_event(time=when).time == when


def test_text_of_exactly_256_characters_is_accepted() -> None:
    assert len(measurement(characteristic="c" * 256).characteristic) == 256


def test_records_are_frozen() -> None:
    m = measurement()

    with pytest.raises(dataclasses.FrozenInstanceError):
        m.value = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("category", "internal", "external"),
    [
        (CostCategory.SCRAP, True, False),
        (CostCategory.REWORK, True, False),
        (CostCategory.DOWNGRADE, True, False),
        (CostCategory.STOPPAGE, True, False),
        (CostCategory.INCIDENT, True, False),
        (CostCategory.CLAIM, False, True),
        (CostCategory.RETURN, False, True),
        (CostCategory.PRICE_REDUCTION, False, True),
        (CostCategory.WARRANTY, False, True),
        (CostCategory.OUTPUT_VALUE, False, False),
    ],
)
def test_cost_categories_are_internal_or_external_losses(
    category: CostCategory, internal: bool, external: bool
) -> None:
    assert category.is_internal_loss is internal
    assert category.is_external_loss is external


def test_every_cost_category_is_classified_in_the_table_above() -> None:
    assert {c.value for c in CostCategory} == {
        "scrap",
        "rework",
        "downgrade",
        "stoppage",
        "incident",
        "claim",
        "return",
        "price_reduction",
        "warranty",
        "output_value",
    }


def test_a_value_whose_square_would_overflow_is_refused_by_name() -> None:
    with pytest.raises(InvalidRecord, match=r"value: beyond ±1e\+100"):
        measurement(0, value=1e200)
    assert measurement(0, value=-1e100).value == -1e100


@pytest.mark.parametrize(
    ("field", "text"),
    [
        pytest.param("characteristic", "é" * 256, id="256 non-ASCII characters"),
        pytest.param("characteristic", " line1 . diameter ", id="ASCII with spaces"),
        pytest.param("part", "Ø 25 h6 \u00a0 中", id="non-ASCII with spaces"),
        pytest.param("lot", "\x7f", id="DEL, an ASCII control character"),
    ],
)
def test_unusual_but_good_text_is_accepted(field: str, text: str) -> None:
    assert getattr(measurement(0, **{field: text}), field) == text


@pytest.mark.parametrize(
    ("field", "text", "problem"),
    [
        pytest.param("characteristic", "\t\n ", "must not be empty", id="ASCII blanks"),
        pytest.param("part", "\u00a0\u2003", "must not be empty", id="non-ASCII blanks"),
        pytest.param("lot", "é" * 257, "longer than 256 characters", id="257 non-ASCII"),
        pytest.param("ingest_id", "a\x00b", "contains a NUL character", id="NUL"),
        pytest.param("lot", "é\x00", "contains a NUL character", id="NUL after non-ASCII"),
        pytest.param("part", b"S1", "must be text, got bytes", id="bytes"),
    ],
)
def test_bad_text_is_refused_with_its_problem(field: str, text: Any, problem: str) -> None:
    with pytest.raises(InvalidRecord) as caught:
        measurement(0, **{field: text})

    assert (caught.value.field, caught.value.problem) == (field, problem)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        pytest.param(25, None, id="int"),
        pytest.param(1e100, None, id="the largest"),
        pytest.param(-1e100, None, id="the most negative"),
        pytest.param(SubFloat(25.01), None, id="a float subclass (numpy.float64 is one)"),
        pytest.param(SubFloat(math.nan), "must be finite, got nan", id="NaN of a subclass"),
        pytest.param(SubFloat(2e100), "beyond ±1e+100, got 2e+100", id="big subclass"),
        pytest.param(10**101, "beyond ±1e+100, got 1e+101", id="big int"),
        pytest.param(False, "must be a number, got bool", id="bool"),
    ],
)
def test_values_are_checked_whatever_their_number_type(value: Any, problem: str | None) -> None:
    if problem is None:
        assert measurement(0, value=value).value == value
        return
    with pytest.raises(InvalidRecord) as caught:
        measurement(0, value=value)

    assert (caught.value.field, caught.value.problem) == ("value", problem)


def test_text_with_a_lone_surrogate_is_refused_by_name() -> None:
    with pytest.raises(InvalidRecord, match="lot: is not valid Unicode text"):
        measurement(0, lot="\ud800")
