"""Drift forecast: Theil–Sen with Sen's interval, projected to the limits.

The accuracy tests run the project's tool-wear simulator (``Scenario("drift", ...)``)
and compare the forecast after 30 drifting parts with the true number of parts until the
process mean reaches USL, known from the simulated rate.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime

import numpy as np
import pytest
from scipy import stats

from alerts.early_warnings import forecast_drift, judge_drift, theil_sen
from simulators.plant import SimCharacteristic, load_plant
from simulators.scenario import Scenario, ValueGenerator
from tests.conftest import DEMO_CONFIG

T0 = datetime(2025, 3, 14, 8, 0, tzinfo=UTC)
START = 100  # the first drifting part
RUN = 30  # drifting parts seen when the forecast is judged
TAKT_S = 20.0


def _diameter() -> SimCharacteristic:
    # line1.turning.diameter: 25.00 ± 0.05 mm at sigma 0.00998 mm (Cp = Cpk = 1.67), the
    # process the figures below were measured on (the simulators now default to Cp 1.5)
    char = load_plant(DEMO_CONFIG).characteristics[0]
    return dataclasses.replace(char, sigma=0.1 / (6 * 1.67))


def _tool_wear(char: SimCharacteristic, rate: float, seed: int) -> list[float]:
    """The first START + RUN parts of a drift of `rate` sigma per part from part START."""
    gen = ValueGenerator(Scenario("drift", seed, start_part=START, size=rate), [char])
    return [gen.next_part(T0)[char.id] for _ in range(START + RUN)]


def _true_parts_to_usl(char: SimCharacteristic, rate: float) -> float:
    """Parts after the last one seen until the mean reaches USL.

    The mean of drifting part k (0 = START) is nominal + rate sigma (k + 1): it reaches
    USL at k + 1 = (USL - nominal) / (rate sigma); the last part seen has k + 1 = RUN.
    """
    assert char.usl is not None
    return (char.usl - char.nominal) / (rate * char.sigma) - RUN


def _forecast_errors(
    char: SimCharacteristic, rate: float, seeds: range
) -> tuple[np.ndarray, np.ndarray]:
    """|forecast / truth - 1| of the parts to USL per seed, and whether the interval holds
    the truth (a forecast with no upward drift counts as an infinite error)."""
    truth = _true_parts_to_usl(char, rate)
    errors, covered = [], []
    for seed in seeds:
        values = _tool_wear(char, rate, seed)
        forecast = forecast_drift(np.arange(len(values)) * TAKT_S, values, {"usl": char.usl})
        assert forecast is not None
        eta = forecast.eta("usl")
        errors.append(math.inf if eta is None else abs(eta.parts / truth - 1.0))
        covered.append(eta is not None and eta.parts_interval[0] <= truth <= eta.parts_interval[1])
    return np.array(errors), np.array(covered)


def test_a_tool_wearing_fast_against_the_noise_is_forecast_within_25_percent() -> None:
    """The issue's target, where it is reachable: a capable process (Cp 4, the tolerance
    ±12 σ) whose tool wears 0.2 σ per part, 30 parts into the wear, 30 parts from USL.

    Measured over seeds 0..199: 90.5 % of the forecasts within ±25 % of the truth, median
    error 12 %, the 95 % interval holding the truth in 96.5 %. What sets the accuracy is
    the wear against the noise: the slope's standard error (0.021 σ/part after 30 points)
    is 10 % of this rate, 21–42 % of the slower ones above.
    """
    char = dataclasses.replace(_diameter(), sigma=0.1 / (6 * 4.0))
    assert _true_parts_to_usl(char, 0.2) == pytest.approx(30.0)
    errors, covered = _forecast_errors(char, 0.2, SEEDS)
    assert (errors <= 0.25).mean() >= 0.88
    assert np.median(errors) <= 0.15
    assert covered.mean() >= 0.93


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_theil_sen_matches_scipy_with_sens_interval(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = np.sort(rng.integers(0, 15, 25)).astype(float)  # ties in x
    y = np.round(rng.standard_normal(25), 1)  # ties in y
    ours = theil_sen(x, y, confidence=0.9)
    ref = stats.theilslopes(y, x, alpha=0.9, method="joint")
    assert ours is not None
    assert (ours.slope, ours.low, ours.high) == pytest.approx(
        (ref.slope, ref.low_slope, ref.high_slope), abs=1e-12
    )
    assert ours.intercept == pytest.approx(ref.intercept, abs=1e-12)


def test_noise_free_ramp_forecasts_the_exact_time_to_usl() -> None:
    values = 10.0 + 0.1 * np.arange(30)  # level at the last point 12.9
    forecast = forecast_drift(np.arange(30) * 2.0, values, {"usl": 15.0, "ucl": 13.5})
    assert forecast is not None
    assert forecast.significant
    assert forecast.slope_per_point == pytest.approx(0.1)
    assert forecast.slope_per_second == pytest.approx(0.05)
    assert [e.name for e in forecast.limits] == ["ucl", "usl"]  # nearest first
    usl = forecast.eta("usl")
    assert usl is not None
    assert usl.parts == pytest.approx(21.0)  # (15 - 12.9) / 0.1
    assert usl.seconds == pytest.approx(42.0)
    assert usl.parts_interval == pytest.approx((21.0, 21.0))


def test_downward_drift_is_projected_to_lsl_and_lcl_only() -> None:
    values = 10.0 - 0.05 * np.arange(40) + 0.01 * np.sin(np.arange(40))
    forecast = forecast_drift(np.arange(40.0), values, {"usl": 12, "lsl": 7.0, "lcl": 8.0})
    assert forecast is not None
    assert forecast.direction == "down"
    assert [e.name for e in forecast.limits] == ["lcl", "lsl"]
    lsl = forecast.eta("lsl")
    assert lsl is not None
    # the level at the last window point is about 10 - 0.05 * 39 = 8.05: 21 parts to go
    assert lsl.parts == pytest.approx(21.0, abs=0.5)


def test_a_limit_the_level_has_passed_is_reached_now() -> None:
    values = 10.0 + 0.1 * np.arange(30)
    forecast = forecast_drift(np.arange(30.0), values, {"usl": 12.0})
    assert forecast is not None
    eta = forecast.eta("usl")
    assert eta is not None
    assert eta.parts == 0.0
    assert eta.parts_interval == (0.0, 0.0)


def test_a_slope_that_may_be_zero_leaves_the_far_end_open() -> None:
    values = np.random.default_rng(5).standard_normal(30)
    forecast = forecast_drift(np.arange(30.0), values, {"usl": 5.0, "lsl": -5.0})
    assert forecast is not None
    assert not forecast.significant
    eta = forecast.limits[0]
    assert math.isinf(eta.parts_interval[1])
    limit_details = forecast.details()["limits"]
    assert isinstance(limit_details, list)
    assert isinstance(limit_details[0], dict)
    assert limit_details[0]["parts_interval"] == [eta.parts_interval[0], None]


def test_times_that_do_not_move_leave_only_the_forecast_in_parts() -> None:
    values = 1.0 + 0.01 * np.arange(30) + 0.001 * np.cos(np.arange(30))
    forecast = forecast_drift(np.zeros(30), values, {"usl": 2.0})
    assert forecast is not None
    assert forecast.slope_per_second is None
    eta = forecast.eta("usl")
    assert eta is not None
    assert eta.seconds is None
    judgement = judge_drift(forecast, 100, 1800.0, unit="mm")
    assert judgement.message == (
        "Drift of +0.00999 mm per part: at this rate USL 2 mm is reached in ~71 parts "
        "(95 % interval 71 parts–71 parts)"
    )


def test_fewer_points_than_the_window_give_no_forecast() -> None:
    assert forecast_drift(np.arange(29.0), np.arange(29.0), {"usl": 100.0}) is None


SEEDS = range(200)


@pytest.mark.parametrize(("rate", "min_coverage", "max_median_error", "min_within"), [
    (0.05, 0.93, 0.40, 0.28),
    (0.10, 0.92, 0.30, 0.40),
])  # fmt: skip
def test_tool_wear_forecast_after_30_parts_is_as_good_as_the_noise_allows(
    rate: float, min_coverage: float, max_median_error: float, min_within: float
) -> None:
    """Pass criterion, over seeds 0..199 on the demo diameter (Cp 1.67), 30 parts into a
    drift of `rate` sigma per part: the 95 % interval holds the true parts-to-USL in at
    least `min_coverage` of the seeds, the median |forecast / truth - 1| is at most
    `max_median_error`, and at least `min_within` of the seeds are within ±25 %.

    Measured: 0.05 σ/part (truth 70 parts): coverage 0.97, median error 0.35, 34 % of
    seeds within ±25 %; 0.1 σ/part (truth 20 parts): 0.96, 0.26, 46 %. ±25 % in almost
    every seed is out of reach here: the slope of 30 points with unit noise has a
    standard error of 0.021 σ/part, 21–42 % of these rates, and even an oracle that
    knows where the drift began gets only about two thirds of the seeds within ±25 %.
    """
    errors, covered = _forecast_errors(_diameter(), rate, SEEDS)
    assert covered.mean() >= min_coverage
    assert np.median(errors) <= max_median_error
    assert (errors <= 0.25).mean() >= min_within


def test_slow_tool_wear_is_covered_by_the_interval_after_30_parts() -> None:
    """0.02 σ/part, 220 parts to go: the 95 % interval holds the truth in ≥ 80 % of seeds
    0..199 (measured 84 %; median error 0.60): a slope of 0.02 hides in the 0.021
    standard error of a 30-point window, and the interval says so by its width."""
    _, covered = _forecast_errors(_diameter(), 0.02, SEEDS)
    assert covered.mean() >= 0.80


@pytest.mark.parametrize("rate", [0.2, 0.3])
def test_tool_wear_forecast_is_within_25_percent_when_wear_dominates_the_noise(
    rate: float,
) -> None:
    """Pass criterion: within ±25 % of the true parts-to-USL in ≥ 95 % of seeds 0..199
    (measured 96.5 % and 99 %, median errors 0.09 and 0.07), on a diameter whose USL is
    25 sigma above nominal, 30 parts into the drift (95 and 53 parts to go)."""
    precise = dataclasses.replace(_diameter(), sigma=0.002)
    errors, _ = _forecast_errors(precise, rate, SEEDS)
    assert (errors <= 0.25).mean() >= 0.95


def test_time_to_limit_in_seconds_follows_the_takt() -> None:
    char = _diameter()
    values = _tool_wear(char, 0.1, seed=7)
    forecast = forecast_drift(np.arange(len(values)) * TAKT_S, values, {"usl": char.usl})
    assert forecast is not None
    eta = forecast.eta("usl")
    assert eta is not None
    assert eta.seconds is not None
    assert eta.seconds_interval is not None
    assert eta.seconds == pytest.approx(TAKT_S * eta.parts)
    assert eta.seconds_interval == pytest.approx(tuple(TAKT_S * p for p in eta.parts_interval))


def test_judgement_words_the_forecast_with_units_and_interval() -> None:
    values = 25.0 + 0.0004 * np.arange(30)  # 25.0116 mm at the last point
    forecast = forecast_drift(np.arange(30) * 10.0, values, {"usl": 25.05, "ucl": 25.03})
    assert forecast is not None
    judgement = judge_drift(forecast, 100, 1800.0, center=25.0, sigma=0.005, unit="mm")
    assert judgement.raise_now
    assert judgement.severity == "warning"
    assert judgement.message == (
        "Drift of +0.0004 mm per part: at this rate USL 25.05 mm is reached in ~16 min "
        "(~96 parts; 95 % interval 16 min–16 min); UCL 25.03 mm in ~8 min"
    )
    assert judgement.details["limit"] == "usl"


def test_significant_slope_near_the_centre_line_is_not_raised() -> None:
    values = 25.0 - 0.00015 + 0.00001 * np.arange(30)  # the window's level at the centre
    forecast = forecast_drift(np.arange(30.0), values, {"usl": 25.0005})
    assert forecast is not None
    assert forecast.significant
    near = judge_drift(forecast, 100, None, center=25.0, sigma=0.001)
    assert not near.raise_now  # 0.0 sigma off the centre, 0.75 needed
    assert judge_drift(forecast, 100, None).raise_now  # no centre line known: no gate
