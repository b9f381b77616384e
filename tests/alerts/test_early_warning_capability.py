"""Capability warning: raised only when Cpk's upper 95 % bound is below the target.

Hand computation (Bissell, Montgomery eq. 8.21): upper = Cpk + 1.96 sqrt(1/(9n) +
Cpk² / (2 (n - 1))). With n = 100: Cpk 1.15 gives 1.15 + 1.96 × 0.08826 = 1.3230 < 1.33,
Cpk 1.16 gives 1.16 + 1.96 × 0.08892 = 1.3343 > 1.33.
"""

from __future__ import annotations

import numpy as np
import pytest

from alerts.early_warnings import check_cpk, rolling_cpk
from spc import capability


def test_upper_bound_just_below_the_target_raises() -> None:
    # USL = 10 + 3 × 0.1 × 1.15: Cpu = 1.15; the LSL is far away
    check = check_cpk(100, mean=10.0, sigma_within=0.1, lsl=8.0, usl=10.345, target=1.33)
    assert check.cpk == pytest.approx(1.15)
    assert check.interval == pytest.approx((0.9770, 1.3230), abs=1e-4)
    assert check.below_target
    assert check.severity == "warning"
    assert check.message() == (
        "Rolling Cpk 1.15 (95 % interval 0.98–1.32, n = 100) is below the target 1.33"
    )


def test_upper_bound_just_above_the_target_does_not_raise() -> None:
    check = check_cpk(100, mean=10.0, sigma_within=0.1, lsl=8.0, usl=10.348, target=1.33)
    assert check.cpk == pytest.approx(1.16)
    assert check.interval == pytest.approx((0.9857, 1.3343), abs=1e-4)
    assert not check.below_target


def test_a_small_sample_with_the_same_cpk_does_not_cry_wolf() -> None:
    # Cpk 1.1: upper bound 1.4375 with n = 25, but 1.2175 with n = 200
    small = check_cpk(25, mean=0.0, sigma_within=1.0, lsl=-3.3, usl=4.0)
    large = check_cpk(200, mean=0.0, sigma_within=1.0, lsl=-3.3, usl=4.0)
    assert small.interval[1] == pytest.approx(1.4375, abs=1e-4)
    assert not small.below_target
    assert large.interval[1] == pytest.approx(1.2175, abs=1e-4)
    assert large.below_target


def test_not_capable_even_at_best_is_critical() -> None:
    check = check_cpk(200, mean=0.0, sigma_within=1.0, lsl=-2.4, usl=2.4)  # Cpk 0.8
    assert check.interval[1] < 1.0
    assert check.severity == "critical"


def test_details_carry_the_grade_of_the_point_estimate() -> None:
    details = check_cpk(100, mean=10.0, sigma_within=0.1, lsl=8.0, usl=10.345).details()
    assert details["cpk"] == pytest.approx(1.15)
    assert details["grade"] == 2  # 1.00 <= Cpk < 1.33
    assert details["next_grade_cpk"] == 1.33


def test_rolling_cpk_agrees_with_the_spc_reference() -> None:
    values = np.random.default_rng(3).normal(10.0, 0.1, 120)
    ours = rolling_cpk(values, lsl=9.6, usl=10.5)
    ref = capability(values, lsl=9.6, usl=10.5)
    assert ours is not None
    assert ref.cpk is not None
    assert ref.cpk_ci is not None
    assert ours.cpk == pytest.approx(ref.cpk, rel=1e-12)
    assert ours.interval == pytest.approx(ref.cpk_ci, rel=1e-12)
    assert ours.sigma_within == pytest.approx(ref.sigma_within, rel=1e-12)


def test_rolling_cpk_needs_enough_points_variation_and_a_limit() -> None:
    assert rolling_cpk(np.arange(24.0), lsl=-100.0, usl=100.0) is None
    assert rolling_cpk(np.full(50, 3.0), lsl=0.0, usl=10.0) is None
    assert rolling_cpk(np.arange(50.0), lsl=None, usl=None) is None
