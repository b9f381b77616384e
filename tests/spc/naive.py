"""Slow, obviously correct reference versions of the spc maths.

Plain Python loops over plain floats, written straight from the textbook formulas
(Montgomery, *Introduction to Statistical Quality Control*, 6th ed., sec. 6.4 and ch. 8;
AIAG SPC manual, 2nd ed.). Nothing here imports ``spc``: the constants are derived again
from their definitions so that a wrong constant in ``spc.constants`` cannot hide.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

# Range of two independent N(0, 1) draws: |Z1 - Z2| with Z1 - Z2 ~ N(0, 2), a half-normal
# variable with scale sqrt(2), so E[R] = sqrt(2) * sqrt(2/pi) and Var[R] = 2 - E[R]^2.
D2 = math.sqrt(2.0) * math.sqrt(2.0 / math.pi)
D3 = math.sqrt(2.0 - D2 * D2)
D4 = 1.0 + 3.0 * D3 / D2


@dataclass(frozen=True)
class ImrLimits:
    center: float
    mr_bar: float
    sigma: float
    ucl: float
    lcl: float
    mr_ucl: float


@dataclass(frozen=True)
class Indices:
    n: int
    mean: float
    sigma_within: float
    sigma_overall: float
    cp: float | None
    cpk: float | None
    cpu: float | None
    cpl: float | None
    pp: float | None
    ppk: float | None
    ppu: float | None
    ppl: float | None


def mean(values: Iterable[float]) -> float:
    total = 0.0
    count = 0
    for x in values:
        total += x
        count += 1
    return total / count


def moving_ranges(values: list[float]) -> list[float]:
    ranges = []
    for i in range(1, len(values)):
        ranges.append(abs(values[i] - values[i - 1]))
    return ranges


def sample_sd(values: list[float]) -> float:
    """Two-pass sample standard deviation with n - 1."""
    centre = mean(values)
    squares = 0.0
    for x in values:
        squares += (x - centre) * (x - centre)
    return math.sqrt(squares / (len(values) - 1))


def imr_limits(values: list[float]) -> ImrLimits:
    """Individuals and moving-range chart limits: sigma-hat = MR-bar / d2."""
    center = mean(values)
    mr_bar = mean(moving_ranges(values))
    sigma = mr_bar / D2
    return ImrLimits(
        center=center,
        mr_bar=mr_bar,
        sigma=sigma,
        ucl=center + 3.0 * sigma,
        lcl=center - 3.0 * sigma,
        mr_ucl=D4 * mr_bar,
    )


def rule1(values: list[float], ucl: float, lcl: float) -> list[int]:
    """Indices of points strictly beyond a limit (a point on the limit is in control)."""
    beyond = []
    for i, x in enumerate(values):
        if x > ucl or x < lcl:
            beyond.append(i)
    return beyond


def mr_rule1(previous: float, values: list[float], mr_ucl: float) -> list[int]:
    """Indices of ``values`` whose moving range to the point before exceeds the MR UCL."""
    beyond = []
    last = previous
    for i, x in enumerate(values):
        if abs(x - last) > mr_ucl:
            beyond.append(i)
        last = x
    return beyond


def _upper(centre: float, sigma: float, usl: float | None) -> float | None:
    return None if usl is None else (usl - centre) / (3.0 * sigma)


def _lower(centre: float, sigma: float, lsl: float | None) -> float | None:
    return None if lsl is None else (centre - lsl) / (3.0 * sigma)


def _smallest(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if a < b else b


def _spread(sigma: float, lsl: float | None, usl: float | None) -> float | None:
    if lsl is None or usl is None:
        return None
    return (usl - lsl) / (6.0 * sigma)


def capability(values: list[float], lsl: float | None, usl: float | None) -> Indices:
    """Cp/Cpk with sigma_within = MR-bar / d2, Pp/Ppk with the n - 1 sample sd."""
    centre = mean(values)
    s_within = mean(moving_ranges(values)) / D2
    s_overall = sample_sd(values)
    cpu, cpl = _upper(centre, s_within, usl), _lower(centre, s_within, lsl)
    ppu, ppl = _upper(centre, s_overall, usl), _lower(centre, s_overall, lsl)
    return Indices(
        n=len(values),
        mean=centre,
        sigma_within=s_within,
        sigma_overall=s_overall,
        cp=_spread(s_within, lsl, usl),
        cpk=_smallest(cpu, cpl),
        cpu=cpu,
        cpl=cpl,
        pp=_spread(s_overall, lsl, usl),
        ppk=_smallest(ppu, ppl),
        ppu=ppu,
        ppl=ppl,
    )
