"""Process capability and performance indices (the batch reference)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from spc.constants import D2_N2

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Capability:
    """Capability (within sigma) and performance (overall sigma) of one sample.

    Indices are ``None`` where the specification does not define them (Cp, Pp and Cpm
    need both limits; Cpu/Ppu need USL; Cpl/Ppl need LSL; Cpm needs a target).
    ``cp_ci`` and ``cpk_ci`` are two-sided 95 % intervals ``(lower, upper)``.
    ``normality_p`` is not computed yet (``None``); ``method`` is ``"normal"``.
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


def _one_sided(
    mean: float, sigma: float, lsl: float | None, usl: float | None
) -> tuple[float | None, float | None]:
    upper = (usl - mean) / (3.0 * sigma) if usl is not None else None
    lower = (mean - lsl) / (3.0 * sigma) if lsl is not None else None
    return upper, lower


def _worst(upper: float | None, lower: float | None) -> float | None:
    present = [v for v in (upper, lower) if v is not None]
    return min(present) if present else None


def _validate(x: npt.NDArray[np.float64], lsl: float | None, usl: float | None) -> None:
    if x.ndim != 1 or x.size < 2:
        raise ValueError("capability needs a 1-D sample of at least 2 values")
    if not np.all(np.isfinite(x)):
        raise ValueError("data contains NaN or infinite values; drop them first")
    if lsl is None and usl is None:
        raise ValueError("give at least one specification limit (lsl or usl)")
    if lsl is not None and usl is not None and not lsl < usl:
        raise ValueError(f"lsl ({lsl}) must be below usl ({usl})")


def capability(
    data: npt.ArrayLike,
    lsl: float | None = None,
    usl: float | None = None,
    target: float | None = None,
    subgroup_size: int = 1,
    sigma_within: str = "mr",
) -> Capability:
    """Capability indices of individual measurements.

    Conventions (Montgomery, *Introduction to Statistical Quality Control*, ch. 8;
    AIAG SPC manual 2nd ed., ch. IV):

    - within sigma = MR-bar / d2 (moving ranges of span 2, exact d2 = 2/sqrt(pi));
    - overall sigma = sample standard deviation with n - 1;
    - Cp = (USL - LSL) / 6 sigma_w, Cpu = (USL - mean) / 3 sigma_w,
      Cpl = (mean - LSL) / 3 sigma_w, Cpk = min of those defined; P-indices likewise
      with the overall sigma;
    - Cpm = (USL - LSL) / (6 sqrt(s^2 + (mean - T)^2)) with s the overall sigma;
    - Cp interval from the chi-square distribution with n - 1 degrees of freedom,
      Cpk interval by Bissell's normal approximation
      Cpk +/- z sqrt(1/(9n) + Cpk^2 / (2(n-1))) (Montgomery eqs. 8.19 and 8.21);
    - ppm_expected: normal tail areas beyond the limits with the within sigma, x 1e6.

    Only ``subgroup_size=1`` with ``sigma_within="mr"`` is available in the skeleton.
    """
    if subgroup_size != 1 or sigma_within != "mr":
        raise ValueError("only individuals (subgroup_size=1, sigma_within='mr') are supported yet")
    x = np.asarray(data, dtype=np.float64)
    _validate(x, lsl, usl)
    n = int(x.size)
    mean = float(x.mean())
    s_within = float(np.abs(np.diff(x)).mean()) / D2_N2
    s_overall = float(x.std(ddof=1))
    if s_within <= 0 or s_overall <= 0:
        raise ValueError("the data have no variation; capability is undefined")
    cpu, cpl = _one_sided(mean, s_within, lsl, usl)
    ppu, ppl = _one_sided(mean, s_overall, lsl, usl)
    two_sided = lsl is not None and usl is not None
    cp = (usl - lsl) / (6.0 * s_within) if two_sided else None  # type: ignore[operator]
    pp = (usl - lsl) / (6.0 * s_overall) if two_sided else None  # type: ignore[operator]
    cpm = None
    if two_sided and target is not None:
        cpm = (usl - lsl) / (6.0 * math.sqrt(s_overall**2 + (mean - target) ** 2))  # type: ignore[operator]
    cpk = _worst(cpu, cpl)
    return Capability(
        n=n,
        mean=mean,
        sigma_within=s_within,
        sigma_overall=s_overall,
        cp=cp,
        cpk=cpk,
        cpu=cpu,
        cpl=cpl,
        pp=pp,
        ppk=_worst(ppu, ppl),
        ppu=ppu,
        ppl=ppl,
        cpm=cpm,
        cp_ci=_cp_interval(cp, n) if cp is not None else None,
        cpk_ci=_cpk_interval(cpk, n) if cpk is not None else None,
        ppm_expected=expected_ppm(mean, s_within, lsl, usl),
        normality_p=None,
        method="normal",
    )


def expected_ppm(mean: float, sigma: float, lsl: float | None, usl: float | None) -> float:
    """Parts per million beyond the specification for a normal(mean, sigma) process."""
    tail = 0.0
    if usl is not None:
        tail += float(stats.norm.sf((usl - mean) / sigma))
    if lsl is not None:
        tail += float(stats.norm.cdf((lsl - mean) / sigma))
    return tail * 1e6


def _cp_interval(cp: float, n: int) -> tuple[float, float]:
    alpha = 1.0 - CONFIDENCE
    dof = n - 1
    lower = cp * math.sqrt(float(stats.chi2.ppf(alpha / 2, dof)) / dof)
    upper = cp * math.sqrt(float(stats.chi2.ppf(1 - alpha / 2, dof)) / dof)
    return lower, upper


def _cpk_interval(cpk: float, n: int) -> tuple[float, float]:
    z = float(stats.norm.ppf(1 - (1.0 - CONFIDENCE) / 2))
    half = z * math.sqrt(1.0 / (9.0 * n) + cpk**2 / (2.0 * (n - 1)))
    return cpk - half, cpk + half
