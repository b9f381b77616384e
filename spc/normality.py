"""Normality testing and the ISO 22514-2 percentile method for non-normal data."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from scipy import stats

FloatArray = npt.NDArray[np.float64]

NON_NORMAL_P: Final = 0.05
"""Anderson-Darling p-value below which the data count as clearly non-normal."""

AD_MIN_N: Final = 8
"""Fewest values the normality test is run on (R's ``nortest::ad.test`` refuses fewer)."""

PERCENTILES: Final = (0.00135, 0.5, 0.99865)
"""X0.135, X50 and X99.865 of ISO 22514-2, as fractions."""


@dataclass(frozen=True)
class PercentileCapability:
    """ISO 22514-2 percentile (quantile) indices from one fitted distribution.

    ``method`` is ``"percentile:lognormal"``, ``"percentile:weibull"`` or
    ``"percentile:gamma"``; ``params`` are scipy's ``(shape, loc, scale)`` with ``loc``
    fixed at 0; ``ad_statistic`` is the Anderson-Darling A² of the fit (no small-sample
    correction), the criterion the fit was chosen by. ``x_low``, ``x_median`` and
    ``x_high`` are X0.135, X50 and X99.865. One distribution is fitted to all the data, so
    these indices are of the overall (performance) kind. ``ppm_expected`` comes from the
    fitted distribution's tails.
    """

    method: str
    params: tuple[float, ...]
    ad_statistic: float
    x_low: float
    x_median: float
    x_high: float
    cp: float | None
    cpk: float | None
    cpu: float | None
    cpl: float | None
    ppm_expected: float


def anderson_darling_normal(data: npt.ArrayLike) -> tuple[float, float]:
    """Anderson-Darling normality test with estimated mean and sd: ``(A*², p)``.

    A² = -N - (1/N) sum (2i - 1)[ln F(z_i) + ln(1 - F(z_{N+1-i}))] over the sorted
    standardised values; A*² = A²(1 + 0.75/N + 2.25/N²); p from D'Agostino and Stephens
    (1986), *Goodness-of-Fit Techniques*, table 4.9 (as R's ``nortest::ad.test``):

    - A*² < 0.2: p = 1 - exp(-13.436 + 101.14 A*² - 223.73 A*⁴)
    - A*² < 0.34: p = 1 - exp(-8.318 + 42.796 A*² - 59.938 A*⁴)
    - A*² < 0.6: p = exp(0.9177 - 4.279 A*² - 1.38 A*⁴)
    - A*² < 10: p = exp(1.2937 - 5.709 A*² + 0.0186 A*⁴)
    - beyond: p = 0.0 (below 4e-24; the last formula turns upward past A*² = 153).
    """
    x = np.asarray(data, dtype=np.float64).ravel()
    if x.size < AD_MIN_N or not np.all(np.isfinite(x)):
        raise ValueError(f"the normality test needs at least {AD_MIN_N} finite values")
    sd = float(x.std(ddof=1))
    if not sd > 0.0:
        raise ValueError("the data have no variation; normality cannot be tested")
    a2 = _ad_statistic(np.sort((x - x.mean()) / sd), stats.norm)
    n = x.size
    a_star = a2 * (1.0 + 0.75 / n + 2.25 / n**2)
    return a_star, _ad_p_value(a_star)


def percentile_capability(
    data: npt.ArrayLike, lsl: float | None, usl: float | None
) -> PercentileCapability | None:
    """ISO 22514-2 percentile indices from the best-fitting lognormal, Weibull or gamma.

    Each family is fitted by maximum likelihood with location fixed at 0 (scipy
    ``fit(..., floc=0)``); the fit with the smallest Anderson-Darling A² wins (ties go to
    the earlier of lognormal, Weibull, gamma). ``None`` when any value is <= 0 or no fit
    succeeds or the fit's percentiles or tails are not finite. See
    :class:`PercentileCapability`.
    """
    x = np.asarray(data, dtype=np.float64).ravel()
    best = _best_fit(x)
    if best is None:
        return None
    name, params, ad = best
    frozen = _FAMILIES[name](*params)
    # an extreme fit overflows in scipy's tails: contain it and refuse non-finite results
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        x_low, x_median, x_high = (float(v) for v in frozen.ppf(PERCENTILES))
        tail = (float(frozen.sf(usl)) if usl is not None else 0.0) + (
            float(frozen.cdf(lsl)) if lsl is not None else 0.0
        )
    if not all(math.isfinite(v) for v in (x_low, x_median, x_high, tail)):
        return None
    if not x_low < x_median < x_high:
        return None
    cpu = (usl - x_median) / (x_high - x_median) if usl is not None else None
    cpl = (x_median - lsl) / (x_median - x_low) if lsl is not None else None
    cp = (usl - lsl) / (x_high - x_low) if usl is not None and lsl is not None else None
    return PercentileCapability(
        method=f"percentile:{name}", params=params, ad_statistic=ad,
        x_low=x_low, x_median=x_median, x_high=x_high,
        cp=cp, cpk=worst_of(cpu, cpl), cpu=cpu, cpl=cpl, ppm_expected=tail * 1e6,
    )  # fmt: skip


_FAMILIES: Final[dict[str, Any]] = {
    "lognormal": stats.lognorm,
    "weibull": stats.weibull_min,
    "gamma": stats.gamma,
}


def normality(x: FloatArray) -> tuple[float | None, float | None]:
    """(A*², p) of the Anderson-Darling test, or (None, None) below ``AD_MIN_N`` values."""
    if x.size < AD_MIN_N:
        return None, None
    return anderson_darling_normal(x)


def _ad_statistic(sorted_x: FloatArray, dist: Any) -> float:
    """A² of sorted values against a (frozen) distribution, on log scale for the tails."""
    n = sorted_x.size
    weights = 2.0 * np.arange(1, n + 1) - 1.0
    # an extreme fit (e.g. a Weibull shape in the thousands on tightly clustered data)
    # overflows in scipy's tails: the statistic is then inf and the fit is skipped
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        logs = dist.logcdf(sorted_x) + dist.logsf(sorted_x[::-1])
    return float(-n - np.mean(weights * logs))


def _ad_p_value(a: float) -> float:
    if a < 0.2:
        p = 1.0 - math.exp(-13.436 + 101.14 * a - 223.73 * a**2)
    elif a < 0.34:
        p = 1.0 - math.exp(-8.318 + 42.796 * a - 59.938 * a**2)
    elif a < 0.6:
        p = math.exp(0.9177 - 4.279 * a - 1.38 * a**2)
    elif a < 10.0:
        p = math.exp(1.2937 - 5.709 * a + 0.0186 * a**2)
    else:
        p = 0.0
    return min(max(p, 0.0), 1.0)


def _best_fit(x: FloatArray) -> tuple[str, tuple[float, ...], float] | None:
    if x.size < 2 or np.any(x <= 0.0):
        return None
    sorted_x = np.sort(x)
    best: tuple[str, tuple[float, ...], float] | None = None
    for name, family in _FAMILIES.items():
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                params = tuple(float(v) for v in family.fit(sorted_x, floc=0.0))
        except (ValueError, RuntimeError, FloatingPointError, OverflowError):
            continue
        ad = _ad_statistic(sorted_x, family(*params))
        if math.isfinite(ad) and (best is None or ad < best[2]):
            best = (name, params, ad)
    return best


def worst_of(upper: float | None, lower: float | None) -> float | None:
    """The smaller of the one-sided indices that exist (Cpk from Cpu/Cpl)."""
    present = [v for v in (upper, lower) if v is not None]
    return min(present) if present else None
