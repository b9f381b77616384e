"""Capability and performance indices (``spc.capability``)."""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from spc import capability, expected_ppm
from spc.capability import cp_interval, cpk_interval
from spc.constants import c4, chart_constants
from spc.normality import _ad_p_value, anderson_darling_normal, percentile_capability
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
    assert result.sigma_within_method == "mr"
    assert result.subgroup_size == 1


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
    assert result.cpk_ci == cpk_interval(result.cpk, 10)


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
    lower, upper = cpk_interval(1.33, 20)
    # 1.33 +/- 1.96 sqrt(1/180 + 1.33^2/38) = 1.33 +/- 1.96 * 0.2283 = 0.8826 .. 1.7774
    assert lower == pytest.approx(0.88, abs=0.005)
    assert upper == pytest.approx(1.78, abs=0.005)


def test_chi_square_cp_interval_matches_montgomery_example() -> None:
    """Montgomery, ISQC 6th ed., sec. 8.3.5, eq. 8.19: USL 62, LSL 38, n = 20, s = 1.75.

    Cp-hat = 24 / 10.5 = 2.29 (the book rounds it before use); 95 % interval 1.57 to 3.01.
    """
    lower, upper = cp_interval(2.29, 20)
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


def test_fewer_than_two_values_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 2 values"):
        capability([1.0], lsl=0.0, usl=10.0)


def test_nan_values_are_refused_with_a_hint_to_drop_them() -> None:
    with pytest.raises(ValueError, match=r"NaN or infinite.*drop them"):
        capability([1.0, math.nan, 3.0], lsl=0.0, usl=10.0)


# ---------------------------------------------------------------- published examples


def test_nist_example_off_centre_process_has_cp_1_and_cpk_two_thirds() -> None:
    """NIST/SEMATECH e-Handbook 6.1.6: USL 20, LSL 8, mean 16, sigma 2 -> Cp 1, Cpk 0.6667.

    Alternating 16 -/+ d2 have mean 16 and every moving range 2 d2, so MR-bar / d2 = 2.
    """
    result = capability([16.0 - D2, 16.0 + D2] * 25, lsl=8.0, usl=20.0)
    assert result.mean == pytest.approx(16.0, rel=1e-15)
    assert result.sigma_within == pytest.approx(2.0, rel=1e-15)
    assert result.cp == pytest.approx(1.0, rel=1e-14)
    assert result.cpk == pytest.approx(0.6667, abs=5e-5)
    assert result.cpu == pytest.approx(4.0 / 6.0, rel=1e-14)
    assert result.cpl == pytest.approx(8.0 / 6.0, rel=1e-14)


# Montgomery, ISQC, Table 6.3 (piston-ring inside diameter, mm), the 25 phase-I samples
# of 5 as R's qcc ships them (``data(pistonrings)``, samples 1-25).
PISTON_RINGS = [
    [74.030, 74.002, 74.019, 73.992, 74.008],
    [73.995, 73.992, 74.001, 74.011, 74.004],
    [73.988, 74.024, 74.021, 74.005, 74.002],
    [74.002, 73.996, 73.993, 74.015, 74.009],
    [73.992, 74.007, 74.015, 73.989, 74.014],
    [74.009, 73.994, 73.997, 73.985, 73.993],
    [73.995, 74.006, 73.994, 74.000, 74.005],
    [73.985, 74.003, 73.993, 74.015, 73.988],
    [74.008, 73.995, 74.009, 74.005, 74.004],
    [73.998, 74.000, 73.990, 74.007, 73.995],
    [73.994, 73.998, 73.994, 73.995, 73.990],
    [74.004, 74.000, 74.007, 74.000, 73.996],
    [73.983, 74.002, 73.998, 73.997, 74.012],
    [74.006, 73.967, 73.994, 74.000, 73.984],
    [74.012, 74.014, 73.998, 73.999, 74.007],
    [74.000, 73.984, 74.005, 73.998, 73.996],
    [73.994, 74.012, 73.986, 74.005, 74.007],
    [74.006, 74.010, 74.018, 74.003, 74.000],
    [73.984, 74.002, 74.003, 74.005, 73.997],
    [74.000, 74.010, 74.013, 74.020, 74.003],
    [73.988, 74.001, 74.009, 74.005, 73.996],
    [74.004, 73.999, 73.990, 74.006, 74.009],
    [74.010, 73.989, 73.990, 74.009, 74.014],
    [74.015, 74.008, 73.993, 74.000, 74.010],
    [73.982, 73.984, 73.995, 74.017, 74.013],
]


def test_piston_rings_rbar_sigma_and_cp_match_qcc() -> None:
    """qcc's x-bar chart of these samples: centre 74.00118, 2-sigma warning limits
    73.99242 / 74.00993 (so sigma = R-bar/d2 = 0.009785); specs 74 +/- 0.05 give
    Cp = 0.10 / (6 x 0.009785) = 1.70 and Cpk = 0.04882 / (3 x 0.009785) = 1.66."""
    result = capability(PISTON_RINGS, lsl=73.95, usl=74.05, sigma_within="rbar")
    assert result.n == 125
    assert result.subgroup_size == 5
    assert result.sigma_within_method == "rbar"
    assert result.mean == pytest.approx(74.00118, abs=5e-6)
    assert result.sigma_within * 2.326 == pytest.approx(0.02276, abs=5e-6)  # R-bar
    assert result.sigma_within == pytest.approx(0.009785, abs=5e-7)
    warn = 2.0 * result.sigma_within / math.sqrt(5.0)
    assert (result.mean - warn, result.mean + warn) == pytest.approx((73.99242, 74.00993), abs=1e-5)
    assert result.cp == pytest.approx(1.70, abs=0.005)
    assert result.cpk == pytest.approx(1.66, abs=0.005)


def test_piston_rings_in_one_dimension_with_subgroup_size_equal_the_2d_form() -> None:
    flat = [x for row in PISTON_RINGS for x in row]
    by_rows = capability(PISTON_RINGS, lsl=73.95, usl=74.05, sigma_within="sbar")
    by_size = capability(flat, lsl=73.95, usl=74.05, subgroup_size=5, sigma_within="sbar")
    assert by_size == by_rows


def test_montgomery_rounded_rbar_gives_sigma_0_0099_and_cp_1_68() -> None:
    """Montgomery, ISQC, ch. 6, piston rings: R-bar = 0.023, n = 5 -> sigma-hat = 0.0099;
    specs 74.000 +/- 0.05 -> Cp = 0.10 / (6 x 0.0099) = 1.68. Every subgroup below has
    range 0.023 and mean 74."""
    subgroup = [73.9885, 74.0, 74.0, 74.0, 74.0115]
    result = capability([subgroup] * 25, lsl=73.95, usl=74.05, sigma_within="rbar")
    assert result.sigma_within == pytest.approx(0.023 / chart_constants(5).d2, rel=1e-9)
    assert round(result.sigma_within, 4) == 0.0099
    assert result.cp == pytest.approx(1.68, abs=0.01)


# Montgomery, ISQC, Table 6.1 (hard-bake flow width, microns), 25 samples of 5
HARD_BAKE = [
    [1.3235, 1.4128, 1.6744, 1.4573, 1.6914],
    [1.4314, 1.3592, 1.6075, 1.4666, 1.6109],
    [1.4284, 1.4871, 1.4932, 1.4324, 1.5674],
    [1.5028, 1.6352, 1.3841, 1.2831, 1.5507],
    [1.5604, 1.2735, 1.5265, 1.4363, 1.6441],
    [1.5955, 1.5451, 1.3574, 1.3281, 1.4198],
    [1.6274, 1.5064, 1.8366, 1.4177, 1.5144],
    [1.4190, 1.4303, 1.6637, 1.6067, 1.5519],
    [1.3884, 1.7277, 1.5355, 1.5176, 1.3688],
    [1.4039, 1.6697, 1.5089, 1.4627, 1.5220],
    [1.4158, 1.7667, 1.4278, 1.5928, 1.4181],
    [1.5821, 1.3355, 1.5777, 1.3908, 1.7559],
    [1.2856, 1.4106, 1.4447, 1.6398, 1.1928],
    [1.4951, 1.4036, 1.5893, 1.6458, 1.4969],
    [1.3589, 1.2863, 1.5996, 1.2497, 1.5471],
    [1.5747, 1.5301, 1.5171, 1.1839, 1.8662],
    [1.3680, 1.7269, 1.3957, 1.5014, 1.4449],
    [1.4163, 1.3864, 1.3057, 1.6210, 1.5573],
    [1.5796, 1.4185, 1.6541, 1.5116, 1.7247],
    [1.7106, 1.4412, 1.2361, 1.3820, 1.7601],
    [1.4371, 1.5051, 1.3485, 1.5670, 1.4880],
    [1.4738, 1.5936, 1.6583, 1.4973, 1.4720],
    [1.5917, 1.4333, 1.5551, 1.5295, 1.6866],
    [1.6399, 1.5243, 1.5705, 1.5563, 1.5530],
    [1.5797, 1.3663, 1.6240, 1.3732, 1.6887],
]


def test_hard_bake_rbar_capability_from_x_double_bar_and_r_bar() -> None:
    """Montgomery's Table 6.1 summary: x-double-bar = 1.5056, R-bar = 0.32521; with specs
    1.50 +/- 0.50 these give sigma-hat = 0.32521 / 2.326 = 0.1398 and
    Cp = 1 / (6 x 0.1398) = 1.192."""
    result = capability(HARD_BAKE, lsl=1.0, usl=2.0, sigma_within="rbar")
    assert result.mean == pytest.approx(1.5056, abs=5e-5)
    assert result.sigma_within * chart_constants(5).d2 == pytest.approx(0.32521, abs=5e-6)
    assert result.sigma_within == pytest.approx(0.1398, abs=5e-5)
    assert result.cp == pytest.approx(1.192, abs=5e-4)


# ---------------------------------------------------------------- subgroups and constants


def test_hand_worked_subgroups_give_rbar_and_sbar_sigmas() -> None:
    # ranges 2 and 4 (R-bar 3); sds 1 and 2 (s-bar 1.5); all 6 values: mean 3
    data = [[1.0, 2.0, 3.0], [2.0, 4.0, 6.0]]
    rbar = capability(data, lsl=-10.0, usl=10.0, sigma_within="rbar")
    sbar = capability(data, lsl=-10.0, usl=10.0, sigma_within="sbar")
    assert rbar.sigma_within == pytest.approx(3.0 / chart_constants(3).d2, rel=1e-12)
    assert sbar.sigma_within == pytest.approx(1.5 / c4(3), rel=1e-12)
    assert rbar.mean == sbar.mean == 3.0
    assert rbar.sigma_overall == pytest.approx(math.sqrt(16.0 / 5.0), rel=1e-12)


def test_subgroup_intervals_use_the_degrees_of_freedom_of_the_within_sigma() -> None:
    # Minitab: nu = 0.9 m (n - 1) for R-bar, f_n m (n - 1) for s-bar (f_5 = 0.95)
    for method, nu in (("rbar", 0.9 * 25 * 4), ("sbar", 0.95 * 25 * 4)):
        result = capability(PISTON_RINGS, lsl=73.95, usl=74.05, sigma_within=method)
        assert result.cp is not None
        assert result.cpk is not None
        assert result.cp_ci == pytest.approx(cp_interval(result.cp, 125, nu), rel=1e-12)
        z = stats.norm.ppf(0.975)
        half = z * math.sqrt(1.0 / (9 * 125) + result.cpk**2 / (2 * nu))
        assert result.cpk_ci == pytest.approx((result.cpk - half, result.cpk + half), rel=1e-12)


def _naive_subgroup_sigma(rows: list[list[float]], method: str) -> float:
    """R-bar/d2 or s-bar/c4 by loops; d2 by a trapezoid rule, c4 from math.gamma."""
    n = len(rows[0])
    total = 0.0
    for row in rows:
        if method == "rbar":
            total += max(row) - min(row)
        else:
            centre = sum(row) / n
            total += math.sqrt(sum((x - centre) ** 2 for x in row) / (n - 1))
    bar = total / len(rows)
    if method == "sbar":
        return bar / (math.sqrt(2.0 / (n - 1)) * math.gamma(n / 2) / math.gamma((n - 1) / 2))
    step, d2 = 1e-3, 0.0
    for i in range(12_000):  # 2 x integral over [0, 12] of 1 - Phi^n - (1 - Phi)^n
        for x, w in ((i * step, 0.5), ((i + 1) * step, 0.5)):
            phi = 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))
            d2 += 2.0 * w * step * (1.0 - phi**n - (1.0 - phi) ** n)
    return bar / d2


@settings(max_examples=30, deadline=None, database=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    m=st.integers(1, 30),
    size=st.integers(2, 12),
    method=st.sampled_from(["rbar", "sbar"]),
    scale=st.sampled_from([0.01, 1.0, 50.0]),
)
def test_subgroup_sigma_equals_the_naive_loops(
    seed: int, m: int, size: int, method: str, scale: float
) -> None:
    rows = np.random.default_rng(seed).normal(100.0, scale, size=(m, size)).tolist()
    result = capability(rows, lsl=0.0, usl=200.0, sigma_within=method)
    assert result.sigma_within == pytest.approx(_naive_subgroup_sigma(rows, method), rel=1e-7)
    flat = [x for row in rows for x in row]
    assert result.sigma_overall == pytest.approx(naive.sample_sd(flat), rel=1e-9)
    assert result.mean == pytest.approx(naive.mean(flat), rel=1e-12)


# ---------------------------------------------------------------- normality test


def test_anderson_darling_statistic_equals_scipys_before_the_correction() -> None:
    x = np.random.default_rng(1).normal(size=30)
    a_star, _ = anderson_darling_normal(x)
    plain = stats.anderson(x, method="interpolate").statistic
    assert a_star / (1.0 + 0.75 / 30 + 2.25 / 30**2) == pytest.approx(plain, rel=1e-12)


@pytest.mark.parametrize(
    ("a_star", "alpha"),
    [(0.470, 0.25), (0.561, 0.15), (0.631, 0.10), (0.752, 0.05), (0.873, 0.025),
     (1.035, 0.01), (1.159, 0.005)],
)  # fmt: skip
def test_ad_p_value_at_stephens_critical_points_is_their_level(a_star: float, alpha: float) -> None:
    """D'Agostino and Stephens (1986), table 4.7, normal with mean and sd estimated: the
    upper-tail points of A*² = A²(1 + 0.75/n + 2.25/n²). The p-value formulas reproduce
    each level to within 2 %."""
    assert _ad_p_value(a_star) == pytest.approx(alpha, rel=0.02)


def test_ad_p_value_falls_from_one_to_zero_as_the_statistic_grows() -> None:
    grid = np.linspace(0.0, 12.0, 2401)
    p = np.array([_ad_p_value(a) for a in grid])
    assert np.all((p >= 0.0) & (p <= 1.0))
    assert p[0] == pytest.approx(1.0, abs=1e-5)
    assert np.all(np.diff(p) <= 1e-3)  # the four pieces meet within 0.001
    assert _ad_p_value(10.0) == 0.0
    assert _ad_p_value(200.0) == 0.0


def test_fewer_than_8_values_skip_the_normality_test_and_the_percentile_method() -> None:
    result = capability([1.0, 9.0, 1.1, 1.2, 1.0, 1.3, 1.05], lsl=0.0, usl=20.0)
    assert result.normality_p is None
    assert result.ad_statistic is None
    assert result.percentile is None
    with pytest.raises(ValueError, match="at least 8"):
        anderson_darling_normal([1.0, 2.0, 3.0])


def test_normal_data_pass_the_normality_test_and_get_no_percentile_indices() -> None:
    x = np.random.default_rng(11).normal(10.0, 1.0, size=200)
    result = capability(x, lsl=5.0, usl=15.0)
    assert result.normality_p is not None
    assert result.normality_p > 0.05
    assert result.percentile is None


def test_alternating_data_fail_the_normality_test() -> None:
    result = capability(ALTERNATING, lsl=-4.0, usl=8.0)
    assert result.normality_p is not None
    assert result.normality_p < 0.05
    assert result.method == "normal"  # the main indices stay normal theory


# ---------------------------------------------------------------- percentile method


@pytest.mark.parametrize(
    ("sample", "family"),
    [
        (lambda r: r.lognormal(1.0, 0.5, 3000), "lognormal"),
        (lambda r: 3.0 * r.weibull(1.5, 3000), "weibull"),
        (lambda r: r.gamma(2.0, 1.5, 3000), "gamma"),
    ],
    ids=["lognormal", "weibull", "gamma"],
)
def test_skewed_data_get_percentile_indices_from_their_own_family(
    sample: Callable[[np.random.Generator], npt.NDArray[np.float64]], family: str
) -> None:
    x = sample(np.random.default_rng(5))
    result = capability(x, lsl=0.01, usl=30.0, sigma_within="mr")
    assert result.normality_p is not None
    assert result.normality_p < 0.05
    assert result.percentile is not None
    assert result.percentile.method == f"percentile:{family}"


def test_percentile_indices_follow_iso_22514_2_from_the_fitted_quantiles() -> None:
    x = np.random.default_rng(6).lognormal(1.0, 0.5, 500)
    lsl, usl = 0.5, 20.0
    pc = percentile_capability(x, lsl, usl)
    assert pc is not None
    dist = stats.lognorm(*pc.params)
    lo, med, hi = dist.ppf([0.00135, 0.5, 0.99865])
    assert (pc.x_low, pc.x_median, pc.x_high) == pytest.approx((lo, med, hi), rel=1e-12)
    assert pc.cp == pytest.approx((usl - lsl) / (hi - lo), rel=1e-12)
    assert pc.cpu == pytest.approx((usl - med) / (hi - med), rel=1e-12)
    assert pc.cpl == pytest.approx((med - lsl) / (med - lo), rel=1e-12)
    assert pc.cpk == min(pc.cpu, pc.cpl)  # type: ignore[type-var]
    assert pc.ppm_expected == pytest.approx(1e6 * (dist.sf(usl) + dist.cdf(lsl)), rel=1e-12)
    assert pc.params[1] == 0.0  # location fixed at 0


def test_percentile_fit_recovers_a_known_lognormal() -> None:
    # lognormal(mu=1, s=0.5): X50 = e, X99.865 = exp(1 + 3 x 0.5), X0.135 = exp(1 - 1.5)
    pc = percentile_capability(np.random.default_rng(7).lognormal(1.0, 0.5, 20_000), None, 50.0)
    assert pc is not None
    assert pc.method == "percentile:lognormal"
    assert pc.x_median == pytest.approx(math.e, rel=0.01)
    assert pc.x_high == pytest.approx(math.exp(2.5), rel=0.03)
    assert pc.x_low == pytest.approx(math.exp(-0.5), rel=0.03)


def test_one_sided_percentile_indices_leave_cp_undefined() -> None:
    pc = percentile_capability(np.random.default_rng(8).gamma(2.0, 1.0, 300), None, 12.0)
    assert pc is not None
    assert pc.cp is None
    assert pc.cpl is None
    assert pc.cpk == pc.cpu


def test_non_positive_skewed_data_get_no_percentile_indices() -> None:
    x = np.random.default_rng(9).exponential(1.0, 300) - 0.5
    result = capability(x, lsl=-1.0, usl=8.0)
    assert result.normality_p is not None
    assert result.normality_p < 0.05
    assert result.percentile is None


# ---------------------------------------------------------------- argument checks


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sigma_within": "pooled"}, r"sigma_within must be 'mr', 'rbar' or 'sbar'"),
        ({"subgroup_size": 5}, r"'mr' is for individuals"),
        ({"subgroup_size": 3, "sigma_within": "rbar"}, r"10 values do not split into subgroups"),
        ({"sigma_within": "rbar"}, r"'rbar' needs subgroups"),
        ({"sigma_within": "sbar"}, r"'sbar' needs subgroups"),
        ({"subgroup_size": 0}, r"subgroup_size must be at least 1"),
    ],
    ids=["unknown-method", "mr-with-subgroups", "ragged-1d", "rbar-individuals",
         "sbar-individuals", "zero-size"],
)  # fmt: skip
def test_unsupported_sigma_choices_are_refused_with_the_fix(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        capability(ALTERNATING, usl=8.0, **kwargs)  # type: ignore[arg-type]


def test_2d_data_with_the_default_mr_are_told_to_use_rbar_or_sbar() -> None:
    with pytest.raises(ValueError, match=r"'mr' is for individuals.*'rbar' or 'sbar'"):
        capability([[1.0, 2.0], [3.0, 4.0]], lsl=0.0, usl=10.0)


def test_2d_data_with_a_different_subgroup_size_are_refused() -> None:
    with pytest.raises(ValueError, match=r"subgroups of 2 \(one per row\).*subgroup_size is 3"):
        capability([[1.0, 2.0], [3.0, 4.0]], usl=10.0, subgroup_size=3, sigma_within="rbar")


def test_rbar_beyond_25_points_to_sbar() -> None:
    rows = np.random.default_rng(2).normal(size=(3, 26))
    with pytest.raises(ValueError, match=r"2\.\.25.*use sigma_within='sbar'"):
        capability(rows, usl=10.0, sigma_within="rbar")
    assert capability(rows, usl=10.0, sigma_within="sbar").subgroup_size == 26


def test_unequal_subgroups_are_refused() -> None:
    with pytest.raises(ValueError, match="equal-size subgroups"):
        capability([[1.0, 2.0], [3.0]], usl=10.0, sigma_within="rbar")


def test_non_integer_subgroup_size_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="subgroup_size must be an int"):
        capability(ALTERNATING, usl=8.0, subgroup_size=2.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("lsl", "usl", "target", "name"),
    [(-math.inf, 8.0, None, "lsl"), (-4.0, math.nan, None, "usl"), (-4.0, 8.0, math.inf, "target")],
)
def test_non_finite_limits_are_refused(
    lsl: float, usl: float, target: float | None, name: str
) -> None:
    with pytest.raises(ValueError, match=f"{name} must be a finite number"):
        capability(ALTERNATING, lsl=lsl, usl=usl, target=target)


def test_tightly_clustered_data_with_an_extreme_fit_raise_no_warning() -> None:
    """Regression: a Hypothesis example where the Weibull fit's shape overflowed scipy's
    tail functions, leaking a RuntimeWarning (an error under the test settings)."""
    data = [74.00284249091172, 74.00172958494551, 74.00481049717877, 73.99645412386128,
            73.98690569431321, 74.00019106693885, 74.00250748334665, 73.98250011407242,
            74.00385837589819]  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = capability(data, usl=74.011)
    assert result.cpk is not None
