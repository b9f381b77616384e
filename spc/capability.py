"""Process capability and performance indices (the batch reference).

Normal-theory indices always; a normality test alongside; and, when the data are clearly
non-normal, the ISO 22514-2 percentile indices from a fitted distribution as well.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import stats

from spc.constants import D2_N2, N_MAX, c4, chart_constants
from spc.normality import (
    NON_NORMAL_P,
    PercentileCapability,
    normality,
    percentile_capability,
    worst_of,
)

FloatArray = npt.NDArray[np.float64]

CONFIDENCE: Final = 0.95
_Z_TWO_SIDED: Final = float(stats.norm.ppf(1 - (1.0 - CONFIDENCE) / 2))  # 1.959964
"""Two-sided level of ``cp_ci`` and ``cpk_ci``."""

SIGMA_WITHIN_METHODS: Final = ("mr", "rbar", "sbar")
RBAR_MAX_SUBGROUP: Final = N_MAX
"""Largest subgroup for ``sigma_within="rbar"`` (the AIAG d2 table stops at 25)."""


@dataclass(frozen=True)
class Capability:
    """Capability (within sigma) and performance (overall sigma) of one sample.

    Indices are ``None`` where the specification does not define them (Cp, Pp and Cpm
    need both limits; Cpu/Ppu need USL; Cpl/Ppl need LSL; Cpm needs a target).
    ``cp_ci`` and ``cpk_ci`` are two-sided 95 % intervals ``(lower, upper)``.
    ``normality_p`` is the Anderson-Darling p-value and ``ad_statistic`` the corrected
    statistic A*² (both ``None`` below 8 values). ``method`` is ``"normal"``: every index
    here is normal theory; ``percentile`` holds the ISO 22514-2 indices when
    ``normality_p < 0.05`` and a distribution could be fitted, else ``None``.
    """

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
    cpm: float | None
    cp_ci: tuple[float, float] | None
    cpk_ci: tuple[float, float] | None
    ppm_expected: float
    normality_p: float | None
    method: str
    ad_statistic: float | None = None
    sigma_within_method: str = "mr"
    subgroup_size: int = 1
    percentile: PercentileCapability | None = None


def capability(
    data: npt.ArrayLike,
    lsl: float | None = None,
    usl: float | None = None,
    target: float | None = None,
    subgroup_size: int = 1,
    sigma_within: str = "mr",
) -> Capability:
    """Capability and performance indices of individuals or of equal-size subgroups.

    Parameters
    ----------
    data : individuals (1-D, ``subgroup_size=1``); consecutive subgroups (1-D, length a
        multiple of ``subgroup_size``); or 2-D, one subgroup per row.
    lsl, usl : specification limits; at least one. ``target`` only feeds Cpm.
    sigma_within : ``"mr"`` (individuals), ``"rbar"`` or ``"sbar"`` (subgroups).

    Conventions (Montgomery, *Introduction to Statistical Quality Control*, 6th ed.,
    ch. 6 and 8; AIAG SPC manual 2nd ed., ch. IV):

    - within sigma: ``"mr"`` MR-bar / d2(2), moving ranges of span 2 with exact
      d2 = 2/sqrt(pi); ``"rbar"`` R-bar / d2(n); ``"sbar"`` s-bar / c4(n), with the exact
      constants of :mod:`spc.constants` (not the rounded table entries);
    - overall sigma: sample standard deviation of all values with n - 1;
    - Cp = (USL - LSL) / 6 sigma_w, Cpu = (USL - mean) / 3 sigma_w,
      Cpl = (mean - LSL) / 3 sigma_w, Cpk = min of those defined (one-sided
      specifications give Cpk = Cpu or Cpl); P-indices likewise with the overall sigma;
    - Cpm = (USL - LSL) / (6 sqrt(s^2 + (mean - T)^2)), s the overall sigma
      (Chan, Cheng and Spiring 1988; Montgomery ch. 8);
    - Cp interval from chi-square quantiles, Cpk interval by Bissell's approximation
      Cpk +/- z sqrt(1/(9N) + Cpk^2 / (2 nu)) (Montgomery eqs. 8.19 and 8.21), N all values
      and nu the degrees of freedom of the within sigma: N - 1 for individuals,
      0.9 m (n - 1) for R-bar and f_n m (n - 1) for s-bar, m subgroups of n (Minitab,
      *Methods and formulas: potential capability*);
    - ppm_expected: normal tail areas beyond the limits with the within sigma, x 1e6;
    - normality: Anderson-Darling A² against a normal with estimated mean and sd,
      corrected A*² = A²(1 + 0.75/N + 2.25/N²), p-value by the D'Agostino and Stephens
      (1986, table 4.9) formulas; not run below 8 values;
    - when p < 0.05, ISO 22514-2 percentile indices Cp = (USL - LSL)/(X99.865 - X0.135),
      Cpu = (USL - X50)/(X99.865 - X50), Cpl = (X50 - LSL)/(X50 - X0.135) from the best of
      lognormal, Weibull and gamma fits (maximum likelihood, location 0, so only for
      positive data), best = smallest Anderson-Darling A² of the fit.
    """
    _check_limits(lsl, usl, target)
    groups = _as_subgroups(data, subgroup_size, sigma_within)
    x = groups.ravel()
    mean = float(x.mean())
    s_within = _sigma_within(groups, sigma_within)
    s_overall = float(x.std(ddof=1))
    if not (s_within > 0.0 and s_overall > 0.0):
        raise ValueError("the data have no variation; capability is undefined")
    cp, cpk, cpu, cpl = capability_indices(mean, s_within, lsl, usl)
    pp, ppk, ppu, ppl = capability_indices(mean, s_overall, lsl, usl)
    n, dof = int(x.size), within_dof(sigma_within, *groups.shape)
    ad, normality_p = normality(x)
    return Capability(
        n=n, mean=mean, sigma_within=s_within, sigma_overall=s_overall,
        cp=cp, cpk=cpk, cpu=cpu, cpl=cpl, pp=pp, ppk=ppk, ppu=ppu, ppl=ppl,
        cpm=_cpm(mean, s_overall, lsl, usl, target),
        cp_ci=cp_interval(cp, n, dof) if cp is not None else None,
        cpk_ci=cpk_interval(cpk, n, dof) if cpk is not None else None,
        ppm_expected=expected_ppm(mean, s_within, lsl, usl),
        normality_p=normality_p, method="normal", ad_statistic=ad,
        sigma_within_method=sigma_within, subgroup_size=int(groups.shape[1]),
        percentile=(
            percentile_capability(x, lsl, usl)
            if normality_p is not None and normality_p < NON_NORMAL_P
            else None
        ),
    )  # fmt: skip


def expected_ppm(mean: float, sigma: float, lsl: float | None, usl: float | None) -> float:
    """Parts per million beyond the specification for a normal(mean, sigma) process."""
    tail = 0.0
    if usl is not None:
        tail += float(stats.norm.sf((usl - mean) / sigma))
    if lsl is not None:
        tail += float(stats.norm.cdf((lsl - mean) / sigma))
    return tail * 1e6


# ------------------------------------------------------------------ input checks


def _check_limits(lsl: float | None, usl: float | None, target: float | None) -> None:
    for name, value in (("lsl", lsl), ("usl", usl), ("target", target)):
        if value is not None and not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number or None, not {value}")
    if lsl is None and usl is None:
        raise ValueError("give at least one specification limit (lsl or usl)")
    if lsl is not None and usl is not None and not lsl < usl:
        raise ValueError(f"lsl ({lsl}) must be below usl ({usl})")


def _as_subgroups(data: npt.ArrayLike, subgroup_size: int, method: str) -> FloatArray:
    """The data as a 2-D array, one subgroup per row (one column for individuals)."""
    if method not in SIGMA_WITHIN_METHODS:
        raise ValueError(f"sigma_within must be 'mr', 'rbar' or 'sbar', not {method!r}")
    if isinstance(subgroup_size, bool) or not isinstance(subgroup_size, int | np.integer):
        raise TypeError(f"subgroup_size must be an int, not {type(subgroup_size).__name__}")
    if subgroup_size < 1:
        raise ValueError(f"subgroup_size must be at least 1, not {subgroup_size}")
    try:
        x = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            "data must be numbers: 1-D, or 2-D with equal-size subgroups as rows"
        ) from exc
    groups = _reshape(x, int(subgroup_size))
    if groups.size < 2:
        raise ValueError("capability needs at least 2 values")
    if not np.all(np.isfinite(groups)):
        raise ValueError("data contains NaN or infinite values; drop them first")
    _check_method_fits(method, groups.shape[1])
    return groups


def _reshape(x: FloatArray, subgroup_size: int) -> FloatArray:
    if x.ndim == 2:
        if subgroup_size not in (1, x.shape[1]):
            raise ValueError(
                f"2-D data hold subgroups of {x.shape[1]} (one per row) but subgroup_size "
                f"is {subgroup_size}; leave subgroup_size at 1 or pass {x.shape[1]}"
            )
        return x
    if x.ndim != 1:
        raise ValueError("data must be 1-D, or 2-D with one subgroup per row")
    if x.size % subgroup_size:
        raise ValueError(
            f"{x.size} values do not split into subgroups of {subgroup_size}; "
            f"pass whole subgroups (a multiple of {subgroup_size} values)"
        )
    return x.reshape(-1, subgroup_size)


def _check_method_fits(method: str, size: int) -> None:
    if size == 1 and method != "mr":
        raise ValueError(
            f"sigma_within={method!r} needs subgroups: pass subgroup_size >= 2 or 2-D data "
            "(one subgroup per row); individuals use sigma_within='mr'"
        )
    if size > 1 and method == "mr":
        raise ValueError(
            f"sigma_within='mr' is for individuals (subgroup_size=1); subgroups of {size} "
            "use sigma_within='rbar' or 'sbar'"
        )
    if method == "rbar" and size > RBAR_MAX_SUBGROUP:
        raise ValueError(
            f"sigma_within='rbar' takes subgroups of 2..{RBAR_MAX_SUBGROUP}, not {size}; "
            "use sigma_within='sbar' for larger subgroups"
        )


# ------------------------------------------------------------------ sigma and indices


def _sigma_within(groups: FloatArray, method: str) -> float:
    size = groups.shape[1]
    if method == "mr":
        return float(np.abs(np.diff(groups[:, 0])).mean()) / D2_N2
    if method == "rbar":
        return float(np.ptp(groups, axis=1).mean()) / chart_constants(size).d2
    return float(groups.std(axis=1, ddof=1).mean()) / c4(size)


def _sbar_efficiency(n: int) -> float:
    """Minitab's f_n for the degrees of freedom of s-bar / c4: f_n m (n - 1)."""
    for upper, f in ((2, 0.88), (3, 0.92), (4, 0.94), (5, 0.95), (7, 0.96), (9, 0.97)):
        if n <= upper:
            return f
    return 0.98 if n <= 17 else 0.99 if n <= 64 else 1.0


def within_dof(method: str, subgroups: int, size: int) -> float:
    """Degrees of freedom of a within sigma (Minitab, *Methods and formulas*).

    ``"mr"``: N - 1 for N individuals; ``"rbar"``: 0.9 m (n - 1); ``"sbar"``:
    f_n m (n - 1), for m subgroups of n.
    """
    if method == "mr":
        return float(subgroups - 1)
    factor = 0.9 if method == "rbar" else _sbar_efficiency(size)
    return factor * subgroups * (size - 1)


def capability_indices(
    centre: float, sigma: float, lsl: float | None, usl: float | None
) -> tuple[float | None, float | None, float | None, float | None]:
    """(Cp, Cpk, Cpu, Cpl) for one sigma (or Pp, Ppk, Ppu, Ppl with the overall sigma).

    Cp = (USL - LSL) / 6 sigma, Cpu = (USL - centre) / 3 sigma, Cpl = (centre - LSL) /
    3 sigma, Cpk = the smaller of those defined; None where a limit is missing.
    """
    upper = (usl - centre) / (3.0 * sigma) if usl is not None else None
    lower = (centre - lsl) / (3.0 * sigma) if lsl is not None else None
    spread = (usl - lsl) / (6.0 * sigma) if usl is not None and lsl is not None else None
    return spread, worst_of(upper, lower), upper, lower


def _cpm(
    mean: float, s: float, lsl: float | None, usl: float | None, target: float | None
) -> float | None:
    if lsl is None or usl is None or target is None:
        return None
    return (usl - lsl) / (6.0 * math.sqrt(s**2 + (mean - target) ** 2))


def cp_interval(cp: float, n: int, dof: float | None = None) -> tuple[float, float]:
    """Two-sided 95 % chi-square interval for Cp; ``dof`` defaults to n - 1 (one sample sd).

    Montgomery, *Introduction to Statistical Quality Control*, eq. 8.19.
    """
    nu = float(n - 1) if dof is None else dof
    alpha = 1.0 - CONFIDENCE
    lower = cp * math.sqrt(float(stats.chi2.ppf(alpha / 2, nu)) / nu)
    upper = cp * math.sqrt(float(stats.chi2.ppf(1 - alpha / 2, nu)) / nu)
    return lower, upper


def cpk_interval(cpk: float, n: int, dof: float | None = None) -> tuple[float, float]:
    """Two-sided 95 % interval for Cpk by Bissell's approximation.

    Cpk +/- z sqrt(1/(9n) + Cpk^2 / (2 dof)), n all values, dof those of the within
    sigma (default n - 1); Montgomery eq. 8.21.
    """
    nu = float(n - 1) if dof is None else dof
    z = _Z_TWO_SIDED
    half = z * math.sqrt(1.0 / (9.0 * n) + cpk**2 / (2.0 * nu))
    return cpk - half, cpk + half


# ------------------------------------------------------------------ distribution checks
