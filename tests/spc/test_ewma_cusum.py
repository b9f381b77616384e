"""EWMA and tabular CUSUM charts (``spc.ewma_cusum``)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spc.ewma_cusum import CusumResult, EwmaResult, cusum, ewma

# Montgomery, ISQC, table 9.1: 20 points from N(10, 1), then 10 after the mean moved to 11
MONTGOMERY = [
    *(9.45, 7.99, 9.29, 11.66, 12.16, 10.18, 8.04, 11.46, 9.20, 10.34),
    *(9.03, 11.47, 10.51, 9.40, 10.08, 9.37, 10.62, 10.31, 8.52, 10.84),
    *(10.90, 9.33, 12.29, 11.50, 10.60, 11.08, 10.38, 11.62, 11.31, 10.52),
]
# Montgomery, table 9.2: C+ for periods 1..29 (k = 0.5, h = 5, mu0 = 10, sigma = 1)
MONTGOMERY_UPPER = [
    *(0.0, 0.0, 0.0, 1.16, 2.82, 2.50, 0.04, 1.00, 0.0, 0.0, 0.0, 0.97, 0.98, 0.0, 0.0),
    *(0.0, 0.12, 0.0, 0.0, 0.34, 0.74, 0.0, 1.79, 2.79, 2.89, 3.47, 3.35, 4.47, 5.28),
]

# NIST/SEMATECH e-Handbook 6.3.2.4: 20 points, EWMA0 = 50, s = 2.0539, lambda = 0.3, k = 3
NIST = [
    *(52.0, 47.0, 53.0, 49.3, 50.1, 47.0, 51.0, 50.1, 51.2, 50.5),
    *(49.6, 47.6, 49.9, 51.3, 47.8, 51.2, 52.6, 52.4, 53.6, 52.1),
]
NIST_EWMA = [
    *(50.60, 49.52, 50.56, 50.18, 50.16, 49.21, 49.75, 49.85, 50.26, 50.33),
    *(50.11, 49.36, 49.52, 50.05, 49.38, 49.92, 50.73, 51.23, 51.94, 51.99),
]


# ---------------------------------------------------------------- slow references


def naive_ewma(
    values: list[float], lam: float, L: float, target: float, sigma: float
) -> tuple[list[float], list[float], list[float], list[int]]:
    z, stats, ucl, lcl, signals = target, [], [], [], []
    for i, x in enumerate(values, start=1):
        z = lam * x + (1.0 - lam) * z
        half = L * sigma * math.sqrt(lam / (2.0 - lam) * (1.0 - (1.0 - lam) ** (2 * i)))
        stats.append(z)
        ucl.append(target + half)
        lcl.append(target - half)
        if z > target + half or z < target - half:
            signals.append(i - 1)
    return stats, ucl, lcl, signals


def naive_cusum(
    values: list[float], k: float, h: float, target: float, sigma: float
) -> tuple[list[float], list[float], list[int]]:
    c_hi = c_lo = 0.0
    upper, lower, signals = [], [], []
    for i, x in enumerate(values):
        c_hi = max(0.0, x - (target + k * sigma) + c_hi)
        c_lo = max(0.0, (target - k * sigma) - x + c_lo)
        upper.append(c_hi)
        lower.append(c_lo)
        if c_hi > h * sigma or c_lo > h * sigma:
            signals.append(i)
    return upper, lower, signals


# ---------------------------------------------------------------- published examples


def test_nist_ewma_example_statistic_limits_and_no_signal() -> None:
    result = ewma(NIST, 0.3, 3.0, 50.0, 2.0539)
    assert np.round(result.statistic, 2).tolist() == NIST_EWMA
    # NIST prints the asymptotic limits 50 +/- 3 (0.4201)(2.0539) = 52.5884 / 47.4115;
    # by point 20 the exact limits are within (0.7)^40 ~ 6e-7 of them
    assert result.ucl[-1] == pytest.approx(52.5884, abs=1e-4)
    assert result.lcl[-1] == pytest.approx(47.4115, abs=1e-4)
    assert result.signals.tolist() == []  # in control, though drifting up at the end


def test_montgomery_cusum_example_upper_sum_and_first_signal_at_29() -> None:
    result = cusum(MONTGOMERY, 0.5, 5.0, 10.0, 1.0)
    assert np.round(result.upper[:29], 2).tolist() == MONTGOMERY_UPPER
    assert result.upper[28] == pytest.approx(5.28, abs=1e-9)  # 4.47 + 11.31 - 10.5
    assert result.upper[29] == pytest.approx(5.30, abs=1e-9)  # no reset after the signal
    assert result.signals.tolist() == [28, 29]  # periods 29 and 30


def test_montgomery_cusum_example_lower_sum_never_signals() -> None:
    result = cusum(MONTGOMERY, 0.5, 5.0, 10.0, 1.0)
    # C-_1 = 9.5 - 9.45 = 0.05, C-_2 = 0.05 + 9.5 - 7.99 = 1.56, C-_3 = 1.56 + 0.21 = 1.77
    assert result.lower[:3] == pytest.approx([0.05, 1.56, 1.77], abs=1e-9)
    assert result.lower.max() < 5.0


def test_montgomery_data_on_an_ewma_with_lambda_0_1_and_l_2_7() -> None:
    """Montgomery sec. 9.2 charts the same data with lambda = 0.1, L = 2.7 (values here
    worked from the formulas): z_1 = 0.1(9.45) + 0.9(10) = 9.945; limits 10 +/- 0.27 at
    i = 1, 10 +/- 0.3632 at i = 2, approaching 10 +/- 2.7 sqrt(0.1/1.9) = 10 +/- 0.6194."""
    result = ewma(MONTGOMERY, 0.1, 2.7, 10.0, 1.0)
    assert result.statistic[0] == pytest.approx(9.945, abs=1e-12)
    assert (result.lcl[0], result.ucl[0]) == pytest.approx((9.73, 10.27), abs=1e-12)
    assert result.ucl[1] == pytest.approx(10.3632, abs=5e-5)
    assert result.ucl[-1] == pytest.approx(10.6189, abs=5e-5)  # 1 - 0.9^60 = 0.9982
    asymptote = 10.0 + 2.7 * math.sqrt(0.1 / 1.9)
    assert asymptote == pytest.approx(10.6194, abs=5e-5)
    assert result.ucl[-1] < asymptote
    assert result.statistic[28] == pytest.approx(10.6468, abs=5e-5)
    assert result.signals.tolist() == [28, 29]  # first beyond the UCL at period 29


# ---------------------------------------------------------------- conventions


def test_first_ewma_limit_is_l_sigma_lambda_and_limits_widen_to_the_asymptote() -> None:
    result = ewma(np.zeros(200), 0.2, 3.0, 5.0, 2.0)
    # sqrt(lam/(2-lam) (1 - (1-lam)^2)) = sqrt(lam/(2-lam) lam (2-lam)) = lam
    assert result.ucl[0] == pytest.approx(5.0 + 3.0 * 2.0 * 0.2, rel=1e-15)
    assert np.all(np.diff(result.ucl) >= 0.0)
    assert result.ucl[-1] == pytest.approx(5.0 + 6.0 * math.sqrt(0.2 / 1.8), rel=1e-12)
    assert result.lcl == pytest.approx(10.0 - result.ucl, rel=1e-15)


def test_lambda_one_is_a_shewhart_chart_and_a_point_on_the_limit_is_in_control() -> None:
    on_limit = 3.0 + 3.0 * 0.5
    above = np.nextafter(on_limit, math.inf)
    result = ewma([on_limit, above, 3.0, 3.0 - 1.5], 1.0, 3.0, 3.0, 0.5)
    assert result.statistic.tolist() == [on_limit, above, 3.0, 1.5]
    assert result.ucl.tolist() == [on_limit] * 4
    assert result.signals.tolist() == [1]


def test_cusum_equal_to_h_is_in_control_and_just_above_signals() -> None:
    assert cusum([5.0], 0.0, 5.0, 0.0, 1.0).signals.tolist() == []
    assert cusum([5.0, 1e-9], 0.0, 5.0, 0.0, 1.0).signals.tolist() == [1]


def test_cusum_keeps_signalling_through_a_sustained_shift_and_catches_a_fall() -> None:
    up = cusum([10.0, 13.0, 13.0, 13.0, 13.0], 0.5, 4.0, 10.0, 1.0)
    assert up.upper.tolist() == [0.0, 2.5, 5.0, 7.5, 10.0]
    assert up.signals.tolist() == [2, 3, 4]
    down = cusum([10.0, 7.0, 7.0, 7.0], 0.5, 4.0, 10.0, 1.0)
    assert down.lower.tolist() == [0.0, 2.5, 5.0, 7.5]
    assert down.upper.tolist() == [0.0, 0.0, 0.0, 0.0]
    assert down.signals.tolist() == [2, 3]


def test_k_and_h_are_in_sigma_units() -> None:
    # the same data in units 10 x larger, sigma 10 x larger: the same signals, sums x 10
    base = cusum(MONTGOMERY, 0.5, 5.0, 10.0, 1.0)
    scaled = cusum([10.0 * x for x in MONTGOMERY], 0.5, 5.0, 100.0, 10.0)
    assert scaled.upper == pytest.approx(10.0 * base.upper, rel=1e-12, abs=1e-9)
    assert scaled.signals.tolist() == base.signals.tolist()


def test_empty_input_gives_empty_results() -> None:
    e = ewma([], 0.2, 3.0, 0.0, 1.0)
    c = cusum([], 0.5, 5.0, 0.0, 1.0)
    assert e.statistic.size == e.ucl.size == e.lcl.size == e.signals.size == 0
    assert c.upper.size == c.lower.size == c.signals.size == 0


def test_results_are_frozen_and_their_arrays_read_only() -> None:
    e = ewma(NIST, 0.3, 3.0, 50.0, 2.0539)
    c = cusum(MONTGOMERY, 0.5, 5.0, 10.0, 1.0)
    assert isinstance(e, EwmaResult)
    assert isinstance(c, CusumResult)
    with pytest.raises(dataclasses.FrozenInstanceError):
        e.signals = np.array([0])  # type: ignore[misc]
    for array in (e.statistic, e.ucl, e.lcl, e.signals, c.upper, c.lower, c.signals):
        with pytest.raises(ValueError, match="read-only"):
            array[...] = 0
    assert e.signals.dtype == c.signals.dtype == np.int64


# ---------------------------------------------------------------- argument checks


@pytest.mark.parametrize(
    ("lam", "L", "target", "sigma", "message"),
    [
        (0.0, 3.0, 0.0, 1.0, r"lam must satisfy 0 < lam <= 1"),
        (1.5, 3.0, 0.0, 1.0, r"lam must satisfy 0 < lam <= 1"),
        (math.nan, 3.0, 0.0, 1.0, r"lam must satisfy"),
        (0.2, 0.0, 0.0, 1.0, r"L must be a positive finite"),
        (0.2, math.inf, 0.0, 1.0, r"L must be a positive finite"),
        (0.2, 3.0, math.nan, 1.0, r"target must be a finite number"),
        (0.2, 3.0, 0.0, 0.0, r"sigma must be a positive finite"),
        (0.2, 3.0, 0.0, -1.0, r"sigma must be a positive finite"),
        (0.2, 3.0, 0.0, math.inf, r"sigma must be a positive finite"),
    ],
)
def test_bad_ewma_parameters_are_refused(
    lam: float, L: float, target: float, sigma: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        ewma([1.0, 2.0], lam, L, target, sigma)


@pytest.mark.parametrize(
    ("k", "h", "sigma", "message"),
    [
        (-0.1, 5.0, 1.0, r"k must be a finite number of sigmas >= 0"),
        (math.inf, 5.0, 1.0, r"k must be a finite number"),
        (0.5, 0.0, 1.0, r"h must be a positive finite"),
        (0.5, math.inf, 1.0, r"h must be a positive finite"),
        (0.5, 5.0, 0.0, r"sigma must be a positive finite"),
    ],
)
def test_bad_cusum_parameters_are_refused(k: float, h: float, sigma: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cusum([1.0, 2.0], k, h, 0.0, sigma)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([1.0, math.nan], r"NaN or infinite.*drop them"),
        ([1.0, math.inf], r"NaN or infinite"),
        ([[1.0, 2.0], [3.0, 4.0]], r"values must be 1-D"),
        (["a", "b"], r"values must be a 1-D sequence of numbers"),
    ],
    ids=["nan", "inf", "2-d", "text"],
)
def test_bad_values_are_refused_by_both_charts(values: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ewma(values, 0.2, 3.0, 0.0, 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=message):
        cusum(values, 0.5, 5.0, 0.0, 1.0)  # type: ignore[arg-type]


# ---------------------------------------------------------------- against the loops

series = st.lists(
    st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False), min_size=0, max_size=120
)


@settings(max_examples=200, deadline=None, database=None)
@given(
    values=series,
    lam=st.floats(0.01, 1.0),
    L=st.floats(0.5, 4.0),
    target=st.floats(-100.0, 100.0),
    sigma=st.floats(0.01, 100.0),
)
def test_ewma_equals_the_loop_exactly(
    values: list[float], lam: float, L: float, target: float, sigma: float
) -> None:
    result = ewma(values, lam, L, target, sigma)
    stats, ucl, lcl, signals = naive_ewma(values, lam, L, target, sigma)
    assert result.statistic.tolist() == stats
    assert result.ucl.tolist() == ucl
    assert result.lcl.tolist() == lcl
    assert result.signals.tolist() == signals


@settings(max_examples=200, deadline=None, database=None)
@given(
    values=series,
    k=st.floats(0.0, 2.0),
    h=st.floats(0.1, 8.0),
    target=st.floats(-100.0, 100.0),
    sigma=st.floats(0.01, 100.0),
)
def test_cusum_equals_the_loop_exactly(
    values: list[float], k: float, h: float, target: float, sigma: float
) -> None:
    result = cusum(values, k, h, target, sigma)
    upper, lower, signals = naive_cusum(values, k, h, target, sigma)
    assert result.upper.tolist() == upper
    assert result.lower.tolist() == lower
    assert result.signals.tolist() == signals


@settings(max_examples=100, deadline=None, database=None)
@given(seed=st.integers(0, 2**32 - 1), shift=st.floats(-3.0, 3.0), n=st.integers(1, 300))
def test_charts_equal_the_loops_on_shifted_normal_series(seed: int, shift: float, n: int) -> None:
    x = np.random.default_rng(seed).normal(50.0, 2.0, n)
    x[n // 2 :] += shift * 2.0
    e, c = ewma(x, 0.2, 3.0, 50.0, 2.0), cusum(x, 0.5, 4.0, 50.0, 2.0)
    assert e.signals.tolist() == naive_ewma(x.tolist(), 0.2, 3.0, 50.0, 2.0)[3]
    assert c.signals.tolist() == naive_cusum(x.tolist(), 0.5, 4.0, 50.0, 2.0)[2]
