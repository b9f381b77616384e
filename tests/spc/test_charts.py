"""Control limits of the variables and attribute charts (``spc.charts``)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spc import control_limits
from spc.charts import ControlLimits
from spc.constants import D2_N2, D3_LOWER_N2, D3_N2, D4_N2, chart_constants
from tests.spc import naive, naive_charts

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
    with pytest.raises(ValueError, match=r"'ewma' is not supported.*supported charts: imr, xbar_r"):
        control_limits(MORTGAGE_COSTS, chart="ewma")


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


# --- X-bar charts --------------------------------------------------------------------------

# Montgomery, *Introduction to Statistical Quality Control*, 6th ed., Table 6.3 (Examples 6.1
# and 6.3): inside diameter (mm) of forged piston rings, 25 samples of 5; the same values as
# the Phase I rows of the ``pistonrings`` data set shipped with the R package qcc.
PISTON_RINGS = [
    [74.030, 74.002, 74.019, 73.992, 74.008], [73.995, 73.992, 74.001, 74.011, 74.004],
    [73.988, 74.024, 74.021, 74.005, 74.002], [74.002, 73.996, 73.993, 74.015, 74.009],
    [73.992, 74.007, 74.015, 73.989, 74.014], [74.009, 73.994, 73.997, 73.985, 73.993],
    [73.995, 74.006, 73.994, 74.000, 74.005], [73.985, 74.003, 73.993, 74.015, 73.988],
    [74.008, 73.995, 74.009, 74.005, 74.004], [73.998, 74.000, 73.990, 74.007, 73.995],
    [73.994, 73.998, 73.994, 73.995, 73.990], [74.004, 74.000, 74.007, 74.000, 73.996],
    [73.983, 74.002, 73.998, 73.997, 74.012], [74.006, 73.967, 73.994, 74.000, 73.984],
    [74.012, 74.014, 73.998, 73.999, 74.007], [74.000, 73.984, 74.005, 73.998, 73.996],
    [73.994, 74.012, 73.986, 74.005, 74.007], [74.006, 74.010, 74.018, 74.003, 74.000],
    [73.984, 74.002, 74.003, 74.005, 73.997], [74.000, 74.010, 74.013, 74.020, 74.003],
    [73.988, 74.001, 74.009, 74.005, 73.996], [74.004, 73.999, 73.990, 74.006, 74.009],
    [74.010, 73.989, 73.990, 74.009, 74.014], [74.015, 74.008, 73.993, 74.000, 74.010],
    [73.982, 73.984, 73.995, 74.017, 74.013],
]  # fmt: skip

measurements = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


def test_montgomery_example_6_1_grand_mean_and_average_range_match_the_book() -> None:
    """Montgomery, ISQC 6th ed., Example 6.1: x-double-bar = 74.001, R-bar = 0.023."""
    limits = control_limits(PISTON_RINGS, chart="xbar_r")
    assert limits.chart == "xbar_r"
    assert limits.dispersion is not None
    assert round(limits.center, 3) == 74.001
    assert round(limits.dispersion.center, 3) == 0.023


def test_montgomery_example_6_1_xbar_limits_match_the_book() -> None:
    """Montgomery, ISQC 6th ed., Example 6.1: X-bar chart UCL = 74.014, LCL = 73.988."""
    limits = control_limits(PISTON_RINGS, chart="xbar_r")
    assert isinstance(limits.ucl, float)
    assert isinstance(limits.lcl, float)
    assert round(limits.ucl, 3) == 74.014
    assert round(limits.lcl, 3) == 73.988
    k = chart_constants(5)
    assert limits.sigma == pytest.approx(limits.dispersion.center / k.d2, rel=1e-15)  # type: ignore[union-attr]
    assert limits.constants == {"d2": k.d2, "A2": k.A2}


def test_montgomery_example_6_1_range_chart_limits_match_the_book() -> None:
    """Montgomery, ISQC 6th ed., Example 6.1: R chart UCL = 0.049, LCL = 0."""
    ranges = control_limits(PISTON_RINGS, chart="xbar_r").dispersion
    assert ranges is not None
    assert ranges.chart == "r"
    # The book multiplies the rounded R-bar: 2.114 * 0.023 = 0.0486, printed 0.049. Ours is
    # 2.11450 * 0.02276 = 0.04813 (0.048); the gap is the rounding of R-bar, within 0.001.
    assert round(2.114 * 0.023, 3) == 0.049
    assert ranges.ucl == pytest.approx(0.049, abs=0.001)
    assert ranges.lcl == 0.0
    k = chart_constants(5)
    assert ranges.constants == {"d2": k.d2, "d3": k.d3, "D3": k.D3, "D4": k.D4}


def test_montgomery_example_6_3_xbar_limits_from_s_bar_equal_the_range_based_ones() -> None:
    """Montgomery, ISQC 6th ed., Example 6.3: X-bar limits from s-bar, 74.014 and 73.988 --
    the book's exercise on Table 6.3 notes they equal the R-based limits of Example 6.1."""
    limits = control_limits(PISTON_RINGS, chart="xbar_s")
    deviations = limits.dispersion
    assert limits.chart == "xbar_s"
    assert deviations is not None
    assert deviations.chart == "s"
    assert round(limits.ucl, 3) == 74.014  # type: ignore[arg-type]
    assert round(limits.lcl, 3) == 73.988  # type: ignore[arg-type]
    k = chart_constants(5)
    assert limits.sigma == pytest.approx(deviations.center / k.c4, rel=1e-15)
    assert deviations.lcl == 0.0  # B3 = 0 for n = 5
    assert deviations.ucl == pytest.approx(k.B4 * deviations.center, rel=1e-15)
    assert deviations.constants == {"c4": k.c4, "B3": k.B3, "B4": k.B4}


@pytest.mark.parametrize("chart", ["xbar_r", "xbar_s"])
def test_piston_rings_equal_the_naive_reference(chart: str) -> None:
    limits = control_limits(PISTON_RINGS, chart=chart)
    reference = (naive_charts.xbar_r if chart == "xbar_r" else naive_charts.xbar_s)(PISTON_RINGS)
    _assert_xbar_equal(limits, reference, scale=74.0)


@pytest.mark.parametrize("chart", ["xbar_r", "xbar_s"])
def test_flat_data_with_a_subgroup_size_equals_the_two_dimensional_form(chart: str) -> None:
    flat = [x for group in PISTON_RINGS for x in group]
    assert control_limits(flat, chart=chart, subgroup_size=5) == control_limits(
        PISTON_RINGS, chart=chart
    )
    assert control_limits(PISTON_RINGS, chart=chart, subgroup_size=5).center == pytest.approx(
        74.001176, rel=1e-12
    )


@settings(max_examples=40, deadline=None, database=None)
@given(
    st.integers(2, 25).flatmap(
        lambda n: st.lists(st.lists(measurements, min_size=n, max_size=n), min_size=2, max_size=8)
    ),
    st.sampled_from(["xbar_r", "xbar_s"]),
)
def test_xbar_limits_equal_the_naive_reference_on_random_data(
    groups: list[list[float]], chart: str
) -> None:
    limits = control_limits(groups, chart=chart)
    reference = (naive_charts.xbar_r if chart == "xbar_r" else naive_charts.xbar_s)(groups)
    _assert_xbar_equal(limits, reference, scale=max(abs(x) for g in groups for x in g))


def _assert_xbar_equal(limits: ControlLimits, ref: naive_charts.Limits, scale: float) -> None:
    # numpy sums pairwise, the reference in order: allow rounding relative to the data scale
    tol = 1e-11 * max(scale, 1.0)
    assert limits.dispersion is not None
    assert limits.center == pytest.approx(ref.center, rel=1e-12, abs=tol)
    assert limits.sigma == pytest.approx(ref.sigma[0], rel=1e-9, abs=tol)
    assert limits.ucl == pytest.approx(ref.ucl[0], rel=1e-12, abs=tol)
    assert limits.lcl == pytest.approx(ref.lcl[0], rel=1e-12, abs=tol)
    assert limits.dispersion.center == pytest.approx(ref.spread_center, rel=1e-12, abs=tol)
    assert limits.dispersion.ucl == pytest.approx(ref.spread_ucl, rel=1e-9, abs=tol)
    assert limits.dispersion.lcl == pytest.approx(ref.spread_lcl, rel=1e-9, abs=tol)


def test_flat_data_that_is_not_whole_subgroups_is_refused_with_the_remainder() -> None:
    with pytest.raises(ValueError, match=r"length 11 is not a multiple of subgroup_size 5"):
        control_limits(list(range(11)), chart="xbar_r", subgroup_size=5)


def test_flat_data_without_a_subgroup_size_is_refused() -> None:
    with pytest.raises(ValueError, match="needs subgroup_size"):
        control_limits(list(range(10)), chart="xbar_s")


def test_subgroup_size_that_contradicts_the_columns_is_refused() -> None:
    with pytest.raises(ValueError, match="subgroup_size 4 does not match the 5 columns"):
        control_limits(PISTON_RINGS, chart="xbar_r", subgroup_size=4)


def test_subgroups_of_one_are_sent_to_the_individuals_chart() -> None:
    with pytest.raises(ValueError, match="use chart='imr'"):
        control_limits([[1.0], [2.0], [3.0]], chart="xbar_r")


def test_subgroups_beyond_the_constants_table_are_refused_with_the_range() -> None:
    with pytest.raises(ValueError, match="between 2 and 25"):
        control_limits(np.zeros((3, 26)), chart="xbar_s")


def test_a_single_subgroup_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2 subgroups"):
        control_limits([PISTON_RINGS[0]], chart="xbar_r")


def test_nan_in_a_subgroup_is_refused() -> None:
    with pytest.raises(ValueError, match="NaN or infinite"):
        control_limits([[1.0, 2.0], [math.nan, 3.0]], chart="xbar_r")


# --- attribute charts ----------------------------------------------------------------------

# Montgomery, ISQC 6th ed., Example 7.1 (Table 7.1): nonconforming frozen orange juice cans
# in 30 samples of n = 50 (qcc ``orangejuice``, trial rows). The NIST/SEMATECH e-Handbook,
# sec. 6.3.3.2, charts 30 wafers of 50 chips with the same average proportion, .2313.
ORANGE_JUICE = [
    12, 15, 8, 10, 4, 7, 16, 9, 14, 10, 5, 6, 17, 12, 22,
    8, 10, 5, 13, 11, 20, 18, 24, 15, 9, 12, 7, 13, 9, 6,
]  # fmt: skip
# Montgomery, ISQC 6th ed., Example 7.3 (Table 7.7): nonconformities in 26 samples of 100
# printed circuit boards (qcc ``circuit``, trial rows).
CIRCUIT_BOARDS = [
    21, 24, 16, 12, 15, 5, 28, 20, 31, 25, 20, 24, 16,
    19, 10, 17, 13, 22, 18, 39, 30, 24, 16, 19, 17, 15,
]  # fmt: skip
# Montgomery, ISQC 6th ed., Example 7.4: nonconformities in 20 samples of 5 personal computers
# (qcc ``pcmanufact``).
COMPUTERS = [10, 12, 8, 14, 10, 16, 11, 7, 10, 15, 9, 5, 7, 11, 12, 6, 8, 10, 7, 5]
# Montgomery, ISQC 6th ed., sec. 7.3.1, u chart with variable sample size: nonconformities in
# dyed cloth, inspection units of 50 m^2 (qcc ``dyedcloth``).
DYED_CLOTH = [14, 12, 20, 11, 7, 10, 21, 16, 19, 23]
DYED_CLOTH_UNITS = [10, 8, 13, 10, 9.5, 10, 12, 10.5, 12, 12.5]

counts_and_sizes = st.integers(2, 40).flatmap(
    lambda m: st.tuples(
        st.lists(st.integers(1, 5000), min_size=m, max_size=m),
        st.lists(st.floats(0.0, 1.0), min_size=m, max_size=m),
    )
)


def test_montgomery_example_7_1_p_chart_matches_the_book() -> None:
    """Montgomery, ISQC 6th ed., Example 7.1: p-bar = 0.2313, UCL = 0.4102, LCL = 0.0524
    (also NIST/SEMATECH e-Handbook 6.3.3.2: p-bar = .2313)."""
    limits = control_limits(ORANGE_JUICE, chart="p", sample_sizes=50)
    assert limits.chart == "p"
    assert limits.dispersion is None
    assert round(limits.center, 4) == 0.2313
    assert isinstance(limits.ucl, float)
    assert isinstance(limits.lcl, float)
    assert round(limits.ucl, 4) == 0.4102
    assert round(limits.lcl, 4) == 0.0524
    assert limits.center == 347 / 1500


def test_np_chart_is_the_p_chart_scaled_by_the_sample_size() -> None:
    p = control_limits(ORANGE_JUICE, chart="p", sample_sizes=50)
    np_limits = control_limits(ORANGE_JUICE, chart="np", sample_sizes=[50] * 30)
    assert np_limits.chart == "np"
    assert np_limits.center == pytest.approx(50 * p.center, rel=1e-15)
    assert np_limits.ucl == pytest.approx(50 * p.ucl, rel=1e-14)
    assert np_limits.lcl == pytest.approx(50 * p.lcl, rel=1e-14)
    assert isinstance(np_limits.ucl, float)


def test_montgomery_example_7_3_c_chart_matches_the_book() -> None:
    """Montgomery, ISQC 6th ed., Example 7.3: c-bar = 19.85, UCL = 33.22, LCL = 6.48."""
    limits = control_limits(CIRCUIT_BOARDS, chart="c")
    assert round(limits.center, 2) == 19.85
    # The book adds 3 sqrt(19.85) = 13.366 to the rounded 19.85: 33.216, printed 33.22. From
    # the unrounded c-bar = 516/26 = 19.8462 we get 33.2109 (33.21): within 0.01 of the book.
    assert round(19.85 + 3 * math.sqrt(19.85), 2) == 33.22
    assert limits.ucl == pytest.approx(33.22, abs=0.01)
    assert round(limits.lcl, 2) == 6.48  # type: ignore[arg-type]
    assert limits.sigma == pytest.approx(math.sqrt(516 / 26), rel=1e-15)


def test_montgomery_example_7_4_u_chart_matches_the_book() -> None:
    """Montgomery, ISQC 6th ed., Example 7.4: u-bar = 1.93, UCL = 3.79, LCL = 0.07."""
    limits = control_limits(COMPUTERS, chart="u", sample_sizes=5)
    assert limits.center == pytest.approx(1.93, rel=1e-15)
    assert round(limits.ucl, 2) == 3.79  # type: ignore[arg-type]
    assert round(limits.lcl, 2) == 0.07  # type: ignore[arg-type]


def test_dyed_cloth_u_chart_has_one_limit_per_sample() -> None:
    """Montgomery, ISQC 6th ed., sec. 7.3.1 (dyed cloth): u-bar = 153/107.5 = 1.42."""
    limits = control_limits(DYED_CLOTH, chart="u", sample_sizes=DYED_CLOTH_UNITS)
    assert round(limits.center, 2) == 1.42
    assert isinstance(limits.ucl, np.ndarray)
    assert isinstance(limits.lcl, np.ndarray)
    assert limits.ucl.shape == limits.lcl.shape == (10,)
    # larger inspection areas get tighter limits: 13 units (index 2) vs 8 units (index 1)
    assert limits.ucl[2] < limits.ucl[1]
    assert limits.lcl[2] > limits.lcl[1]
    expected = naive_charts.u_chart([float(c) for c in DYED_CLOTH], DYED_CLOTH_UNITS)
    np.testing.assert_allclose(limits.ucl, expected.ucl, rtol=1e-14)
    np.testing.assert_allclose(limits.lcl, expected.lcl, rtol=1e-14)
    np.testing.assert_allclose(limits.sigma, expected.sigma, rtol=1e-14)


def test_per_point_limits_are_read_only() -> None:
    limits = control_limits(DYED_CLOTH, chart="u", sample_sizes=DYED_CLOTH_UNITS)
    assert isinstance(limits.ucl, np.ndarray)
    with pytest.raises(ValueError, match="read-only"):
        limits.ucl[0] = 0.0


def test_per_point_sample_sizes_give_arrays_even_when_they_are_equal() -> None:
    limits = control_limits(ORANGE_JUICE, chart="p", sample_sizes=[50] * 30)
    scalar = control_limits(ORANGE_JUICE, chart="p", sample_sizes=50)
    assert isinstance(limits.ucl, np.ndarray)
    np.testing.assert_array_equal(limits.ucl, np.full(30, scalar.ucl))


@settings(max_examples=60, deadline=None, database=None)
@given(counts_and_sizes, st.sampled_from(["p", "u"]))
def test_p_and_u_limits_equal_the_naive_reference_on_random_data(
    data: tuple[list[int], list[float]], chart: str
) -> None:
    sizes, fractions = data
    counts = [float(round(f * n)) for f, n in zip(fractions, sizes, strict=True)]
    limits = control_limits(counts, chart=chart, sample_sizes=sizes)
    sizes_f = [float(n) for n in sizes]
    ref = (naive_charts.p_chart if chart == "p" else naive_charts.u_chart)(counts, sizes_f)
    assert limits.center == pytest.approx(ref.center, rel=1e-12, abs=1e-15)
    np.testing.assert_allclose(limits.ucl, ref.ucl, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(limits.lcl, ref.lcl, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(limits.sigma, ref.sigma, rtol=1e-12, atol=1e-15)


@settings(max_examples=40, deadline=None, database=None)
@given(st.lists(st.integers(0, 200), min_size=2, max_size=40), st.integers(200, 1000))
def test_c_and_np_limits_equal_the_naive_reference_on_random_data(
    counts: list[int], n: int
) -> None:
    values = [float(c) for c in counts]
    for limits, ref in (
        (control_limits(counts, chart="c"), naive_charts.c_chart(values)),
        (control_limits(counts, chart="np", sample_sizes=n), naive_charts.np_chart(values, n)),
    ):
        assert limits.center == pytest.approx(ref.center, rel=1e-12)
        assert limits.ucl == pytest.approx(ref.ucl[0], rel=1e-12)
        assert limits.lcl == pytest.approx(ref.lcl[0], rel=1e-12, abs=1e-12)
        assert limits.sigma == pytest.approx(ref.sigma[0], rel=1e-12)


# --- Laney p' and u' -----------------------------------------------------------------------


def test_laney_p_with_a_constant_sample_size_is_the_individuals_chart_of_the_proportions() -> None:
    """Laney 2002: with equal n, sigma_pi sigma_z = MR-bar(p)/d2, the XmR chart of p_i."""
    laney = control_limits(ORANGE_JUICE, chart="laney_p", sample_sizes=50)
    individuals = control_limits([c / 50 for c in ORANGE_JUICE], chart="imr")
    assert laney.chart == "laney_p"
    assert laney.center == pytest.approx(individuals.center, rel=1e-14)
    assert laney.sigma == pytest.approx(individuals.sigma, rel=1e-12)
    assert laney.ucl == pytest.approx(individuals.ucl, rel=1e-12)
    assert laney.lcl == max(0.0, individuals.lcl)
    assert isinstance(laney.ucl, float)


def test_laney_u_with_a_constant_sample_size_is_the_individuals_chart_of_the_rates() -> None:
    laney = control_limits(COMPUTERS, chart="laney_u", sample_sizes=5)
    individuals = control_limits([c / 5 for c in COMPUTERS], chart="imr")
    assert laney.sigma == pytest.approx(individuals.sigma, rel=1e-12)
    assert laney.ucl == pytest.approx(individuals.ucl, rel=1e-12)


def test_laney_charts_report_the_exact_d2_and_sigma_z() -> None:
    limits = control_limits(DYED_CLOTH, chart="laney_u", sample_sizes=DYED_CLOTH_UNITS)
    plain = control_limits(DYED_CLOTH, chart="u", sample_sizes=DYED_CLOTH_UNITS)
    assert set(limits.constants) == {"d2", "sigma_z"}
    assert limits.constants["d2"] == D2_N2
    np.testing.assert_allclose(limits.sigma, plain.sigma * limits.constants["sigma_z"])


def test_camera_sized_samples_flood_the_p_chart_but_not_laney_p() -> None:
    """Inspecting every part: ~200 000 parts a shift, the true rate varying from shift to
    shift around 1 % (sd 0.1 %) -- common-cause variation the binomial model leaves out."""
    rng = np.random.default_rng(20020401)
    sizes = rng.integers(180_000, 220_000, size=60)
    rates = 0.01 + 0.001 * rng.standard_normal(60)
    counts = rng.binomial(sizes, rates)
    plain = control_limits(counts, chart="p", sample_sizes=sizes)
    laney = control_limits(counts, chart="laney_p", sample_sizes=sizes)
    p = counts / sizes
    outside_plain = np.count_nonzero((p > plain.ucl) | (p < plain.lcl))
    outside_laney = np.count_nonzero((p > laney.ucl) | (p < laney.lcl))
    assert outside_plain > 20  # binomial limits about +/- 0.0007: most drifting points "signal"
    assert outside_laney == 0
    assert laney.constants["sigma_z"] > 2.0


def test_laney_sigma_z_is_close_to_one_for_purely_binomial_data() -> None:
    rng = np.random.default_rng(7)
    sizes = rng.integers(900, 1100, size=2000)
    counts = rng.binomial(sizes, 0.05)
    laney = control_limits(counts, chart="laney_p", sample_sizes=sizes)
    assert laney.constants["sigma_z"] == pytest.approx(1.0, abs=0.05)


@settings(max_examples=60, deadline=None, database=None)
@given(counts_and_sizes, st.booleans())
def test_laney_limits_equal_the_naive_reference_on_random_data(
    data: tuple[list[int], list[float]], binomial: bool
) -> None:
    sizes, fractions = data
    counts = [float(round(0.05 + 0.9 * f * n)) for f, n in zip(fractions, sizes, strict=True)]
    chart = "laney_p" if binomial else "laney_u"
    sizes_f = [float(n) for n in sizes]
    if sum(counts) == 0 or (binomial and sum(counts) == sum(sizes_f)):
        return  # no variation to scale: refused, see the test below
    limits = control_limits(counts, chart=chart, sample_sizes=sizes)
    ref, sigma_z = naive_charts.laney(counts, sizes_f, binomial)
    assert limits.constants["sigma_z"] == pytest.approx(sigma_z, rel=1e-9, abs=1e-12)
    np.testing.assert_allclose(limits.ucl, ref.ucl, rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(limits.lcl, ref.lcl, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("chart", ["laney_p", "laney_u"])
def test_laney_charts_refuse_data_without_any_nonconformity(chart: str) -> None:
    with pytest.raises(ValueError, match="centre line strictly inside"):
        control_limits([0, 0, 0], chart=chart, sample_sizes=100)


# --- attribute input checks ----------------------------------------------------------------


@pytest.mark.parametrize("chart", ["p", "np", "u", "laney_p", "laney_u"])
def test_attribute_charts_other_than_c_need_sample_sizes(chart: str) -> None:
    with pytest.raises(ValueError, match="needs sample_sizes"):
        control_limits(ORANGE_JUICE, chart=chart)


def test_c_chart_refuses_sample_sizes_and_points_to_the_u_chart() -> None:
    with pytest.raises(ValueError, match="use 'u'"):
        control_limits(CIRCUIT_BOARDS, chart="c", sample_sizes=100)


def test_np_chart_refuses_varying_sample_sizes() -> None:
    with pytest.raises(ValueError, match="constant sample size; use 'p'"):
        control_limits([1, 2, 3], chart="np", sample_sizes=[50, 60, 50])


def test_sample_sizes_of_the_wrong_length_are_refused() -> None:
    with pytest.raises(ValueError, match=r"shape \(2,\) but data has 3 points"):
        control_limits([1, 2, 3], chart="u", sample_sizes=[5, 5])


@pytest.mark.parametrize("sizes", [0, -5, math.inf, math.nan])
def test_non_positive_or_non_finite_sample_sizes_are_refused(sizes: float) -> None:
    with pytest.raises(ValueError, match="finite and positive"):
        control_limits([1, 2, 3], chart="p", sample_sizes=sizes)


def test_more_nonconforming_units_than_inspected_are_refused_with_the_point() -> None:
    with pytest.raises(ValueError, match="point 1: more nonconforming units"):
        control_limits([1, 60, 3], chart="p", sample_sizes=50)


def test_negative_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        control_limits([1, -1, 3], chart="c")


def test_a_single_attribute_point_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2 points"):
        control_limits([4], chart="c")


def test_sample_sizes_on_a_variables_chart_are_refused() -> None:
    with pytest.raises(ValueError, match="attribute charts only"):
        control_limits(PISTON_RINGS, chart="xbar_r", sample_sizes=5)


def test_subgroup_size_on_an_attribute_chart_is_refused() -> None:
    with pytest.raises(ValueError, match="takes sample_sizes"):
        control_limits(ORANGE_JUICE, chart="p", subgroup_size=5, sample_sizes=50)


def test_subgroup_size_on_the_individuals_chart_is_refused() -> None:
    with pytest.raises(ValueError, match="no subgroup_size"):
        control_limits(MORTGAGE_COSTS, chart="imr", subgroup_size=2)
