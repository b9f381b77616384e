"""Control-chart constants for subgroups of n = 2..25 (the AIAG SPC manual table).

Conventions (AIAG SPC manual, 2nd ed., appendix E; Montgomery, *Introduction to SQC*,
appendix VI), all for 3-sigma limits and normally distributed data:

- d2(n) = E[R]/sigma, the mean relative range of n independent N(0, 1) draws:
  d2(n) = integral over the real line of 1 - (1 - Phi(x))^n - Phi(x)^n dx.
- d3(n) = sd[R]/sigma, from the second moment of the range, a double integral:
  E[R^2] = 2 * integral over x < y of 1 - (1 - Phi(x))^n - Phi(y)^n + (Phi(y) - Phi(x))^n,
  d3 = sqrt(E[R^2] - d2^2).
- c4(n) = E[s]/sigma = sqrt(2/(n - 1)) * Gamma(n/2) / Gamma((n - 1)/2).
- A2 = 3/(d2 sqrt(n)), A3 = 3/(c4 sqrt(n)), E2 = 3/d2,
  D3 = max(0, 1 - 3 d3/d2), D4 = 1 + 3 d3/d2,
  B3 = max(0, 1 - 3 sqrt(1 - c4^2)/c4), B4 = 1 + 3 sqrt(1 - c4^2)/c4.

The values are exact, not the rounded table entries. d2 and d3 were integrated once with
scipy.integrate (quad and dblquad, tolerances ~1e-14) and are hard-coded below, so importing
this module computes nothing heavy; ``tests/spc/test_constants.py`` integrates them again and
holds every constant to the printed AIAG table. For n = 2 the closed forms are used: the range
of two draws is |Z1 - Z2| with Z1 - Z2 ~ N(0, 2), so d2 = 2/sqrt(pi), d3 = sqrt(2 - 4/pi);
for n = 3, d2 = 3/sqrt(pi).
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from functools import cache

D2_N2 = 2.0 / math.sqrt(math.pi)
"""d2 for subgroups of 2 (moving range of two consecutive individuals)."""

D3_N2 = math.sqrt(2.0 - 4.0 / math.pi)
"""d3 for subgroups of 2: standard deviation of the relative range."""

D4_N2 = 1.0 + 3.0 * D3_N2 / D2_N2
"""D4 for subgroups of 2: UCL of the moving-range chart is D4 * MR-bar."""

D3_LOWER_N2 = 0.0
"""D3 for subgroups of 2: max(0, 1 - 3 d3/d2) is negative, so the MR chart has no LCL."""

N_MIN = 2
"""Smallest subgroup size of the constants table."""

N_MAX = 25
"""Largest subgroup size of the constants table (as in the AIAG manual)."""

# d2(n) and d3(n) for n = N_MIN..N_MAX, integrated as described in the module docstring.
_D2 = (
    D2_N2,
    3.0 / math.sqrt(math.pi),
    2.058750746007928,
    2.325928947281039,
    2.534412721222942,
    2.704356751213809,
    2.847200612090554,
    2.9700263244184733,
    3.0775054616703454,
    3.1728727038159996,
    3.2584552797438264,
    3.3359803540982553,
    3.406763108199953,
    3.471826889882075,
    3.5319827861095754,
    3.5878839617653817,
    3.6400637579374435,
    3.6889630232076493,
    3.73495011959664,
    3.77833582984262,
    3.8193846433628322,
    3.8583234232850057,
    3.8953481484513555,
    3.9306292195071113,
)
_D3 = (
    D3_N2,
    0.8883680040452041,
    0.8798082028249837,
    0.8640819410995036,
    0.848039686117497,
    0.8332053356222918,
    0.8198314897919474,
    0.807834274553324,
    0.7970506735194118,
    0.7873146205503282,
    0.7784783412033806,
    0.7704162020637518,
    0.7630230956247868,
    0.7562114297279416,
    0.7499080894099178,
    0.7440517839607301,
    0.7385908533781799,
    0.7334814955188661,
    0.7286863457073081,
    0.7241733407174982,
    0.7199148084342225,
    0.7158867354918166,
    0.7120681751479365,
    0.7084407658886588,
)


@dataclass(frozen=True)
class ChartConstants:
    """The named control-chart constants for one subgroup size (textbook names and case).

    Attributes
    ----------
    n : subgroup size, 2..25.
    d2, d3 : mean and standard deviation of the range of n N(0, 1) draws.
    c4 : mean of the sample standard deviation (n - 1 divisor) of n N(0, 1) draws.
    A2, A3 : X-bar limits are x-double-bar +/- A2 R-bar or +/- A3 s-bar.
    D3, D4 : R chart LCL = D3 R-bar, UCL = D4 R-bar.
    B3, B4 : S chart LCL = B3 s-bar, UCL = B4 s-bar.
    E2 : individuals limits from the mean range of span n: x-bar +/- E2 R-bar.
    """

    n: int
    d2: float
    d3: float
    c4: float
    A2: float
    A3: float
    D3: float
    D4: float
    B3: float
    B4: float
    E2: float


def c4(n: int) -> float:
    """c4(n) = sqrt(2/(n - 1)) Gamma(n/2) / Gamma((n - 1)/2), the bias of s; any n >= 2.

    Computed with log-gamma so that large n does not overflow.
    """
    size = _subgroup_size(n, upper=None)
    return math.sqrt(2.0 / (size - 1)) * math.exp(
        math.lgamma(size / 2.0) - math.lgamma((size - 1) / 2.0)
    )


@cache
def chart_constants(n: int) -> ChartConstants:
    """Control-chart constants for subgroups of ``n`` (2..25), exact rather than rounded.

    Parameters
    ----------
    n : subgroup size, an integer from 2 to 25.

    Returns
    -------
    ChartConstants
        d2, d3 exact (integrated, see the module docstring), c4 from the gamma function,
        and A2, A3, D3, D4, B3, B4, E2 derived from them as in the AIAG SPC manual
        (2nd ed., appendix E). They match the printed table to its precision except where
        the table itself was built from rounded d2/d3 (documented in the tests).

    Raises
    ------
    TypeError
        If ``n`` is not an integer.
    ValueError
        If ``n`` is outside 2..25.
    """
    size = _subgroup_size(n, upper=N_MAX)
    d2, d3 = _D2[size - N_MIN], _D3[size - N_MIN]
    c = c4(size)
    root_n = math.sqrt(size)
    r_spread = 3.0 * d3 / d2
    s_spread = 3.0 * math.sqrt(1.0 - c * c) / c
    return ChartConstants(
        n=size,
        d2=d2,
        d3=d3,
        c4=c,
        A2=3.0 / (d2 * root_n),
        A3=3.0 / (c * root_n),
        D3=max(0.0, 1.0 - r_spread),
        D4=1.0 + r_spread,
        B3=max(0.0, 1.0 - s_spread),
        B4=1.0 + s_spread,
        E2=3.0 / d2,
    )


def _subgroup_size(n: int, upper: int | None) -> int:
    if isinstance(n, bool):
        raise TypeError(f"subgroup size n must be an integer, got {n!r}")
    try:
        size = operator.index(n)
    except TypeError:
        raise TypeError(f"subgroup size n must be an integer, got {n!r}") from None
    if upper is None and size < N_MIN:
        raise ValueError(f"subgroup size n must be at least {N_MIN}, got {size}")
    if upper is not None and not N_MIN <= size <= upper:
        raise ValueError(
            f"subgroup size n must be between {N_MIN} and {upper} (the AIAG constants table), "
            f"got {size}"
        )
    return size
