"""Run rules on a location chart (``spc.rules``)."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spc import Violation, check_rules
from tests.spc import naive

# centre 10, sigma 0.5: UCL 11.5 and LCL 8.5 are exact in binary floating point
CENTER, SIGMA = 10.0, 0.5
UCL, LCL = 11.5, 8.5
ABOVE_UCL = math.nextafter(UCL, math.inf)
BELOW_LCL = math.nextafter(LCL, -math.inf)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([UCL], []),
        ([LCL], []),
        ([ABOVE_UCL], [0]),
        ([BELOW_LCL], [0]),
        ([CENTER], []),
        ([math.nextafter(UCL, -math.inf)], []),
        ([12.0, 10.0, 7.0], [0, 2]),
        ([10.0, 11.5, 11.6, 8.5, 8.4, 10.2], [2, 4]),
        ([math.inf, -math.inf], [0, 1]),
        ([], []),
    ],
    ids=[
        "on-ucl",
        "on-lcl",
        "one-ulp-above-ucl",
        "one-ulp-below-lcl",
        "on-centre",
        "one-ulp-inside-ucl",
        "both-sides",
        "mixed-series",
        "infinities",
        "empty",
    ],
)
def test_rule_1_flags_only_points_strictly_beyond_a_limit(
    values: list[float], expected: list[int]
) -> None:
    assert check_rules(values, CENTER, SIGMA) == [Violation(i, "1") for i in expected]


def test_point_exactly_on_ucl_is_in_control() -> None:
    """NIST/SEMATECH e-Handbook sec. 6.3.2: rule 1 is a point *beyond* the 3-sigma limits."""
    assert check_rules([UCL], CENTER, SIGMA) == []


def test_point_just_beyond_ucl_is_a_violation() -> None:
    assert check_rules([ABOVE_UCL], CENTER, SIGMA) == [Violation(0, "1")]


def test_nan_point_is_not_a_violation() -> None:
    assert check_rules([math.nan, 20.0], CENTER, SIGMA) == [Violation(1, "1")]


def test_violations_are_frozen_and_ordered_by_index() -> None:
    first, second = Violation(3, "1"), Violation(7, "1")
    assert sorted([second, first]) == [first, second]
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.index = 0  # type: ignore[misc]


def test_asking_for_rule_1_twice_reports_each_point_once() -> None:
    assert check_rules([12.0], CENTER, SIGMA, rules=("1", "1")) == [Violation(0, "1")]


def test_asking_for_no_rules_finds_no_violations() -> None:
    assert check_rules([12.0, 7.0], CENTER, SIGMA, rules=()) == []


@pytest.mark.parametrize("rule", ["2", "3", "4", "5", "6", "7", "8"])
def test_rules_not_implemented_yet_are_refused_by_name(rule: str) -> None:
    with pytest.raises(ValueError, match=rf"\['{rule}'\] are not implemented yet.*available"):
        check_rules([10.0], CENTER, SIGMA, rules=("1", rule))


@pytest.mark.parametrize("rule", ["9", "", "rule1", 1], ids=["9", "empty", "rule1", "int-1"])
def test_unknown_rule_ids_are_refused(rule: object) -> None:
    with pytest.raises(ValueError, match="not implemented yet"):
        check_rules([10.0], CENTER, SIGMA, rules=(rule,))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "sigma", [0.0, -0.5, math.nan, math.inf], ids=["zero", "negative", "nan", "inf"]
)
def test_sigma_that_is_not_positive_and_finite_is_refused(sigma: float) -> None:
    with pytest.raises(ValueError, match="sigma must be a positive finite number"):
        check_rules([10.0], CENTER, sigma)


finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None, database=None)
@given(
    values=st.lists(finite, max_size=50),
    center=finite,
    sigma=st.floats(1e-6, 1e5, allow_nan=False, allow_infinity=False),
)
def test_rule_1_equals_the_naive_reference(
    values: list[float], center: float, sigma: float
) -> None:
    expected = naive.rule1(values, center + 3.0 * sigma, center - 3.0 * sigma)
    assert check_rules(values, center, sigma) == [Violation(i, "1") for i in expected]
