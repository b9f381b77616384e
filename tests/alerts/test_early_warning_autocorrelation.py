"""Autocorrelation: lag-1 r1 over the window, flagged above 2/√n and 0.3."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from alerts.early_warnings import (
    EarlyWarningEvaluator,
    ar1_residuals,
    check_autocorrelation,
    lag1_autocorrelation,
)

SEEDS = range(50)
T0 = datetime(2025, 3, 14, 8, 0, tzinfo=UTC)


def _ar1(phi: float, n: int, seed: int) -> np.ndarray:
    """x_t = phi x_{t-1} + e_t, unit innovations, started from the stationary law."""
    e = np.random.default_rng(seed).standard_normal(n)
    x = np.empty(n)
    x[0] = e[0] / math.sqrt(1.0 - phi**2)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + e[t]
    return x


def test_r1_by_hand() -> None:
    # mean 0, Σ x_t x_{t+1} = -3, Σ x² = 4
    assert lag1_autocorrelation([1.0, -1.0, 1.0, -1.0], detrend=False) == pytest.approx(-0.75)
    assert math.isnan(lag1_autocorrelation([2.0, 2.0, 2.0]))


def test_ar1_with_phi_07_is_flagged_in_every_seed() -> None:
    """Pass criterion: flagged in all of seeds 0..49 (n = 200), r1's median within 0.05
    of 0.7."""
    checks = [check_autocorrelation(_ar1(0.7, 200, s)) for s in SEEDS]
    assert all(c is not None and c.autocorrelated for c in checks)
    assert np.median([c.r1 for c in checks if c]) == pytest.approx(0.7, abs=0.05)


def test_white_noise_is_flagged_in_at_most_one_seed_in_fifty() -> None:
    checks = [check_autocorrelation(np.random.default_rng(s).standard_normal(200)) for s in SEEDS]
    assert sum(c is not None and c.autocorrelated for c in checks) <= 1


def test_threshold_is_the_larger_of_two_over_root_n_and_the_practical_one() -> None:
    short = check_autocorrelation(_ar1(0.7, 50, 1))
    long = check_autocorrelation(_ar1(0.7, 200, 1))
    assert short is not None
    assert short.threshold == pytest.approx(0.3)
    assert long is not None
    assert long.threshold == pytest.approx(0.3)
    assert check_autocorrelation(np.arange(49.0)) is None  # too few points
    tight = check_autocorrelation(_ar1(0.7, 50, 1), threshold=0.1, min_points=30)
    assert tight is not None
    assert tight.threshold == pytest.approx(2 / math.sqrt(50))


def test_a_linear_drift_is_not_taken_for_autocorrelation() -> None:
    values = 0.05 * np.arange(200) + np.random.default_rng(2).standard_normal(200)
    assert lag1_autocorrelation(values, detrend=False) > 0.8
    check = check_autocorrelation(values)
    assert check is not None
    assert not check.autocorrelated


def test_ar1_residuals_are_about_independent() -> None:
    residuals = ar1_residuals(_ar1(0.7, 200, 4))
    assert residuals.shape == (199,)
    assert abs(lag1_autocorrelation(residuals, detrend=False)) < 0.15


def test_evaluator_suggests_the_ewma_or_residual_chart_once() -> None:
    ev = EarlyWarningEvaluator()
    x = 25.0 + 0.01 * _ar1(0.7, 200, 3)
    times = [T0 + timedelta(seconds=0.1 * i) for i in range(200)]
    raised = [
        w for i in range(0, 200, 10) for w in ev.observe("a", times[i : i + 10], x[i : i + 10])
    ]
    [warning] = [w for w in raised if w.kind == "autocorrelation"]
    assert warning.severity == "info"
    assert warning.details["n"] == 50  # flagged as soon as there are enough points
    r1 = warning.details["r1"]
    assert isinstance(r1, float)
    assert r1 > 0.3
    assert warning.details["suggested_charts"] == ["ewma", "ar1-residuals"]
    assert "chart the EWMA or the AR(1) residuals instead" in warning.message
