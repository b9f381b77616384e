"""Slow, obviously correct reference versions of the control-chart maths.

Plain Python loops over plain floats, straight from the textbook formulas (Montgomery,
*Introduction to Statistical Quality Control*, ch. 6-7; AIAG SPC manual, 2nd ed.; Laney 2002,
*Quality Engineering* 14(4)). Nothing here imports ``spc``: d2, d3 and c4 are derived again,
by a different route than the one that produced the table in ``spc.constants`` (the density
of the range instead of its distribution function), so a wrong constant cannot hide.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np
from scipy import integrate, special

_SQRT_2PI = math.sqrt(2.0 * math.pi)
_X = np.linspace(-10.0, 10.0, 2001)  # the inner integrand decays like exp(-x^2)
_PDF = np.exp(-_X * _X / 2.0) / _SQRT_2PI
_CDF = special.ndtr(_X)


def _range_density(r: float, n: int) -> float:
    """f_R(r) = n(n-1) * integral of phi(x) phi(x+r) (Phi(x+r) - Phi(x))^(n-2) dx."""
    upper = _X + r
    inner = _PDF * np.exp(-upper * upper / 2.0) / _SQRT_2PI
    inner = inner * (special.ndtr(upper) - _CDF) ** (n - 2)
    # trapezoid rule on a smooth integrand that vanishes at both ends: spectrally accurate
    return n * (n - 1) * float(inner.sum()) * float(_X[1] - _X[0])


@cache
def range_moments(n: int) -> tuple[float, float]:
    """(d2, d3): mean and standard deviation of the range of n N(0, 1) draws."""
    first = integrate.quad(lambda r: r * _range_density(r, n), 0.0, 14.0, epsabs=1e-13)[0]
    second = integrate.quad(lambda r: r * r * _range_density(r, n), 0.0, 14.0, epsabs=1e-13)[0]
    return first, math.sqrt(second - first * first)


def d2_by_definition(n: int) -> float:
    """d2 = integral over the real line of 1 - (1 - Phi(x))^n - Phi(x)^n."""
    value, _ = integrate.quad(
        lambda x: 1.0 - special.ndtr(-x) ** n - special.ndtr(x) ** n,
        -math.inf,
        math.inf,
        epsabs=1e-13,
    )
    return float(value)


def c4(n: int) -> float:
    return math.sqrt(2.0 / (n - 1)) * math.gamma(n / 2.0) / math.gamma((n - 1) / 2.0)


@dataclass(frozen=True)
class Limits:
    center: float
    ucl: list[float]
    lcl: list[float]
    sigma: list[float]
    spread_center: float = math.nan  # R-bar or s-bar of the dispersion chart
    spread_ucl: float = math.nan
    spread_lcl: float = math.nan


def mean(values: list[float]) -> float:
    total = 0.0
    for x in values:
        total += x
    return total / len(values)


def sample_sd(values: list[float]) -> float:
    centre = mean(values)
    squares = 0.0
    for x in values:
        squares += (x - centre) * (x - centre)
    return math.sqrt(squares / (len(values) - 1))


def xbar_r(groups: list[list[float]]) -> Limits:
    n = len(groups[0])
    d2, d3 = range_moments(n)
    centre = mean([mean(g) for g in groups])
    r_bar = mean([max(g) - min(g) for g in groups])
    sigma = r_bar / d2
    half = 3.0 * sigma / math.sqrt(n)
    return Limits(
        center=centre,
        ucl=[centre + half],
        lcl=[centre - half],
        sigma=[sigma],
        spread_center=r_bar,
        spread_ucl=r_bar + 3.0 * d3 * sigma,
        spread_lcl=max(0.0, r_bar - 3.0 * d3 * sigma),
    )


def xbar_s(groups: list[list[float]]) -> Limits:
    n = len(groups[0])
    k = c4(n)
    centre = mean([mean(g) for g in groups])
    s_bar = mean([sample_sd(g) for g in groups])
    sigma = s_bar / k
    half = 3.0 * sigma / math.sqrt(n)
    s_sigma = sigma * math.sqrt(1.0 - k * k)
    return Limits(
        center=centre,
        ucl=[centre + half],
        lcl=[centre - half],
        sigma=[sigma],
        spread_center=s_bar,
        spread_ucl=s_bar + 3.0 * s_sigma,
        spread_lcl=max(0.0, s_bar - 3.0 * s_sigma),
    )


def _clipped(centre: float, sigmas: list[float], top: float | None) -> Limits:
    ucl, lcl = [], []
    for s in sigmas:
        high = centre + 3.0 * s
        ucl.append(high if top is None or high < top else top)
        low = centre - 3.0 * s
        lcl.append(low if low > 0.0 else 0.0)
    return Limits(center=centre, ucl=ucl, lcl=lcl, sigma=sigmas)


def p_chart(counts: list[float], sizes: list[float]) -> Limits:
    p_bar = sum(counts) / sum(sizes)
    return _clipped(p_bar, [math.sqrt(p_bar * (1.0 - p_bar) / n) for n in sizes], 1.0)


def np_chart(counts: list[float], n: float) -> Limits:
    p_bar = sum(counts) / (n * len(counts))
    return _clipped(n * p_bar, [math.sqrt(n * p_bar * (1.0 - p_bar))], n)


def c_chart(counts: list[float]) -> Limits:
    c_bar = mean(counts)
    return _clipped(c_bar, [math.sqrt(c_bar)], None)


def u_chart(counts: list[float], sizes: list[float]) -> Limits:
    u_bar = sum(counts) / sum(sizes)
    return _clipped(u_bar, [math.sqrt(u_bar / n) for n in sizes], None)


def laney(counts: list[float], sizes: list[float], binomial: bool) -> tuple[Limits, float]:
    """Laney p' (binomial) or u' chart and its sigma_z, with the exact d2 of span 2."""
    plain = p_chart(counts, sizes) if binomial else u_chart(counts, sizes)
    z = []
    for c, n, s in zip(counts, sizes, plain.sigma, strict=True):
        z.append((c / n - plain.center) / s)
    moving = [abs(z[i] - z[i - 1]) for i in range(1, len(z))]
    sigma_z = mean(moving) / range_moments(2)[0]
    limits = _clipped(plain.center, [s * sigma_z for s in plain.sigma], 1.0 if binomial else None)
    return limits, sigma_z
