"""Response models of the HTTP API (``XPublic``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class FieldProblemPublic(BaseModel):
    field: str = Field(examples=["body.measurements.0.value"])
    problem: str


class ProblemPublic(BaseModel):
    """Every error answer (RFC 9457 ``application/problem+json``)."""

    type: str = "about:blank"
    title: str = Field(examples=["Invalid request"])
    status: int = Field(examples=[422])
    detail: str = Field(examples=["body.measurements.0.value: Input should be a valid number"])
    errors: list[dict[str, str]] | None = Field(
        default=None, description="invalid input: each field and its problem (or row rejections)"
    )


class CharacteristicPublic(BaseModel):
    id: str
    name: str
    unit: str
    line: str
    process: str
    lsl: float | None
    usl: float | None
    target: float | None
    chart: str
    subgroup_size: int
    rules: list[str]
    source_kind: str | None = Field(
        description="opcua, mqtt, sparkplug, or null for HTTP push only"
    )
    source_address: str | None
    origin: str = Field(description="config (from the plant file) or api")


class LimitsPublic(BaseModel):
    version: int
    center: float
    ucl: float
    lcl: float
    sigma: float = Field(description="sigma of the plotted point (sigma-hat / sqrt(n))")
    mr_center: float = Field(description="dispersion chart (MR, R or S) centre line")
    mr_ucl: float = Field(description="dispersion chart upper limit")
    dispersion_lcl: float = Field(description="dispersion chart lower limit (0 for MR)")
    baseline_n: int = Field(description="points or subgroups the limits came from")


class CapabilityPublic(BaseModel):
    n: int = Field(description="points in the rolling window")
    window: int
    mean: float
    sigma_within: float
    sigma_overall: float
    cp: float | None
    cpk: float | None
    pp: float | None
    ppk: float | None
    cpk_ci: tuple[float, float] | None = Field(
        default=None,
        description="95 % interval of Cpk (Bissell; Montgomery eq. 8.21), null below 2 subgroups",
    )


class AlarmPublic(BaseModel):
    id: int
    rule: str = Field(description="the opening signal's rule (see /alarms/{id} for evidence)")
    chart: str
    severity: str = Field(description="warning or critical")
    characteristics: list[str] = Field(description="every characteristic it concerns")
    state: str
    opened_at: datetime
    last_at: datetime
    count: int
    limit_version: int
    last_value: float
    message: str


class LastValuePublic(BaseModel):
    time: datetime
    value: float


class BaselinePublic(BaseModel):
    collected: int
    needed: int


class GradeBriefPublic(BaseModel):
    grade: int | None = Field(description="1..5 on the Cpk criterion; null: insufficient data")
    grade_en: str | None
    grade_zh: str | None
    limiting_metric: str | None
    computed_at: datetime = Field(description="when the live grades were last computed")


class StatusPublic(BaseModel):
    characteristic: CharacteristicPublic
    last: LastValuePublic | None
    baseline: BaselinePublic
    limits: LimitsPublic | None = Field(description="null until the Phase I baseline is complete")
    capability: CapabilityPublic | None
    open_alarms: list[AlarmPublic]
    in_control: bool | None = Field(description="null before limits exist")
    grade: GradeBriefPublic | None = Field(
        default=None, description="the characteristic's live grade; null until first computed"
    )


class RowRejectionPublic(BaseModel):
    row: str = Field(examples=["measurements[3]"])
    field: str
    reason: str


class PushResult(BaseModel):
    accepted: int = Field(description="rows accepted and stored (duplicates included)")
    rejected: list[RowRejectionPublic]


class WhoAmIPublic(BaseModel):
    name: str = Field(
        description="the key's name (`anonymous` without a key)", examples=["mes-line1"]
    )
    role: str = Field(description="viewer, operator, engineer, ingest or admin")
    anonymous: bool = Field(description="no key sent; the service allows anonymous reading")
    grants: list[str] = Field(
        description="every role whose actions this caller may take", examples=[["viewer"]]
    )


class HealthPublic(BaseModel):
    status: str = Field(
        description="ok, or degraded when the store refuses writes or writes wait in the spool"
    )
    store: str = Field(description="sqlite, postgresql or timescaledb")
    spooled_rows: int = Field(
        default=0, description="records waiting on local disk for the database to return"
    )
    characteristics: int
    collectors: dict[str, bool] = Field(description="collector -> connected")


class ReadinessPublic(BaseModel):
    status: str = Field(description="ok, degraded (working, something to look at) or unready")
    checks: dict[str, str] = Field(
        description="store (ok, spooling, unavailable), spool, pipeline, and each collector "
        "(ok, disconnected)"
    )


class PeriodPublic(BaseModel):
    start: datetime
    end: datetime = Field(description="exclusive")
    label: str = Field(description="as asked: 7d, 24h, 2026-01-01/2026-03-31")
    cpk_from: datetime | None = Field(
        default=None,
        description="Cpk covers whole UTC hours: from the top of the hour holding start",
    )


class MetricGradePublic(BaseModel):
    metric: str = Field(
        description="cpk, rolled_first_pass_yield, sigma_level, internal_loss_rate, "
        "external_loss_rate (yields and rates as fractions)"
    )
    value: float | None = Field(
        description="null: insufficient data, not tracked, or a sigma level with no "
        "defect at all (unbounded: the note says so, and the grade stands)"
    )
    basis: int = Field(
        description="subgroups or individuals (Cpk), inspected units or measured values "
        "(yield, sigma level), or cost events (loss rates)"
    )
    grade: int | None = Field(description="1..5; null: insufficient data")
    grade_en: str | None
    grade_zh: str | None
    next_target: float | None = Field(description="what the value must reach for the next grade")
    note: str
    interval: tuple[float, float] | None = Field(
        default=None,
        description="95 % confidence interval of the value (Cpk: Bissell, Montgomery eq. "
        "8.21, with the within sigma's degrees of freedom); null where not computed",
    )


class EntityGradePublic(BaseModel):
    level: str
    id: str
    grade: int | None = Field(description="weakest metric's grade; null if any is insufficient")
    grade_en: str | None
    grade_zh: str | None
    ceiling: int | None = Field(description="the lowest grade among the graded metrics")
    limiting_metric: str | None
    insufficient: list[str]
    metrics: list[MetricGradePublic]
    children: dict[str, int | None] = Field(description="the grades of what it rolls up")
    capability_sigma_level: float | None = Field(
        default=None,
        description="the sigma level its Cpk implies, 3 x Cpk (short-term, nearer "
        "specification limit), beside the graded one from the observed defect rate; "
        "not graded",
    )
    period: PeriodPublic
    computed_at: datetime


class PlantGradesPublic(BaseModel):
    period: PeriodPublic
    computed_at: datetime
    scope: str
    plant: EntityGradePublic
    lines: list[EntityGradePublic]


class GradeSnapshotPublic(BaseModel):
    taken_at: datetime
    grade: int | None
    grade_en: str | None
    grade_zh: str | None
    limiting_metric: str | None
    metrics: dict[str, float | None]
