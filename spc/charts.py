"""Control limits computed in one pass over historical data (the batch reference)."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from spc.constants import D2_N2, D3_N2, D4_N2, chart_constants

FloatArray = npt.NDArray[np.float64]
Limit = float | FloatArray
"""A limit is a float, or one value per point when it varies with the sample size."""

VARIABLES_CHARTS = ("imr", "xbar_r", "xbar_s")
ATTRIBUTES_CHARTS = ("p", "np", "c", "u", "laney_p", "laney_u")
SUPPORTED_CHARTS = VARIABLES_CHARTS + ATTRIBUTES_CHARTS


@dataclass(frozen=True)
class ControlLimits:
    """Centre line and 3-sigma limits of one control chart.

    Attributes
    ----------
    chart : the chart these limits belong to: the requested chart (``"imr"``, ``"xbar_r"``,
        ``"xbar_s"``, ``"p"``, ``"np"``, ``"c"``, ``"u"``, ``"laney_p"``, ``"laney_u"``) or
        the dispersion chart (``"mr"``, ``"r"``, ``"s"``).
    center, ucl, lcl : centre line and control limits, in the unit of the plotted statistic
        (measurements; proportion for p; count for np and c; count per unit for u).
        ``ucl``/``lcl`` (and ``sigma``) are read-only float64 arrays, one value per point,
        when ``sample_sizes`` was given per point to a p, u, laney_p or laney_u chart;
        floats otherwise.
    sigma : the sigma estimate the limits were built from. Variables charts: the process
        sigma-hat of individual values (MR-bar/d2, R-bar/d2 or s-bar/c4; X-bar limits are
        center +/- 3 sigma/sqrt(n)). Attribute charts: the standard deviation of the plotted
        statistic (limits are center +/- 3 sigma before clipping). Dispersion charts: the
        standard deviation of MR, R or s (d3 sigma-hat, or sigma-hat sqrt(1 - c4^2)).
    dispersion : limits of the companion dispersion chart (MR, R or S), or ``None``.
    constants : the named chart constants used, e.g. ``{"d2": 1.1284, "D4": 3.267}``;
        Laney charts also report the estimated ``sigma_z``.
    """

    chart: str
    center: float
    ucl: Limit
    lcl: Limit
    sigma: Limit
    dispersion: ControlLimits | None = None
    constants: dict[str, float] = field(default_factory=dict)


def control_limits(
    data: npt.ArrayLike,
    chart: str = "imr",
    subgroup_size: int | None = None,
    sample_sizes: npt.ArrayLike | None = None,
) -> ControlLimits:
    """Phase I 3-sigma control limits from historical data.

    Parameters
    ----------
    data : measurements or counts, in time order, finite.
        ``"imr"``: 1-D individual values, at least 2. ``"xbar_r"``/``"xbar_s"``: a 2-D array
        (subgroups x n) or a 1-D array cut into consecutive subgroups of ``subgroup_size``;
        at least 2 subgroups of n = 2..25. Attribute charts: 1-D counts, at least 2 points,
        of nonconforming units (``"p"``, ``"np"``, ``"laney_p"``) or of nonconformities
        (``"c"``, ``"u"``, ``"laney_u"``).
    chart : one of ``SUPPORTED_CHARTS``.
    subgroup_size : measurements per subgroup when ``data`` is 1-D (X-bar charts only).
    sample_sizes : units inspected per point, a scalar or one value per point (p, np, u and
        the Laney charts; np needs one constant size). Not used by the c chart, which
        assumes equal inspection units.

    Returns
    -------
    ControlLimits
        ``"imr"``: centre x-bar, sigma-hat = MR-bar/d2 with exact d2 = 2/sqrt(pi) (AIAG SPC
        manual, 2nd ed., ch. II; Montgomery, *Introduction to SQC*, sec. 6.4); dispersion is
        the MR chart (MR-bar, LCL 0, UCL D4 MR-bar).
        ``"xbar_r"``: centre x-double-bar, limits +/- A2 R-bar, sigma-hat = R-bar/d2;
        dispersion is the R chart (R-bar, D3 R-bar, D4 R-bar).
        ``"xbar_s"``: limits x-double-bar +/- A3 s-bar, sigma-hat = s-bar/c4 (s with the
        n - 1 divisor); dispersion is the S chart (s-bar, B3 s-bar, B4 s-bar).
        Exact d2, d3 and c4 throughout (``spc.constants.chart_constants``).
        ``"p"``: p-bar = sum(d)/sum(n), limits p-bar +/- 3 sqrt(p-bar(1 - p-bar)/n_i)
        clipped to [0, 1]. ``"np"``: n p-bar +/- 3 sqrt(n p-bar(1 - p-bar)) clipped to
        [0, n]. ``"c"``: c-bar +/- 3 sqrt(c-bar), LCL clipped at 0. ``"u"``: u-bar =
        sum(c)/sum(n), limits u-bar +/- 3 sqrt(u-bar/n_i), LCL clipped at 0 (Montgomery,
        ch. 7).
        ``"laney_p"``/``"laney_u"``: Laney's p' and u' charts (Laney 2002, *Quality
        Engineering* 14(4)) for very large samples: z_i = (p_i - p-bar)/sigma_pi,
        sigma_z = MR-bar(z)/d2, limits p-bar +/- 3 sigma_pi sigma_z (clipped as for p or u).
        We divide by the exact d2 = 2/sqrt(pi) = 1.12838, not the rounded 1.128 of Laney and
        Minitab: sigma_z and the limit widths are 0.034 % smaller than theirs.

    Raises
    ------
    ValueError
        For an unknown chart or data of the wrong shape, size or sign (the message says how
        to fix the call). TypeError for a non-integer ``subgroup_size``.
    """
    if chart in VARIABLES_CHARTS:
        if sample_sizes is not None:
            raise ValueError(f"sample_sizes applies to attribute charts only, not to {chart!r}")
        if chart == "imr":
            if subgroup_size is not None:
                raise ValueError("an individuals chart takes no subgroup_size; use 'xbar_r'")
            return _imr(data)
        groups = _subgroups(data, subgroup_size)
        return _xbar_r(groups) if chart == "xbar_r" else _xbar_s(groups)
    if chart in ATTRIBUTES_CHARTS:
        if subgroup_size is not None:
            raise ValueError(f"subgroup_size applies to X-bar charts; {chart!r} takes sample_sizes")
        return _ATTRIBUTE_BUILDERS[chart](*_attribute_inputs(data, sample_sizes, chart))
    raise ValueError(
        f"chart {chart!r} is not supported; supported charts: {', '.join(SUPPORTED_CHARTS)}"
    )


def _imr(data: npt.ArrayLike) -> ControlLimits:
    x = np.asarray(data, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"data must be one-dimensional individual values, got shape {x.shape}")
    if x.size < 2:
        raise ValueError("an individuals chart needs at least 2 values (one moving range)")
    _require_finite(x)
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


def _xbar_r(groups: FloatArray) -> ControlLimits:
    k = chart_constants(groups.shape[1])
    center = float(groups.mean(axis=1).mean())
    r_bar = float(np.ptp(groups, axis=1).mean())
    sigma_hat = r_bar / k.d2
    ranges = ControlLimits(
        chart="r",
        center=r_bar,
        ucl=k.D4 * r_bar,
        lcl=k.D3 * r_bar,
        sigma=k.d3 * sigma_hat,
        constants={"d2": k.d2, "d3": k.d3, "D3": k.D3, "D4": k.D4},
    )
    return ControlLimits(
        chart="xbar_r",
        center=center,
        ucl=center + k.A2 * r_bar,
        lcl=center - k.A2 * r_bar,
        sigma=sigma_hat,
        dispersion=ranges,
        constants={"d2": k.d2, "A2": k.A2},
    )


def _xbar_s(groups: FloatArray) -> ControlLimits:
    k = chart_constants(groups.shape[1])
    center = float(groups.mean(axis=1).mean())
    s_bar = float(groups.std(axis=1, ddof=1).mean())
    sigma_hat = s_bar / k.c4
    deviations = ControlLimits(
        chart="s",
        center=s_bar,
        ucl=k.B4 * s_bar,
        lcl=k.B3 * s_bar,
        sigma=sigma_hat * float(np.sqrt(1.0 - k.c4 * k.c4)),
        constants={"c4": k.c4, "B3": k.B3, "B4": k.B4},
    )
    return ControlLimits(
        chart="xbar_s",
        center=center,
        ucl=center + k.A3 * s_bar,
        lcl=center - k.A3 * s_bar,
        sigma=sigma_hat,
        dispersion=deviations,
        constants={"c4": k.c4, "A3": k.A3},
    )


def _subgroups(data: npt.ArrayLike, subgroup_size: int | None) -> FloatArray:
    x = np.asarray(data, dtype=np.float64)
    if x.ndim == 1:
        if subgroup_size is None:
            raise ValueError(
                "1-D data needs subgroup_size (measurements per subgroup), "
                "or pass a 2-D array (subgroups x n)"
            )
        n = operator.index(subgroup_size)
        if n < 1 or x.size % n:
            raise ValueError(
                f"data length {x.size} is not a multiple of subgroup_size {n}; "
                "give complete subgroups only"
            )
        x = x.reshape(-1, n)
    elif x.ndim == 2:
        if subgroup_size is not None and operator.index(subgroup_size) != x.shape[1]:
            raise ValueError(
                f"subgroup_size {subgroup_size} does not match the {x.shape[1]} columns of data"
            )
    else:
        raise ValueError(f"data must be 2-D (subgroups x n) or 1-D, got shape {x.shape}")
    if x.shape[1] < 2:
        raise ValueError("subgroups of 1 have no within-subgroup spread; use chart='imr'")
    if x.shape[0] < 2:
        raise ValueError(f"X-bar limits need at least 2 subgroups, got {x.shape[0]}")
    _require_finite(x)
    return x


_Inputs = tuple[FloatArray, FloatArray, bool]


def _attribute_inputs(
    data: npt.ArrayLike, sample_sizes: npt.ArrayLike | None, chart: str
) -> _Inputs:
    counts = np.asarray(data, dtype=np.float64)
    if counts.ndim != 1:
        raise ValueError(f"data must be one-dimensional counts, got shape {counts.shape}")
    if counts.size < 2:
        raise ValueError("attribute control limits need at least 2 points")
    _require_finite(counts)
    if np.any(counts < 0):
        raise ValueError("counts must be non-negative")
    if chart == "c":
        if sample_sizes is not None:
            raise ValueError("the c chart assumes equal inspection units; for sizes use 'u'")
        return counts, np.ones_like(counts), True
    if sample_sizes is None:
        raise ValueError(f"the {chart!r} chart needs sample_sizes (units inspected per point)")
    sizes = np.asarray(sample_sizes, dtype=np.float64)
    scalar = sizes.ndim == 0
    if not scalar and sizes.shape != counts.shape:
        raise ValueError(
            f"sample_sizes has shape {sizes.shape} but data has {counts.size} points; "
            "give one size per point or a single size"
        )
    sizes = np.broadcast_to(sizes, counts.shape)
    if not np.all(np.isfinite(sizes) & (sizes > 0)):
        raise ValueError("sample_sizes must be finite and positive")
    if chart in ("p", "np", "laney_p") and np.any(counts > sizes):
        first = int(np.argmax(counts > sizes))
        raise ValueError(f"point {first}: more nonconforming units than units inspected")
    return counts, sizes, scalar


def _p(counts: FloatArray, sizes: FloatArray, scalar: bool) -> ControlLimits:
    p_bar = float(counts.sum() / sizes.sum())
    sigma = np.sqrt(p_bar * (1.0 - p_bar) / sizes)
    return _attribute_limits("p", p_bar, sigma, scalar, upper_bound=1.0)


def _np(counts: FloatArray, sizes: FloatArray, scalar: bool) -> ControlLimits:
    if not np.all(sizes == sizes[0]):
        raise ValueError("the np chart needs one constant sample size; use 'p' for varying sizes")
    n = float(sizes[0])
    p_bar = float(counts.sum()) / (n * counts.size)
    sigma = np.full_like(counts, np.sqrt(n * p_bar * (1.0 - p_bar)))
    return _attribute_limits("np", n * p_bar, sigma, True, upper_bound=n)


def _c(counts: FloatArray, sizes: FloatArray, scalar: bool) -> ControlLimits:
    c_bar = float(counts.mean())
    return _attribute_limits("c", c_bar, np.sqrt(c_bar * sizes), True, upper_bound=None)


def _u(counts: FloatArray, sizes: FloatArray, scalar: bool) -> ControlLimits:
    u_bar = float(counts.sum() / sizes.sum())
    return _attribute_limits("u", u_bar, np.sqrt(u_bar / sizes), scalar, upper_bound=None)


def _laney_p(counts: FloatArray, sizes: FloatArray, scalar: bool) -> ControlLimits:
    p = _p(counts, sizes, False)
    return _laney("laney_p", counts / sizes, p, scalar, upper_bound=1.0)


def _laney_u(counts: FloatArray, sizes: FloatArray, scalar: bool) -> ControlLimits:
    u = _u(counts, sizes, False)
    return _laney("laney_u", counts / sizes, u, scalar, upper_bound=None)


def _laney(
    chart: str, rates: FloatArray, plain: ControlLimits, scalar: bool, upper_bound: float | None
) -> ControlLimits:
    within = np.asarray(plain.sigma, dtype=np.float64)
    if not np.all(within > 0.0):
        raise ValueError(
            f"{chart!r} needs a centre line strictly inside its range (got {plain.center}); "
            "with no (or only) nonconforming units there is no variation to scale"
        )
    z = (rates - plain.center) / within
    sigma_z = float(np.abs(np.diff(z)).mean()) / D2_N2
    limits = _attribute_limits(chart, plain.center, within * sigma_z, scalar, upper_bound)
    return ControlLimits(
        chart=chart,
        center=limits.center,
        ucl=limits.ucl,
        lcl=limits.lcl,
        sigma=limits.sigma,
        constants={"d2": D2_N2, "sigma_z": sigma_z},
    )


def _attribute_limits(
    chart: str, center: float, sigma: FloatArray, scalar: bool, upper_bound: float | None
) -> ControlLimits:
    upper = center + 3.0 * sigma
    if upper_bound is not None:
        upper = np.minimum(upper, upper_bound)
    lower = np.maximum(center - 3.0 * sigma, 0.0)
    return ControlLimits(
        chart=chart,
        center=center,
        ucl=_per_point(upper, scalar),
        lcl=_per_point(lower, scalar),
        sigma=_per_point(sigma, scalar),
    )


def _per_point(values: FloatArray, scalar: bool) -> Limit:
    if scalar:
        return float(values[0])
    frozen = np.array(values, dtype=np.float64)
    frozen.flags.writeable = False
    return frozen


def _require_finite(x: FloatArray) -> None:
    if not np.all(np.isfinite(x)):
        raise ValueError("data contains NaN or infinite values; drop them before charting")


_ATTRIBUTE_BUILDERS: dict[str, Callable[[FloatArray, FloatArray, bool], ControlLimits]] = {
    "p": _p,
    "np": _np,
    "c": _c,
    "u": _u,
    "laney_p": _laney_p,
    "laney_u": _laney_u,
}
