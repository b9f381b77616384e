"""EWMA and tabular CUSUM charts for individual values (the batch references).

Both take the in-control ``target`` and ``sigma`` as given (Phase II). The engine's
incremental kernel is held to these functions, so the arithmetic follows the textbook
recursions term by term.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from scipy import signal

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ArrayT = TypeVar("ArrayT", bound=np.ndarray[Any, Any])


@dataclass(frozen=True)
class EwmaResult:
    """EWMA statistic z_i with its exact limits; ``signals`` are the 0-based indices where
    z_i lies strictly outside (lcl_i, ucl_i). Arrays are read-only."""

    statistic: FloatArray
    ucl: FloatArray
    lcl: FloatArray
    signals: IntArray


@dataclass(frozen=True)
class CusumResult:
    """Tabular CUSUM sums C+ (``upper``) and C- (``lower``), in the data's unit;
    ``signals`` are the 0-based indices where C+ > H or C- > H. Arrays are read-only."""

    upper: FloatArray
    lower: FloatArray
    signals: IntArray


def ewma(values: npt.ArrayLike, lam: float, L: float, target: float, sigma: float) -> EwmaResult:
    """Exponentially weighted moving average chart (Montgomery, *Introduction to
    Statistical Quality Control*, 6th ed., sec. 9.2; NIST/SEMATECH e-Handbook 6.3.2.4).

    z_i = lam x_i + (1 - lam) z_{i-1} with z_0 = target, and the exact time-varying limits
    target +/- L sigma sqrt(lam/(2 - lam) (1 - (1 - lam)^(2i))), i = 1, 2, ... (not the
    asymptotic ones, which the limits approach as i grows). lam = 1 gives a Shewhart
    individuals chart with L-sigma limits.

    Parameters
    ----------
    values : 1-D finite individual values (or subgroup means, with sigma their sd).
    lam : weight, 0 < lam <= 1.   L : limit width in sigma, > 0.
    target : in-control mean (the centre line).   sigma : in-control sd, > 0.
    """
    x = _checked_values(values)
    _require(0.0 < lam <= 1.0, f"lam must satisfy 0 < lam <= 1 (typically 0.05..0.3), not {lam}")
    _require(0.0 < L < math.inf, f"L must be a positive finite number of sigmas, not {L}")
    _check_centre(target, sigma)
    # lfilter runs z_i = lam x_i + (1 - lam) z_{i-1} in C, term for term the recursion
    z = signal.lfilter([lam], [1.0, -(1.0 - lam)], x, zi=[(1.0 - lam) * target])[0]
    i = np.arange(1, x.size + 1)
    half = L * sigma * np.sqrt(lam / (2.0 - lam) * (1.0 - (1.0 - lam) ** (2 * i)))
    ucl, lcl = target + half, target - half
    signals = np.flatnonzero((z > ucl) | (z < lcl)).astype(np.int64)
    return EwmaResult(_frozen(z), _frozen(ucl), _frozen(lcl), _frozen(signals))


def cusum(values: npt.ArrayLike, k: float, h: float, target: float, sigma: float) -> CusumResult:
    """Tabular (two-sided, one-sided-sums) CUSUM (Montgomery, *Introduction to
    Statistical Quality Control*, 6th ed., sec. 9.1.2).

    With K = k sigma and H = h sigma:
    C+_i = max(0, x_i - (target + K) + C+_{i-1}), C-_i = max(0, (target - K) - x_i + C-_{i-1}),
    C+_0 = C-_0 = 0; a point signals when C+_i > H or C-_i > H (strictly). The sums are
    not reset after a signal: they keep accumulating, as in Montgomery's table 9.2, so a
    sustained shift signals on every following point. Restart with the values after the
    assignable cause is fixed.

    Parameters
    ----------
    values : 1-D finite individual values.
    k : reference value in sigma units, >= 0 (0.5 detects a 1-sigma shift).
    h : decision interval in sigma units, > 0 (4 or 5 are usual).
    target : in-control mean.   sigma : in-control sd, > 0.
    """
    x = _checked_values(values)
    _require(0.0 <= k < math.inf, f"k must be a finite number of sigmas >= 0, not {k}")
    _require(0.0 < h < math.inf, f"h must be a positive finite number of sigmas, not {h}")
    _check_centre(target, sigma)
    upper, lower = _tabular_sums(x.tolist(), target + k * sigma, target - k * sigma)
    limit = h * sigma
    signals = np.flatnonzero((upper > limit) | (lower > limit)).astype(np.int64)
    return CusumResult(_frozen(upper), _frozen(lower), _frozen(signals))


def _tabular_sums(x: list[float], high: float, low: float) -> tuple[FloatArray, FloatArray]:
    # a plain loop: the max(0, ...) restart makes the recursion sequential, and the engine
    # kernel is compared with these sums to the last bit
    upper, lower = np.empty(len(x)), np.empty(len(x))
    c_hi = c_lo = 0.0
    for i, xi in enumerate(x):
        c_hi = max(0.0, xi - high + c_hi)
        c_lo = max(0.0, low - xi + c_lo)
        upper[i], lower[i] = c_hi, c_lo
    return upper, lower


def _checked_values(values: npt.ArrayLike) -> FloatArray:
    try:
        x = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError("values must be a 1-D sequence of numbers") from exc
    _require(x.ndim == 1, f"values must be 1-D (one value per point), got {x.ndim}-D")
    _require(bool(np.all(np.isfinite(x))), "values contain NaN or infinite values; drop them")
    return x


def _check_centre(target: float, sigma: float) -> None:
    _require(math.isfinite(target), f"target must be a finite number, not {target}")
    _require(0.0 < sigma < math.inf, f"sigma must be a positive finite number, not {sigma}")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _frozen(a: ArrayT) -> ArrayT:
    a.setflags(write=False)
    return a
