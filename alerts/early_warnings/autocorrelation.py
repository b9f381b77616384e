"""Autocorrelation: when Shewhart limits would fire falsely, say so and offer a better chart.

Convention: the lag-1 sample autocorrelation (Box and Jenkins)
r1 = Σ (x_t - x̄)(x_{t+1} - x̄) / Σ (x_t - x̄)², t over the window, computed on the values
less their least-squares line, so that a drift (reported by the drift forecast) does not
pass for autocorrelation. Under independence r1 is about N(0, 1/n), so 2/√n is its
approximate 95 % bound (Montgomery, *Introduction to Statistical Quality Control*,
6th ed., sec. 10.4); a warning also needs the practical threshold (default 0.3), below
which the false-alarm rate of an individuals chart barely moves.

The remedies offered: an EWMA chart, or the residuals of an AR(1) model
e_t = (x_t - x̄) - φ̂ (x_{t-1} - x̄) with φ̂ = r1, charted as individuals
(Montgomery sec. 10.4.2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from alerts.early_warnings.model import JsonValue

AUTOCORRELATION_MIN_POINTS = 50
"""Default fewest points for a judgement (at 30, 2/√n alone is 0.37)."""
AUTOCORRELATION_THRESHOLD = 0.3
"""Default practical threshold for r1 to raise the warning."""
AUTOCORRELATION_CLEAR = 0.2
"""Default r1 below which (and below 2/√n) the warning clears."""

FloatArray = npt.NDArray[np.float64]


def lag1_autocorrelation(values: npt.ArrayLike, detrend: bool = True) -> float:
    """r1 of `values` (module docstring); NaN when there are fewer than 3 or no variation."""
    x = np.asarray(values, dtype=np.float64)
    if x.size < 3:
        return math.nan
    if detrend:
        t = np.arange(x.size, dtype=np.float64) - 0.5 * (x.size - 1)
        x = x - x.mean() - t * (float(t @ x) / float(t @ t))  # less the least-squares line
    d = x - x.mean()
    denominator = float(d @ d)
    return float(d[:-1] @ d[1:]) / denominator if denominator > 0.0 else math.nan


def ar1_residuals(values: npt.ArrayLike, phi: float | None = None) -> FloatArray:
    """AR(1) residuals e_t = (x_t - x̄) - φ (x_{t-1} - x̄), t = 1..n-1 (φ default: r1).

    Chart them on an individuals chart: they are about independent when the AR(1)
    model fits, so the usual rules hold for them.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.size < 3:
        raise ValueError("AR(1) residuals need at least 3 values")
    coefficient = lag1_autocorrelation(x, detrend=False) if phi is None else phi
    d = x - x.mean()
    residuals: FloatArray = d[1:] - coefficient * d[:-1]
    return residuals


@dataclass(frozen=True)
class AutocorrelationCheck:
    """r1 over a window against its thresholds."""

    r1: float
    n: int
    threshold: float  # the larger of 2/√n and the practical threshold
    clear_below: float

    @property
    def autocorrelated(self) -> bool:
        """True when r1 exceeds both 2/√n and the practical threshold."""
        return self.r1 > self.threshold

    @property
    def independent(self) -> bool:
        """True when r1 is below the clearing threshold (the hysteresis band's floor)."""
        return not self.r1 >= self.clear_below

    def message(self) -> str:
        """A sentence for people."""
        return (
            f"Lag-1 autocorrelation r1 = {self.r1:.2f} over {self.n} points "
            f"(above {self.threshold:.2f}): Shewhart limits will give false alarms; "
            "chart the EWMA or the AR(1) residuals instead"
        )

    def details(self) -> dict[str, JsonValue]:
        """A JSON-able summary."""
        return {
            "method": "lag-1 sample autocorrelation of the linearly detrended window",
            "r1": self.r1,
            "n": self.n,
            "threshold": self.threshold,
            "bound_2_over_sqrt_n": 2.0 / math.sqrt(self.n),
            "phi": self.r1,
            "suggested_charts": ["ewma", "ar1-residuals"],
        }


def check_autocorrelation(
    values: npt.ArrayLike,
    threshold: float = AUTOCORRELATION_THRESHOLD,
    clear_below: float = AUTOCORRELATION_CLEAR,
    min_points: int = AUTOCORRELATION_MIN_POINTS,
) -> AutocorrelationCheck | None:
    """Judge r1 of `values`; None with fewer than `min_points` or no variation."""
    x = np.asarray(values, dtype=np.float64)
    if x.size < max(min_points, 3):
        return None
    r1 = lag1_autocorrelation(x)
    if math.isnan(r1):
        return None
    bound = 2.0 / math.sqrt(x.size)
    return AutocorrelationCheck(r1, int(x.size), max(bound, threshold), max(bound, clear_below))
