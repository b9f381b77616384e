"""Sigma level and DPMO with the 1.5-sigma shift (``spc.sigma_level``)."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spc.sigma_level import dpmo, sigma_level, sigma_level_from_cpk

# The conventional long-term table (docs/quality-grades.md): level -> DPMO
CONVENTIONAL = [(6.0, 3.4, 1), (5.0, 233.0, 0), (4.0, 6210.0, 0), (3.0, 66807.0, 0)]


def _naive_sigma_level(rate: float) -> float:
    """The definition with the standard library's normal; Phi^-1(1 - p) is written
    -Phi^-1(p) because 1 - p loses the digits of a tiny p."""
    return -NormalDist().inv_cdf(rate / 1e6) + 1.5


@pytest.mark.parametrize(("level", "table", "decimals"), CONVENTIONAL)
def test_dpmo_of_whole_sigma_levels_is_the_conventional_table(
    level: float, table: float, decimals: int
) -> None:
    assert round(dpmo(level), decimals) == table


@pytest.mark.parametrize(("level", "table", "decimals"), CONVENTIONAL)
def test_sigma_level_of_the_conventional_table_is_the_whole_level(
    level: float, table: float, decimals: int
) -> None:
    # the table's DPMO are rounded, so the level comes back to about 1e-3
    assert sigma_level(table) == pytest.approx(level, abs=1e-3)


@pytest.mark.parametrize(
    ("rate", "level"), [(3.4, 6.0), (230.0, 5.0), (6200.0, 4.0), (66800.0, 3.0)]
)
def test_the_grading_documents_rounded_rates_give_its_levels(rate: float, level: float) -> None:
    # quality-grades.md quotes 6 sigma = 3.4, 5 sigma = 230, 4 sigma = 6,200, 3 sigma = 66,800
    assert round(sigma_level(rate), 2) == level


def test_exact_rates_just_miss_the_whole_level() -> None:
    # 233 DPMO is 4.9996 sigma: a grader comparing levels with >= must allow for rounding
    assert sigma_level(dpmo(5.0)) == pytest.approx(5.0, abs=1e-12)
    assert sigma_level(233.0) < 5.0


def test_zero_defects_are_infinitely_many_sigmas_and_all_defects_minus_infinity() -> None:
    assert sigma_level(0.0) == math.inf
    assert sigma_level(1e6) == -math.inf
    assert dpmo(math.inf) == 0.0
    assert dpmo(-math.inf) == 1e6


def test_scalars_give_floats_and_arrays_give_arrays_of_the_same_shape() -> None:
    assert isinstance(sigma_level(233.0), float)
    assert isinstance(dpmo(4.0), float)
    rates = np.array([[3.4, 233.0], [6210.0, 66807.0]])
    levels = sigma_level(rates)
    assert isinstance(levels, np.ndarray)
    assert levels.shape == (2, 2)
    assert levels == pytest.approx(np.array([[6.0, 5.0], [4.0, 3.0]]), abs=1e-3)
    back = dpmo(levels)
    assert back.shape == (2, 2)
    assert back == pytest.approx(rates, rel=1e-9)
    assert sigma_level([3.4, 233.0]).tolist() == [sigma_level(3.4), sigma_level(233.0)]


@pytest.mark.parametrize("bad", [-1.0, 1e6 + 1.0, math.nan, math.inf, -math.inf])
def test_rates_outside_a_million_are_refused(bad: float) -> None:
    with pytest.raises(ValueError, match=r"dpmo must lie in \[0, 1e6\]"):
        sigma_level(bad)


def test_one_bad_rate_in_an_array_refuses_the_whole_array_and_names_it() -> None:
    with pytest.raises(ValueError, match="got -5"):
        sigma_level(np.array([3.4, -5.0, 233.0]))


def test_a_nan_level_is_refused() -> None:
    with pytest.raises(ValueError, match="NaN"):
        dpmo(np.array([6.0, math.nan]))


@settings(max_examples=200, deadline=None, database=None)
@given(rate=st.floats(1e-6, 999_999.0))
def test_sigma_level_equals_the_naive_definition(rate: float) -> None:
    assert sigma_level(rate) == pytest.approx(_naive_sigma_level(rate), rel=1e-9, abs=1e-9)


@settings(max_examples=200, deadline=None, database=None)
@given(level=st.floats(0.0, 9.0))
def test_dpmo_and_sigma_level_invert_each_other(level: float) -> None:
    assert sigma_level(dpmo(level)) == pytest.approx(level, abs=1e-7)


@settings(max_examples=200, deadline=None, database=None)
@given(a=st.floats(-2.0, 10.0), b=st.floats(-2.0, 10.0))
def test_more_sigmas_never_mean_more_defects(a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert dpmo(high) <= dpmo(low)


@pytest.mark.parametrize(("cpk", "level"), [(1.0, 3.0), (4 / 3, 4.0), (5 / 3, 5.0), (2.0, 6.0)])
def test_capability_implies_three_times_cpk_on_the_grade_tables_steps(
    cpk: float, level: float
) -> None:
    assert sigma_level_from_cpk(cpk) == pytest.approx(level)
