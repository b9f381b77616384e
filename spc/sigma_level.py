"""Sigma level <-> defects per million opportunities, with the conventional 1.5-sigma shift.

sigma_level = Phi^-1(1 - DPMO/1e6) + 1.5 and DPMO = 1e6 (1 - Phi(sigma_level - 1.5)), the
long-term convention of Six Sigma practice: 6 sigma = 3.4, 5 sigma = 233, 4 sigma = 6,210
and 3 sigma = 66,807 DPMO (the MIIT grading annex in ``docs/quality-grades.md`` quotes
them rounded: 3.4, 230, 6,200, 66,800).
"""

from __future__ import annotations

from typing import Final, overload

import numpy as np
import numpy.typing as npt
from scipy import stats

SHIFT: Final = 1.5
"""Assumed long-term drift of the mean, in sigma."""

PER_MILLION: Final = 1e6

FloatArray = npt.NDArray[np.float64]


@overload
def sigma_level(dpmo: float) -> float: ...
@overload
def sigma_level(dpmo: FloatArray | list[float]) -> FloatArray: ...
def sigma_level(dpmo: float | FloatArray | list[float]) -> float | FloatArray:
    """Sigma level of a defect rate: Phi^-1(1 - dpmo/1e6) + 1.5, elementwise.

    ``dpmo`` is a number or an array in [0, 1e6]. dpmo = 0 gives ``inf`` (no defects: no
    finite level) and dpmo = 1e6 gives ``-inf``. A scalar in gives a float out.
    The upper tail is taken with ``norm.isf``, accurate for tiny rates.

    Raises
    ------
    ValueError
        when any value is NaN or outside [0, 1e6] (a rate per million).
    """
    rate = np.asarray(dpmo, dtype=np.float64)
    if not np.all((rate >= 0.0) & (rate <= PER_MILLION)):
        bad = rate[~((rate >= 0.0) & (rate <= PER_MILLION))].ravel()[0]
        raise ValueError(
            f"dpmo must lie in [0, 1e6] defects per million opportunities, got {bad}; "
            "convert a fraction p with p * 1e6"
        )
    level = stats.norm.isf(rate / PER_MILLION) + SHIFT
    return float(level) if np.ndim(level) == 0 else np.asarray(level, dtype=np.float64)


@overload
def dpmo(sigma_level: float) -> float: ...
@overload
def dpmo(sigma_level: FloatArray | list[float]) -> FloatArray: ...
def dpmo(sigma_level: float | FloatArray | list[float]) -> float | FloatArray:
    """Defects per million opportunities at a sigma level: 1e6 (1 - Phi(level - 1.5)).

    Elementwise over arrays; any real level is allowed (``inf`` gives 0, ``-inf`` 1e6).
    A scalar in gives a float out.

    Raises
    ------
    ValueError
        when any level is NaN.
    """
    level = np.asarray(sigma_level, dtype=np.float64)
    if np.any(np.isnan(level)):
        raise ValueError("sigma_level must be a number, got NaN")
    rate = stats.norm.sf(level - SHIFT) * PER_MILLION
    return float(rate) if np.ndim(rate) == 0 else np.asarray(rate, dtype=np.float64)


def sigma_level_from_cpk(cpk: float) -> float:
    """The sigma level capability implies: Z_min = 3 Cpk (short-term, nearer spec limit).

    Cpk rests on the within (short-term) sigma, and the short-term scale is the one
    the 1.5σ-shift convention maps DPMO onto, so 3 Cpk compares with
    ``sigma_level(dpmo)``: Cpk 1.00, 1.33, 1.67 and 2.00 stand for about 3, 4, 5 and 6σ,
    the same steps as the grade table. It assumes a normal, in-control process; the
    observed defect rate does not.
    """
    return 3.0 * cpk
