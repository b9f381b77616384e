"""Capability over any period from additive sums (the grades' "Cpk over a chosen period").

Reading every raw value of a 30-day period for every characteristic each minute is too
dear, yet each estimator of the AIAG/Montgomery capability study is a ratio of sums:

- the mean and the overall (sample, n - 1) standard deviation follow from n, the sum
  and the sum of squares of the values;
- the within sigma is the mean of a dispersion statistic over a constant: MR-bar / d2(2)
  for individuals (AIAG SPC manual, I-MR chart), R-bar / d2(n) and s-bar / c4(n) for
  subgroups of n (AIAG; Montgomery, *Introduction to Statistical Quality Control*, 6.2–6.3).

So hourly ``CapabilitySums`` add up to the sums of any union of hours, and
``period_capability`` turns them into the same indices ``spc.capability`` computes from
the raw data (tested equal). Values are summed less a per-characteristic ``shift`` (the
spec midpoint, say) so that the sum of squares keeps its precision for values far from 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal

from spc.capability import capability_indices, cpk_interval, within_dof
from spc.constants import D2_N2, c4, chart_constants

Dispersion = Literal["mr", "rbar", "sbar"]
DISPERSIONS: Final = ("mr", "rbar", "sbar")


@dataclass(frozen=True)
class CapabilitySums:
    """Additive sums of one characteristic's values (one bucket, or several added).

    ``sum_d`` and ``sum_d2`` are the sums of (x - shift) and (x - shift)²;
    ``dispersion_sum`` the sum of the moving ranges (individuals), subgroup ranges or
    subgroup standard deviations, ``dispersion_n`` how many; ``out_of_spec`` counts the
    values beyond a specification limit in force when they were measured.
    """

    n: int
    shift: float
    sum_d: float
    sum_d2: float
    dispersion_sum: float = 0.0
    dispersion_n: int = 0
    out_of_spec: int = 0

    def shifted(self, shift: float) -> CapabilitySums:
        """The same sums about another shift (exact algebra: Σ(d + δ)² = Σd² + 2δΣd + nδ²)."""
        delta = self.shift - shift
        return CapabilitySums(
            self.n,
            shift,
            self.sum_d + self.n * delta,
            self.sum_d2 + 2.0 * delta * self.sum_d + self.n * delta * delta,
            self.dispersion_sum,
            self.dispersion_n,
            self.out_of_spec,
        )

    def __add__(self, other: CapabilitySums) -> CapabilitySums:
        """The sums of both buckets' values (``other`` re-expressed about this shift)."""
        if not isinstance(other, CapabilitySums):
            return NotImplemented
        o = other if other.shift == self.shift else other.shifted(self.shift)
        return CapabilitySums(
            self.n + o.n,
            self.shift,
            self.sum_d + o.sum_d,
            self.sum_d2 + o.sum_d2,
            self.dispersion_sum + o.dispersion_sum,
            self.dispersion_n + o.dispersion_n,
            self.out_of_spec + o.out_of_spec,
        )


@dataclass(frozen=True)
class PeriodCapability:
    """Capability of the values behind some sums; indices None where undefined.

    ``subgroups`` is the number of individuals (``mr``) or of complete subgroups;
    ``cpk_ci`` is the two-sided 95 % Bissell interval with the within sigma's degrees of
    freedom (as ``spc.capability``), None below two subgroups.
    """

    n: int
    subgroups: int
    mean: float
    sigma_within: float | None
    sigma_overall: float | None
    cp: float | None
    cpk: float | None
    pp: float | None
    ppk: float | None
    cpk_ci: tuple[float, float] | None
    out_of_spec: int


def period_capability(
    sums: CapabilitySums,
    lsl: float | None,
    usl: float | None,
    dispersion: Dispersion = "mr",
    subgroup_size: int = 1,
) -> PeriodCapability:
    """Cp, Cpk, Pp, Ppk and the Cpk interval of the values summed in ``sums``.

    ``dispersion`` says what ``dispersion_sum`` holds: ``"mr"`` moving ranges of span 2
    (sigma_within = MR-bar / 1.128), ``"rbar"`` ranges of subgroups of ``subgroup_size``
    (R-bar / d2), ``"sbar"`` their standard deviations (s-bar / c4). Units are those of
    the values. With no values, or a zero sigma, the indices are None.

    Raises
    ------
    ValueError
        for an unknown ``dispersion`` or a subgroup size that does not fit it.
    """
    if dispersion not in DISPERSIONS:
        raise ValueError(f"dispersion must be one of {DISPERSIONS}, got {dispersion!r}")
    if dispersion == "mr" and subgroup_size != 1:
        raise ValueError("dispersion 'mr' is for individuals: subgroup_size must be 1")
    if dispersion != "mr" and subgroup_size < 2:
        raise ValueError(f"dispersion {dispersion!r} needs subgroups of 2 or more")
    n = sums.n
    if n == 0:
        return PeriodCapability(0, 0, math.nan, None, None, None, None, None, None, None, 0)
    mean = sums.shift + sums.sum_d / n
    subgroups = n if dispersion == "mr" else sums.dispersion_n
    within = _sigma_within(sums, dispersion, subgroup_size)
    overall = _sigma_overall(sums)
    cp = cpk = pp = ppk = None
    if within:
        cp, cpk, _, _ = capability_indices(mean, within, lsl, usl)
    if overall:
        pp, ppk, _, _ = capability_indices(mean, overall, lsl, usl)
    interval = None
    if cpk is not None and subgroups >= 2:
        dof = within_dof(dispersion, subgroups, subgroup_size)
        interval = cpk_interval(cpk, n, dof) if dof > 0 else None
    return PeriodCapability(
        n, subgroups, mean, within, overall, cp, cpk, pp, ppk, interval, sums.out_of_spec
    )


def _sigma_within(sums: CapabilitySums, dispersion: Dispersion, size: int) -> float | None:
    if sums.dispersion_n == 0:
        return None
    average = sums.dispersion_sum / sums.dispersion_n
    if dispersion == "mr":
        return average / D2_N2
    if dispersion == "rbar":
        return average / chart_constants(size).d2
    return average / c4(size)


def _sigma_overall(sums: CapabilitySums) -> float | None:
    if sums.n < 2:
        return None
    squares = sums.sum_d2 - sums.sum_d * sums.sum_d / sums.n
    return math.sqrt(max(squares, 0.0) / (sums.n - 1))
