"""Capability and performance indices (``spc.capability``)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from spc import capability, expected_ppm
from spc.capability import _cp_interval, _cpk_interval
from tests.spc import naive

D2 = 2.0 / math.sqrt(math.pi)

# 1, 3, 1, 3, ... (n = 10): mean 2; every moving range is 2, so MR-bar = 2 and
# sigma_within = 2 / d2 = sqrt(pi); deviations from the mean are all +/-1, so the
# overall variance is 10 / 9 and sigma_overall = sqrt(10/9).
ALTERNATING = [1.0, 3.0] * 5
SIGMA_WITHIN = math.sqrt(math.pi)
SIGMA_OVERALL = math.sqrt(10.0 / 9.0)


def test_alternating_data_give_the_hand_worked_sigmas() -> None:
    result = capability(ALTERNATING, lsl=-4.0, usl=8.0)
    assert result.n == 10
    assert result.mean == 2.0
    assert result.sigma_within == pytest.approx(SIGMA_WITHIN, rel=1e-15)
    assert result.sigma_overall == pytest.approx(SIGMA_OVERALL, rel=1e-15)


def test_centred_alternating_data_have_cp_equal_to_d2() -> None:
    result = capability(ALTERNATING, lsl=-4.0, usl=8.0)
    # Cp = (8 - (-4)) / (6 * 2/d2) = 12 d2 / 12 = d2; the mean 2 sits mid-way, so
    # Cpu = (8 - 2) / (3 * 2/d2) = d2 = Cpl and Cpk = d2 too.
    assert result.cp == pytest.approx(D2, rel=1e-15)
    assert result.cpu == pytest.approx(D2, rel=1e-15)
    assert result.cpl == pytest.approx(D2, rel=1e-15)
    assert result.cpk == pytest.approx(D2, rel=1e-15)
    # Pp = 12 / (6 sqrt(10/9)) = 2 * 3 / sqrt(10) = 6 / sqrt(10), and Ppk = Pp (centred).
    assert result.pp == pytest.approx(6.0 / math.sqrt(10.0), rel=1e-15)
    assert result.ppk == pytest.approx(6.0 / math.sqrt(10.0), rel=1e-15)
    assert result.method == "normal"
    assert result.normality_p is None


def test_off_centre_alternating_data_take_cpk_from_the_nearer_limit() -> None:
    result = capability(ALTERNATING, lsl=-1.0, usl=11.0)
    # Cp = 12 / (6 sqrt(pi)) = d2 still; Cpu = (11 - 2) / (3 sqrt(pi)) = 3/sqrt(pi) = 1.5 d2;
    # Cpl = (2 - (-1)) / (3 sqrt(pi)) = 1/sqrt(pi) = d2 / 2, so Cpk = d2 / 2.
    assert result.cp == pytest.approx(D2, rel=1e-15)
    assert result.cpu == pytest.approx(1.5 * D2, rel=1e-15)
    assert result.cpl == pytest.approx(0.5 * D2, rel=1e-15)
    assert result.cpk == pytest.approx(0.5 * D2, rel=1e-15)
    # Ppl = 3 / (3 sqrt(10/9)) = 3 / sqrt(10); Ppu = 9 / (3 sqrt(10/9)) = 9 / sqrt(10).
    assert result.ppl == pytest.approx(3.0 / math.sqrt(10.0), rel=1e-15)
    assert result.ppu == pytest.approx(9.0 / math.sqrt(10.0), rel=1e-15)
    assert result.ppk == pytest.approx(3.0 / math.sqrt(10.0), rel=1e-15)


def test_upper_limit_only_leaves_cp_undefined_and_cpk_equal_to_cpu() -> None:
    result = capability(ALTERNATING, usl=8.0)
    # Cpu = (8 - 2) / (3 sqrt(pi)) = d2; Ppu = 6 / (3 sqrt(10/9)) = 6 / sqrt(10)
    assert result.cp is None
    assert result.pp is None
    assert result.cpl is None
    assert result.ppl is None
    assert result.cpm is None
    assert result.cp_ci is None
    assert result.cpu == pytest.approx(D2, rel=1e-15)
    assert result.cpk == result.cpu
    assert result.ppk == result.ppu
    assert result.ppu == pytest.approx(6.0 / math.sqrt(10.0), rel=1e-15)
    assert result.cpk is not None
    assert result.cpk_ci == _cpk_interval(result.cpk, 10)


def test_lower_limit_only_leaves_cp_undefined_and_cpk_equal_to_cpl() -> None:
    result = capability(ALTERNATING, lsl=-1.0)
    # Cpl = (2 - (-1)) / (3 sqrt(pi)) = d2 / 2
    assert result.cp is None
    assert result.cpu is None
    assert result.ppu is None
    assert result.cpl == pytest.approx(0.5 * D2, rel=1e-15)
    assert result.cpk == result.cpl
    assert result.ppk == result.ppl


def test_cpm_uses_the_distance_of_the_mean_from_target() -> None:
    on_target = capability(ALTERNATING, lsl=-4.0, usl=8.0, target=2.0)
    off_target = capability(ALTERNATING, lsl=-4.0, usl=8.0, target=3.0)
    # on target: 12 / (6 sqrt(10/9 + 0)) = Pp = 6 / sqrt(10)
    assert on_target.cpm == pytest.approx(6.0 / math.sqrt(10.0), rel=1e-15)
    # target 3: 12 / (6 sqrt(10/9 + 1)) = 2 / sqrt(19/9) = 6 / sqrt(19)
    assert off_target.cpm == pytest.approx(6.0 / math.sqrt(19.0), rel=1e-15)


def test_cpm_needs_both_limits() -> None:
    assert capability(ALTERNATING, usl=8.0, target=2.0).cpm is None


def test_bissell_interval_matches_montgomery_example() -> None:
    """Montgomery, ISQC 6th ed., sec. 8.3.5, eq. 8.21: n = 20, Cpk-hat = 1.33 -> 0.88 to 1.78."""
    lower, upper = _cpk_interval(1.33, 20)
    # 1.33 +/- 1.96 sqrt(1/180 + 1.33^2/38) = 1.33 +/- 1.96 * 0.2283 = 0.8826 .. 1.7774
    assert lower == pytest.approx(0.88, abs=0.005)
    assert upper == pytest.approx(1.78, abs=0.005)


def test_chi_square_cp_interval_matches_montgomery_example() -> None:
    """Montgomery, ISQC 6th ed., sec. 8.3.5, eq. 8.19: USL 62, LSL 38, n = 20, s = 1.75.

    Cp-hat = 24 / 10.5 = 2.29 (the book rounds it before use); 95 % interval 1.57 to 3.01.
    """
    lower, upper = _cp_interval(2.29, 20)
    # 2.29 sqrt(8.907 / 19) = 1.568 and 2.29 sqrt(32.852 / 19) = 3.011
    assert lower == pytest.approx(1.57, abs=0.005)
    assert upper == pytest.approx(3.01, abs=0.005)


def test_cp_interval_uses_chi_square_quantiles_with_n_minus_1_degrees_of_freedom() -> None:
    data = np.random.default_rng(7).normal(50.0, 2.0, size=30)
    result = capability(data, lsl=40.0, usl=60.0)
    assert result.cp is not None
    assert result.cp_ci is not None
    dof = 29
    expected = (
        result.cp * math.sqrt(stats.chi2.ppf(0.025, dof) / dof),
        result.cp * math.sqrt(stats.chi2.ppf(0.975, dof) / dof),
    )
    assert result.cp_ci == pytest.approx(expected, rel=1e-12)


def test_cpk_interval_is_bissell_with_z_0_975() -> None:
    data = np.random.default_rng(8).normal(50.0, 2.0, size=30)
    result = capability(data, lsl=40.0, usl=60.0)
    assert result.cpk is not None
    assert result.cpk_ci is not None
    n, z = 30, stats.norm.ppf(0.975)
    half = z * math.sqrt(1.0 / (9 * n) + result.cpk**2 / (2 * (n - 1)))
    assert result.cpk_ci == pytest.approx((result.cpk - half, result.cpk + half), rel=1e-12)


def test_centred_process_with_cp_1_has_2700_ppm_outside() -> None:
    # both limits at 3 sigma: 2 * Phi(-3) * 1e6 = 2699.8 ppm
    assert expected_ppm(0.0, 1.0, -3.0, 3.0) == pytest.approx(2699.8, abs=0.05)
    assert expected_ppm(0.0, 1.0, -3.0, 3.0) == pytest.approx(2e6 * stats.norm.cdf(-3.0), rel=1e-12)


def test_capability_reports_ppm_with_the_within_sigma() -> None:
    # limits at mean +/- 3 sigma_within of the alternating data, so Cp = 1 exactly
    lsl, usl = 2.0 - 3.0 * SIGMA_WITHIN, 2.0 + 3.0 * SIGMA_WITHIN
    result = capability(ALTERNATING, lsl=lsl, usl=usl)
    assert result.cp == pytest.approx(1.0, rel=1e-15)
    assert result.ppm_expected == pytest.approx(2699.8, abs=0.05)


def test_one_sided_ppm_counts_one_tail() -> None:
    # Phi(-3) * 1e6 = 1349.9 ppm
    assert expected_ppm(0.0, 1.0, None, 3.0) == pytest.approx(1349.9, abs=0.05)
    assert expected_ppm(0.0, 1.0, -3.0, None) == pytest.approx(1349.9, abs=0.05)


def test_capability_is_frozen() -> None:
    result = capability(ALTERNATING, usl=8.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.cpk = 2.0  # type: ignore[misc]


limits = st.one_of(
    st.tuples(st.none(), st.floats(-50, 50)),
    st.tuples(st.floats(-50, 50), st.none()),
    st.tuples(st.floats(-50, 0), st.floats(0.001, 50)),
)


@settings(max_examples=60, deadline=None, database=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 80),
    loc=st.sampled_from([0.0, 74.001, -3.5, 1e4]),
    scale=st.sampled_from([0.01, 1.0, 7.0]),
    spec=limits,
)
def test_capability_equals_the_naive_reference(
    seed: int, n: int, loc: float, scale: float, spec: tuple[float | None, float | None]
) -> None:
    values = list(np.random.default_rng(seed).normal(loc, scale, size=n))
    lsl, usl = (None if v is None else loc + v * scale for v in spec)
    result = capability(values, lsl=lsl, usl=usl)
    expected = naive.capability(values, lsl, usl)
    assert result.n == expected.n
    assert result.mean == pytest.approx(expected.mean, rel=1e-12)
    for name in ("sigma_within", "sigma_overall", "cp", "cpk", "cpu", "cpl", "pp", "ppk"):
        got, want = getattr(result, name), getattr(expected, name)
        if want is None:
            assert got is None, name
        else:
            # indices near 0 (mean on a limit) are compared on the scale of their parts
            assert got == pytest.approx(want, rel=1e-9, abs=1e-9), name


def test_no_specification_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one specification limit"):
        capability(ALTERNATING)


@pytest.mark.parametrize(("lsl", "usl"), [(5.0, 5.0), (8.0, -4.0)], ids=["equal", "reversed"])
def test_lsl_not_below_usl_is_refused(lsl: float, usl: float) -> None:
    with pytest.raises(ValueError, match=r"lsl \(.*\) must be below usl"):
        capability(ALTERNATING, lsl=lsl, usl=usl)


def test_constant_data_are_refused_as_having_no_variation() -> None:
    with pytest.raises(ValueError, match="no variation"):
        capability([5.0] * 10, lsl=0.0, usl=10.0)


@pytest.mark.parametrize("data", [[1.0], [[1.0, 2.0], [3.0, 4.0]]], ids=["one-value", "2-d"])
def test_fewer_than_two_values_or_2d_data_are_refused(data: object) -> None:
    with pytest.raises(ValueError, match="1-D sample of at least 2 values"):
        capability(data, lsl=0.0, usl=10.0)  # type: ignore[arg-type]


def test_nan_values_are_refused_with_a_hint_to_drop_them() -> None:
    with pytest.raises(ValueError, match=r"NaN or infinite.*drop them"):
        capability([1.0, math.nan, 3.0], lsl=0.0, usl=10.0)


@pytest.mark.parametrize(
    ("subgroup_size", "sigma_within"), [(5, "mr"), (1, "pooled")], ids=["subgroups", "pooled"]
)
def test_unsupported_sigma_methods_are_refused(subgroup_size: int, sigma_within: str) -> None:
    with pytest.raises(ValueError, match=r"only individuals.*supported"):
        capability(ALTERNATING, usl=8.0, subgroup_size=subgroup_size, sigma_within=sigma_within)
