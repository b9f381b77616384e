"""Control limits of the individuals / moving-range chart (``spc.charts``)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spc import control_limits
from spc.constants import D2_N2, D3_LOWER_N2, D3_N2, D4_N2
from tests.spc import naive

# Montgomery, *Introduction to Statistical Quality Control*, 6th ed., Example 6.5:
# cost of processing mortgage-loan applications, 20 individual weekly values.
MORTGAGE_COSTS = [
    310, 288, 297, 298, 307, 303, 294, 297, 308, 306,
    294, 299, 297, 299, 314, 295, 293, 306, 301, 304,
]  # fmt: skip

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


def test_montgomery_example_6_5_centre_line_is_300_5() -> None:
    """Montgomery, ISQC 6th ed., Example 6.5: x-bar = 300.5."""
    limits = control_limits(MORTGAGE_COSTS)
    assert limits.chart == "imr"
    assert limits.center == pytest.approx(300.5, abs=1e-12)


def test_montgomery_example_6_5_average_moving_range_is_7_79() -> None:
    """Montgomery, ISQC 6th ed., Example 6.5: MR-bar = 7.79 (exactly 148 / 19)."""
    limits = control_limits(MORTGAGE_COSTS)
    assert limits.dispersion is not None
    assert limits.dispersion.center == pytest.approx(148 / 19, rel=1e-15)
    assert limits.dispersion.center == pytest.approx(7.79, abs=0.005)


def test_montgomery_example_6_5_individuals_limits_match_the_book() -> None:
    """Montgomery, ISQC 6th ed., Example 6.5: UCL = 321.22, LCL = 279.78."""
    limits = control_limits(MORTGAGE_COSTS)
    # The book divides the rounded MR-bar 7.79 by the tabulated d2 = 1.128:
    # 300.5 +/- 3 * 7.79 / 1.128 = 321.218 / 279.782, printed 321.22 / 279.78.
    assert pytest.approx(321.22, abs=0.005) == 300.5 + 3 * 7.79 / 1.128
    # We use the unrounded MR-bar and the exact d2 = 2/sqrt(pi) = 1.12838, which gives
    # 321.2097 / 279.7903 (321.21 / 279.79): 0.0103 from the printed figures, so the book's
    # values hold to 0.015, not 0.01 -- the gap is the book's rounding, not ours.
    assert limits.ucl == pytest.approx(321.21, abs=0.005)
    assert limits.lcl == pytest.approx(279.79, abs=0.005)
    assert limits.ucl == pytest.approx(321.22, abs=0.015)
    assert limits.lcl == pytest.approx(279.78, abs=0.015)
    assert limits.sigma == pytest.approx((148 / 19) / (2 / math.sqrt(math.pi)), rel=1e-15)


def test_montgomery_example_6_5_moving_range_chart_limits_match_the_book() -> None:
    """Montgomery, ISQC 6th ed., Example 6.5: MR chart UCL = D4 * MR-bar = 25.45, LCL = 0."""
    moving_range = control_limits(MORTGAGE_COSTS).dispersion
    assert moving_range is not None
    assert moving_range.chart == "mr"
    # The book: 3.267 * 7.79 = 25.449; ours: 3.26653 * 7.78947 = 25.4446. Same rounding
    # story as the individuals limits; here the gap is 0.006.
    assert moving_range.ucl == pytest.approx(25.45, abs=0.01)
    assert moving_range.lcl == 0.0


def test_montgomery_example_6_5_limits_equal_the_naive_reference() -> None:
    """Montgomery, ISQC 6th ed., Example 6.5, against the loop-by-loop reference."""
    limits = control_limits(MORTGAGE_COSTS)
    expected = naive.imr_limits([float(x) for x in MORTGAGE_COSTS])
    assert limits.dispersion is not None
    assert limits.center == pytest.approx(expected.center, rel=1e-12)
    assert limits.sigma == pytest.approx(expected.sigma, rel=1e-12)
    assert limits.ucl == pytest.approx(expected.ucl, rel=1e-12)
    assert limits.lcl == pytest.approx(expected.lcl, rel=1e-12)
    assert limits.dispersion.center == pytest.approx(expected.mr_bar, rel=1e-12)
    assert limits.dispersion.ucl == pytest.approx(expected.mr_ucl, rel=1e-12)


@pytest.mark.parametrize(
    ("value", "printed"),
    [(D2_N2, 1.128), (D3_N2, 0.853), (D3_LOWER_N2, 0.0), (D4_N2, 3.267)],
    ids=["d2", "d3", "D3", "D4"],
)
def test_constants_for_subgroups_of_two_match_the_aiag_table(value: float, printed: float) -> None:
    """AIAG SPC manual, 2nd ed., appendix E, n = 2: d2 1.128, d3 0.853, D3 0, D4 3.267."""
    assert round(value, 3) == printed


def test_constants_equal_their_definitions() -> None:
    assert pytest.approx(naive.D2, rel=1e-15) == D2_N2
    assert pytest.approx(naive.D3, rel=1e-15) == D3_N2
    assert pytest.approx(naive.D4, rel=1e-15) == D4_N2
    assert max(0.0, 1.0 - 3.0 * D3_N2 / D2_N2) == D3_LOWER_N2


def test_limits_report_the_constants_they_used() -> None:
    limits = control_limits(MORTGAGE_COSTS)
    assert limits.dispersion is not None
    assert limits.constants["d2"] == D2_N2
    assert limits.constants["E2"] == pytest.approx(3.0 / D2_N2, rel=1e-15)
    assert limits.dispersion.constants == {"d2": D2_N2, "d3": D3_N2, "D3": 0.0, "D4": D4_N2}
    assert limits.dispersion.sigma == pytest.approx(D3_N2 * limits.sigma, rel=1e-15)


def test_control_limits_are_frozen() -> None:
    limits = control_limits([1.0, 2.0, 4.0])
    with pytest.raises(dataclasses.FrozenInstanceError):
        limits.ucl = 0.0  # type: ignore[misc]


def test_two_values_are_enough_for_an_individuals_chart() -> None:
    limits = control_limits(np.array([1.0, 3.0]))
    # mean 2, one moving range of 2, sigma-hat = 2 / d2
    assert limits.center == 2.0
    assert limits.sigma == pytest.approx(2.0 / naive.D2, rel=1e-15)


@settings(max_examples=60, deadline=None, database=None)
@given(st.lists(finite, min_size=2, max_size=60))
def test_limits_equal_the_naive_reference_on_random_data(values: list[float]) -> None:
    limits = control_limits(values)
    expected = naive.imr_limits(values)
    scale = max(abs(x) for x in values)
    # numpy sums pairwise, the reference in order: allow rounding relative to the data scale.
    tol = 1e-12 * scale
    assert limits.dispersion is not None
    assert limits.center == pytest.approx(expected.center, rel=1e-12, abs=tol)
    assert limits.sigma == pytest.approx(expected.sigma, rel=1e-12, abs=tol)
    assert limits.ucl == pytest.approx(expected.ucl, rel=1e-12, abs=tol)
    assert limits.lcl == pytest.approx(expected.lcl, rel=1e-12, abs=tol)
    assert limits.dispersion.center == pytest.approx(expected.mr_bar, rel=1e-12, abs=tol)
    assert limits.dispersion.ucl == pytest.approx(expected.mr_ucl, rel=1e-12, abs=tol)


def test_unsupported_chart_is_refused_with_the_supported_list() -> None:
    with pytest.raises(ValueError, match=r"'xbar_r' is not supported.*supported charts: imr"):
        control_limits(MORTGAGE_COSTS, chart="xbar_r")


def test_two_dimensional_data_is_refused_with_its_shape() -> None:
    with pytest.raises(ValueError, match=r"one-dimensional.*\(2, 3\)"):
        control_limits([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])


@pytest.mark.parametrize("data", [[], [1.0]], ids=["empty", "one-value"])
def test_fewer_than_two_values_are_refused(data: list[float]) -> None:
    with pytest.raises(ValueError, match="at least 2 values"):
        control_limits(data)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
def test_nan_or_infinite_values_are_refused_with_a_hint_to_drop_them(bad: float) -> None:
    with pytest.raises(ValueError, match=r"NaN or infinite.*drop them"):
        control_limits([1.0, bad, 3.0])
