"""Response models of the chart and capability reads (``XPublic``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from app.api.schemas import PeriodPublic


class ViolationPublic(BaseModel):
    rule: str = Field(description='run rule "1".."8"')
    chart: Literal["location", "dispersion"] = Field(
        description="location (I or X-bar) or dispersion (MR, R or S)"
    )


class ChartPointPublic(BaseModel):
    time: datetime = Field(description="where the point is plotted: the value's or the "
                           "subgroup's last value's time")  # fmt: skip
    first_time: datetime | None = Field(description="subgroup's first value (X-bar charts)")
    last_time: datetime | None = Field(description="subgroup's last value (X-bar charts)")
    value: float = Field(description="individual value or subgroup mean")
    dispersion: float | None = Field(
        description="moving range (null for the range's first point), R or S"
    )
    limit_version: int | None = Field(description="null: Phase I baseline, no limits yet")
    violations: list[ViolationPublic]


class ChartLimitsPublic(BaseModel):
    center: float
    ucl: float
    lcl: float
    sigma: float = Field(description="sigma of the plotted point (sigma-hat / sqrt(n))")
    plus_1_sigma: float = Field(description="zone C/B boundary above the centre")
    minus_1_sigma: float
    plus_2_sigma: float = Field(description="zone B/A boundary above the centre")
    minus_2_sigma: float
    dispersion_center: float = Field(description="MR-bar, R-bar or S-bar")
    dispersion_ucl: float
    dispersion_lcl: float


class LimitVersionPublic(BaseModel):
    version: int
    created_at: datetime = Field(description="when the limits were frozen or recalculated")
    in_force_after: datetime = Field(
        description="judges points measured after this time: the last baseline point's "
        "time (Phase I), or when recalculated limits were installed"
    )
    valid_until: datetime | None = Field(
        description="the next version's in_force_after; null: the current version"
    )
    author: str
    reason: str
    baseline_n: int = Field(description="points or subgroups the limits came from")
    limits: ChartLimitsPublic


class SegmentPublic(BaseModel):
    limit_version: int | None = Field(description="null: Phase I baseline")
    first_index: int = Field(description="index in points, inclusive")
    last_index: int = Field(description="index in points, inclusive")


class EwmaPointPublic(BaseModel):
    index: int = Field(description="index in points")
    value: float
    ucl: float
    lcl: float
    signal: bool


class EwmaPublic(BaseModel):
    lam: float = Field(description="weight lambda")
    L: float = Field(description="limit width in sigma")
    points: list[EwmaPointPublic] = Field(description="Phase II points only")


class CusumPointPublic(BaseModel):
    index: int = Field(description="index in points")
    upper: float = Field(description="C+")
    lower: float = Field(description="C-")
    limit: float = Field(description="decision interval H = h sigma, in the data's unit")
    signal: bool


class CusumPublic(BaseModel):
    k: float = Field(description="reference value in sigma")
    h: float = Field(description="decision interval in sigma")
    points: list[CusumPointPublic] = Field(description="Phase II points only")


class ChartPublic(BaseModel):
    characteristic: str
    unit: str
    chart: str = Field(description="imr, xbar_r or xbar_s")
    subgroup_size: int
    location_chart: Literal["i", "xbar"]
    dispersion_chart: Literal["mr", "r", "s"]
    rules: list[str] = Field(description="rules marked on the location chart")
    dispersion_rules: list[str] = Field(description="rules marked on the dispersion chart")
    period: PeriodPublic
    points: list[ChartPointPublic] = Field(description="in time order")
    segments: list[SegmentPublic] = Field(description="runs of points under one limit version")
    limit_versions: list[LimitVersionPublic] = Field(description="every version, oldest first")
    ewma: EwmaPublic | None = Field(description="null when EWMA is not configured")
    cusum: CusumPublic | None = Field(description="null when CUSUM is not configured")
    charted: int = Field(description="good measurements charted")
    not_good: int = Field(description="uncertain or bad measurements read and not charted")
    not_plotted: int = Field(description="values of a trailing incomplete subgroup")
    truncated: bool = Field(description="more data in the range than one chart shows")
    next_cursor: str | None = Field(
        description="when truncated: pass as cursor (with the same range) for the next points"
    )
    notes: list[str]


class SpecPublic(BaseModel):
    lsl: float | None
    usl: float | None
    target: float | None


class PercentilePublic(BaseModel):
    method: str = Field(description="percentile:lognormal, percentile:weibull or percentile:gamma")
    params: list[float] = Field(description="scipy (shape, loc, scale), loc fixed at 0")
    ad_statistic: float
    x_low: float = Field(description="X0.135")
    x_median: float = Field(description="X50")
    x_high: float = Field(description="X99.865")
    cp: float | None
    cpk: float | None
    cpu: float | None
    cpl: float | None
    ppm_expected: float


class IndicesPublic(BaseModel):
    n: int
    mean: float
    sigma_within: float
    sigma_within_method: str = Field(description="mr, rbar or sbar")
    sigma_overall: float
    subgroup_size: int
    cp: float | None
    cpk: float | None
    cpu: float | None
    cpl: float | None
    pp: float | None
    ppk: float | None
    ppu: float | None
    ppl: float | None
    cpm: float | None
    cp_ci: tuple[float, float] | None = Field(description="95 % interval (lower, upper)")
    cpk_ci: tuple[float, float] | None = Field(description="95 % interval (lower, upper)")
    ppm_expected: float = Field(description="normal tails beyond the limits, within sigma")
    normality_p: float | None = Field(description="Anderson-Darling p; null below 8 values")
    ad_statistic: float | None
    method: str
    percentile: PercentilePublic | None = Field(
        description="ISO 22514-2 indices when clearly non-normal (p < 0.05)"
    )


class HistogramPublic(BaseModel):
    rule: Literal["freedman-diaconis", "sqrt"]
    edges: list[float] = Field(description="k + 1 bin edges; bins [left, right), last closed")
    counts: list[int] = Field(description="values per bin; they sum to n")
    expected: list[float] = Field(description="fitted normal's count per bin: n x delta Phi")


class NormalCurvePublic(BaseModel):
    mean: float
    sigma: float = Field(description="overall sigma (sample sd, n - 1)")
    x: list[float]
    density: list[float] = Field(description="probability density per unit")
    count: list[float] = Field(description="on the histogram's axis: n x bin width x density")


class CapabilityReportPublic(BaseModel):
    characteristic: str
    unit: str
    chart: str
    period: PeriodPublic
    spec: SpecPublic
    n: int = Field(description="values the indices are computed from")
    values_unused: int = Field(description="values of a trailing incomplete subgroup")
    capped: bool = Field(description="more good values in the period: the most recent were used")
    first_time: datetime = Field(description="time of the first value used")
    last_time: datetime = Field(description="time of the last value used")
    indices: IndicesPublic
    histogram: HistogramPublic
    normal: NormalCurvePublic
    notes: list[str]
