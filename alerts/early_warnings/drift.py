"""Drift forecast: a robust slope over the recent window, projected to the limits.

Convention: the Theil–Sen estimator (Theil 1950; Sen 1968), the median of the pairwise
slopes (y_j - y_i) / (x_j - x_i), i < j, pairs with x_i = x_j left out; the level is the
median of y - b x ("joint" intercept). Its two-sided interval is Sen's (1968, eq. 2.6):
the order statistics of the sorted slopes at (N ∓ z sqrt(var S)) / 2, N the number of
slopes, var S = [n (n - 1)(2n + 5) - Σ t (t - 1)(2t + 5)] / 18 over the tie groups t of
x and of y (the variance of Kendall's S), as in ``scipy.stats.theilslopes``. The slope
is fitted twice over the same window: against the point index (units per point, i.e. per
part) and against the time in seconds (units per second).

The time to a limit is counted from the last point: (limit - L) / b, L the fitted level
at the last point. Its interval comes from the slope's interval, anchored at the window's
centroid (where the level is least correlated with the slope): T(b) = (limit - L_c) / b
- (x_last - x_c). A limit the fitted level has already passed is reached: time 0. When
the slope interval includes 0, the far end of the time interval is infinite.

The interval assumes independent noise around the line; autocorrelated data (see
``alerts.early_warnings.autocorrelation``) make it too narrow.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np
import numpy.typing as npt

from alerts.early_warnings.model import JsonValue, format_duration, format_value, percent

FloatArray = npt.NDArray[np.float64]
Direction = Literal["up", "down"]

DRIFT_WINDOW = 30
"""Default number of recent points in the fit."""
DRIFT_CONFIDENCE = 0.95
"""Default two-sided level of the slope and time intervals."""


@dataclass(frozen=True)
class SlopeEstimate:
    """A Theil–Sen line y = intercept + slope x with Sen's interval for the slope."""

    slope: float
    low: float
    high: float
    intercept: float
    n: int
    confidence: float

    def level_at(self, x: float) -> float:
        """The fitted level at `x`."""
        return self.intercept + self.slope * x

    @property
    def significant(self) -> bool:
        """True when the slope's interval excludes 0."""
        return self.low > 0.0 or self.high < 0.0


@dataclass(frozen=True)
class LimitEta:
    """When a limit is reached at the current rate, from the last point.

    ``parts`` and ``seconds`` are central estimates; the intervals come from the slope's
    interval (``math.inf`` when the slope may be 0). ``seconds`` is None when the window's
    times do not define a rate per second (all equal).
    """

    name: str  # "usl", "lsl", "ucl" or "lcl"
    value: float
    parts: float
    parts_interval: tuple[float, float]
    seconds: float | None
    seconds_interval: tuple[float, float] | None


@dataclass(frozen=True)
class DriftForecast:
    """The current drift over the recent window and when it reaches each limit ahead."""

    n: int
    confidence: float
    direction: Direction
    slope_per_point: float
    slope_per_point_interval: tuple[float, float]
    slope_per_second: float | None
    slope_per_second_interval: tuple[float, float] | None
    level: float  # the fitted level at the last point
    centroid_level: float  # the fitted level at the window's centroid
    significant: bool
    limits: tuple[LimitEta, ...]  # the limits ahead in the drift's direction, nearest first

    def eta(self, name: str) -> LimitEta | None:
        """The forecast for limit `name` ("usl", "lsl", "ucl", "lcl"), if it lies ahead."""
        return next((e for e in self.limits if e.name == name), None)

    def details(self) -> dict[str, JsonValue]:
        """A JSON-able summary (infinite bounds as None)."""
        return {
            "method": f"Theil-Sen slope over the last {self.n} points, "
            f"Sen's {percent(self.confidence)} interval",
            "n": self.n,
            "direction": self.direction,
            "slope_per_point": self.slope_per_point,
            "slope_per_point_interval": _pair(self.slope_per_point_interval),
            "slope_per_second": self.slope_per_second,
            "slope_per_second_interval": _pair(self.slope_per_second_interval),
            "level": self.level,
            "significant": self.significant,
            "limits": [
                {
                    "name": e.name,
                    "value": e.value,
                    "parts": _finite(e.parts),
                    "parts_interval": _pair(e.parts_interval),
                    "seconds": _finite(e.seconds),
                    "seconds_interval": _pair(e.seconds_interval),
                }
                for e in self.limits
            ],
        }


def theil_sen(
    x: npt.ArrayLike, y: npt.ArrayLike, confidence: float = DRIFT_CONFIDENCE
) -> SlopeEstimate | None:
    """Theil–Sen line of `y` on `x` with Sen's interval (module docstring); None when no
    two points differ in x."""
    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    if xs.shape != ys.shape or xs.ndim != 1:
        raise ValueError("x and y must be 1-D arrays of the same length")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), not {confidence}")
    i, j = _pairs(xs.size)
    dx = xs[j] - xs[i]
    keep = dx != 0.0
    slopes = np.sort((ys[j] - ys[i])[keep] / dx[keep])
    if slopes.size == 0:
        return None
    n, count = xs.size, slopes.size
    slope = _sorted_median(slopes)
    var_s = (n * (n - 1) * (2 * n + 5) - _ties(xs) - _ties(ys)) / 18.0
    spread = NormalDist().inv_cdf(0.5 + confidence / 2.0) * math.sqrt(max(var_s, 0.0))
    lo = max(int(np.round((count - spread) / 2.0)) - 1, 0)
    hi = min(int(np.round((count + spread) / 2.0)), count - 1)
    intercept = _sorted_median(np.sort(ys - slope * xs))
    return SlopeEstimate(slope, float(slopes[lo]), float(slopes[hi]), intercept, n, confidence)


def forecast_drift(
    seconds: npt.ArrayLike,
    values: npt.ArrayLike,
    limits: Mapping[str, float | None],
    window: int = DRIFT_WINDOW,
    confidence: float = DRIFT_CONFIDENCE,
) -> DriftForecast | None:
    """Forecast when the current drift reaches each limit ahead of it.

    Parameters
    ----------
    seconds : time of each point in seconds (any origin), oldest first.
    values : the measured values, in the characteristic's unit.
    limits : limit name ("usl", "lsl", "ucl", "lcl") to its value (None: not set).
    window : fit the last `window` points; None is returned with fewer.

    The slope's direction picks the limits ahead: USL and UCL upwards, LSL and LCL
    downwards. Times are in points (parts) and seconds from the last point.
    """
    t = np.asarray(seconds, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    if t.shape != y.shape or y.ndim != 1:
        raise ValueError("seconds and values must be 1-D and of the same length")
    if window < 3:
        raise ValueError(f"window must be at least 3 points, not {window}")
    if y.size < window:
        return None
    t, y = t[-window:] - t[-window], y[-window:]
    idx = np.arange(window, dtype=np.float64)
    per_point = theil_sen(idx, y, confidence)
    per_second = theil_sen(t, y, confidence)
    assert per_point is not None  # distinct indices always give slopes
    direction: Direction = "up" if per_point.slope >= 0.0 else "down"
    ahead = ("usl", "ucl") if direction == "up" else ("lsl", "lcl")
    etas = [
        _eta(name, float(value), per_point, idx, per_second, t)
        for name in ahead
        if (value := limits.get(name)) is not None
    ]
    etas.sort(key=lambda e: e.parts)
    return DriftForecast(
        n=window,
        confidence=confidence,
        direction=direction,
        slope_per_point=per_point.slope,
        slope_per_point_interval=(per_point.low, per_point.high),
        slope_per_second=per_second.slope if per_second else None,
        slope_per_second_interval=(per_second.low, per_second.high) if per_second else None,
        level=per_point.level_at(float(idx[-1])),
        centroid_level=per_point.level_at(float(idx.mean())),
        significant=per_point.significant,
        limits=tuple(etas),
    )


def _eta(
    name: str,
    limit: float,
    per_point: SlopeEstimate,
    idx: FloatArray,
    per_second: SlopeEstimate | None,
    t: FloatArray,
) -> LimitEta:
    sign = 1.0 if per_point.slope >= 0.0 else -1.0
    parts, parts_iv = _time_to(limit, sign, per_point, idx)
    if per_second is None:
        return LimitEta(name, limit, parts, parts_iv, None, None)
    secs, secs_iv = _time_to(limit, sign, per_second, t)
    return LimitEta(name, limit, parts, parts_iv, secs, secs_iv)


def _time_to(
    limit: float, sign: float, fit: SlopeEstimate, x: FloatArray
) -> tuple[float, tuple[float, float]]:
    """Central time and interval, in x units from the last point (module docstring)."""
    x_c, x_last = float(x.mean()), float(x[-1])
    if sign * (limit - fit.level_at(x_last)) <= 0.0:
        return 0.0, (0.0, 0.0)  # the fitted level has passed the limit already
    gap = sign * (limit - fit.level_at(x_c))

    def at(rate: float) -> float:
        rate *= sign
        return math.inf if rate <= 0.0 else max(gap / rate - (x_last - x_c), 0.0)

    fast, slow = (fit.high, fit.low) if sign > 0 else (fit.low, fit.high)
    return at(fit.slope), (at(fast), at(slow))


def _sorted_median(s: FloatArray) -> float:
    # np.median costs more than the whole of this on a few hundred values
    half = s.size // 2
    return float(s[half] if s.size % 2 else 0.5 * (s[half - 1] + s[half]))


@functools.lru_cache(maxsize=8)
def _pairs(n: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    i, j = np.triu_indices(n, 1)
    return i, j


def _ties(a: FloatArray) -> float:
    """Σ t (t - 1)(2t + 5) over the groups of t equal values (0 without ties)."""
    s = np.sort(a)
    same = s[1:] == s[:-1]
    if not same.any():
        return 0.0
    _, counts = np.unique(s, return_counts=True)
    t = counts[counts > 1].astype(np.float64)
    return float(np.sum(t * (t - 1.0) * (2.0 * t + 5.0)))


def _finite(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


def _pair(p: tuple[float, float] | None) -> list[JsonValue] | None:
    return None if p is None else [_finite(p[0]), _finite(p[1])]


@dataclass(frozen=True)
class DriftJudgement:
    """Whether a forecast raises (or keeps) a drift warning, and its wording."""

    raise_now: bool
    gone: bool  # the clearing condition (see judge_drift)
    severity: Literal["warning", "critical"]
    message: str
    details: dict[str, JsonValue]


CLEAR_HORIZON_FACTOR = 1.5
"""The clearing horizon, as a multiple of the raising one (the hysteresis band)."""
CRITICAL_HORIZON_FACTOR = 0.25
"""Within this share of the horizon (or past the limit) the warning is critical."""


def judge_drift(
    forecast: DriftForecast,
    horizon_points: float | None,
    horizon_seconds: float | None,
    center: float | None = None,
    sigma: float | None = None,
    min_shift_sigma: float = 0.75,
    unit: str | None = None,
) -> DriftJudgement:
    """Raise when the slope is significant, the limit ahead (the specification limit, else
    the control limit) is due within a horizon (points or seconds, either), and, when the
    centre line and sigma are known, the window's level has left the centre by at least
    ``min_shift_sigma`` sigma in the drift's direction: the last condition keeps the
    noise of a 30-point slope on an in-control process from raising warnings. It clears
    when the central estimate is beyond 1.5 × every horizon, significant or not (the
    significance of a slow drift flickers from one window to the next), or when the
    level is back within half of ``min_shift_sigma`` of the centre line."""
    spec = "usl" if forecast.direction == "up" else "lsl"
    eta = forecast.eta(spec) or (forecast.limits[0] if forecast.limits else None)
    sign = 1.0 if forecast.direction == "up" else -1.0
    shift = (
        sign * (forecast.centroid_level - center) / sigma
        if center is not None and sigma is not None
        else None
    )

    def due(scale: float) -> bool:
        if eta is None:
            return False
        by_points = horizon_points is not None and eta.parts < scale * horizon_points
        by_time = (
            horizon_seconds is not None
            and eta.seconds is not None
            and (eta.seconds < scale * horizon_seconds)
        )
        return by_points or by_time

    shifted = shift is None or shift >= min_shift_sigma
    back = shift is not None and shift < min_shift_sigma / 2
    details = forecast.details()
    details["limit"] = eta.name if eta else None
    details["shift_sigma"] = shift
    return DriftJudgement(
        raise_now=forecast.significant and due(1.0) and shifted,
        gone=back or not due(CLEAR_HORIZON_FACTOR),
        severity="critical" if due(CRITICAL_HORIZON_FACTOR) else "warning",
        message=drift_message(forecast, eta, unit) if eta else "",
        details=details,
    )


def drift_message(forecast: DriftForecast, eta: LimitEta, unit: str | None) -> str:
    """'Drift of +0.0021 mm per part: at this rate USL 25.05 mm is reached in ~40 min
    (~120 parts; 95 % interval 30 min–1.0 h); UCL 25.03 mm in ~15 min'."""
    rate = f"{forecast.slope_per_point:+.3g}{' ' + unit if unit else ''} per part"
    limit = f"{eta.name.upper()} {format_value(eta.value, unit)}"
    if eta.parts == 0.0:
        level = format_value(forecast.level, unit)
        text = f"Drift of {rate}: the fitted level {level} has passed {limit} already"
    else:
        parts, level = f"~{eta.parts:.0f} parts", f"{percent(forecast.confidence)} interval"
        if eta.seconds is not None and eta.seconds_interval is not None:
            span = _span(*eta.seconds_interval, in_seconds=True)
            when = f"~{format_duration(eta.seconds)} ({parts}; {level} {span})"
        else:
            when = f"{parts} ({level} {_span(*eta.parts_interval, in_seconds=False)})"
        text = f"Drift of {rate}: at this rate {limit} is reached in {when}"
    for other in forecast.limits:
        if other.name != eta.name:
            soon = "passed" if other.parts == 0.0 else f"in ~{_when(other)}"
            text += f"; {other.name.upper()} {format_value(other.value, unit)} {soon}"
    return text


def _when(eta: LimitEta) -> str:
    return format_duration(eta.seconds) if eta.seconds is not None else f"{eta.parts:.0f} parts"


def _span(low: float, high: float, in_seconds: bool) -> str:
    def one(x: float) -> str:
        return format_duration(x) if in_seconds else f"{x:.0f} parts"

    return f"at least {one(low)}" if math.isinf(high) else f"{one(low)}–{one(high)}"
