"""Control limits computed in one pass over historical data (the batch reference)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from spc.constants import D2_N2, D3_N2, D4_N2

SUPPORTED_CHARTS = ("imr",)


@dataclass(frozen=True)
class ControlLimits:
    """Centre line and 3-sigma limits of one control chart.

    Attributes
    ----------
    chart : the chart these limits belong to (``"imr"`` for individuals, ``"mr"`` ...).
    center, ucl, lcl : centre line and control limits, in the data's unit.
    sigma : the sigma estimate the limits were built from, in the data's unit.
    dispersion : limits of the companion dispersion chart (MR, R or S), or ``None``.
    constants : the named chart constants used, e.g. ``{"d2": 1.1284, "D4": 3.267}``.
    """

    chart: str
    center: float
    ucl: float
    lcl: float
    sigma: float
    dispersion: ControlLimits | None = None
    constants: dict[str, float] = field(default_factory=dict)


def control_limits(data: npt.ArrayLike, chart: str = "imr") -> ControlLimits:
    """Phase I control limits from historical data.

    Parameters
    ----------
    data : 1-D sequence of individual measurements, in time order, at least 2 finite values.
    chart : ``"imr"`` (individuals and moving range; the only chart of the walking
        skeleton, the X-bar/R, X-bar/S and attribute charts come with the full SPC core).

    Returns
    -------
    ControlLimits
        Individuals chart: centre x-bar, sigma-hat = MR-bar / d2, limits x-bar +/- 3 sigma-hat.
        Its ``dispersion`` is the moving-range chart: centre MR-bar, UCL = D4 * MR-bar,
        LCL = 0 (D3 = 0 for n = 2). Moving ranges of span 2, exact d2 = 2/sqrt(pi)
        (AIAG SPC manual 2nd ed., ch. II; Montgomery, *Introduction to SQC*, sec. 6.4).
    """
    if chart not in SUPPORTED_CHARTS:
        raise ValueError(f"chart {chart!r} is not supported yet; supported charts: imr")
    x = np.asarray(data, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"data must be one-dimensional individual values, got shape {x.shape}")
    if x.size < 2:
        raise ValueError("an individuals chart needs at least 2 values (one moving range)")
    if not np.all(np.isfinite(x)):
        raise ValueError("data contains NaN or infinite values; drop them before charting")
    center = float(x.mean())
    mr_bar = float(np.abs(np.diff(x)).mean())
    sigma_hat = mr_bar / D2_N2
    moving_range = ControlLimits(
        chart="mr",
        center=mr_bar,
        ucl=D4_N2 * mr_bar,
        lcl=0.0,
        sigma=D3_N2 * sigma_hat,
        constants={"d2": D2_N2, "d3": D3_N2, "D3": 0.0, "D4": D4_N2},
    )
    return ControlLimits(
        chart="imr",
        center=center,
        ucl=center + 3.0 * sigma_hat,
        lcl=center - 3.0 * sigma_hat,
        sigma=sigma_hat,
        dispersion=moving_range,
        constants={"d2": D2_N2, "E2": 3.0 / D2_N2},
    )
