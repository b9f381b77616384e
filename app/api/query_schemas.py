"""Request and response models of the read routes: measurements, hierarchy and alarms."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

# measurements ---------------------------------------------------------------------------


class MeasurementPublic(BaseModel):
    time: datetime
    value: float
    quality: str = Field(description="good, uncertain or bad (as reported by the source)")
    part: str | None = Field(description="part or serial number, when the source gives one")
    lot: str | None
    source: str = Field(description="where it came from, e.g. http:mes, opcua:..., mqtt:...")
    ingest_id: str = Field(description="the key that makes a resent record a no-op")


class MeasurementPagePublic(BaseModel):
    characteristic: str
    start: datetime
    end: datetime = Field(description="exclusive")
    items: list[MeasurementPublic] = Field(description="every quality, oldest first")
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null: no more")


class BucketPublic(BaseModel):
    start: datetime = Field(description="the bucket's first instant")
    n: int = Field(description="good-quality measurements in the bucket")
    mean: float
    min: float
    max: float
    sd: float | None = Field(description="sample standard deviation (n - 1); null for n < 2")


class BucketSeriesPublic(BaseModel):
    characteristic: str
    start: datetime = Field(description="the requested start rounded down to a bucket boundary")
    end: datetime = Field(description="the requested end rounded up to a bucket boundary")
    width_seconds: int
    buckets: list[BucketPublic] = Field(description="buckets without data are left out")


# hierarchy ------------------------------------------------------------------------------


class SummaryPublic(BaseModel):
    characteristics: int
    in_control: int = Field(description="with limits and no unresolved alarm")
    out_of_control: int = Field(description="with limits and at least one unresolved alarm")
    baseline: int = Field(description="still collecting the Phase I baseline (no limits yet)")
    open_alarms: int = Field(description="alarms not yet acknowledged")
    acknowledged_alarms: int = Field(description="acknowledged but not resolved")
    worst_cpk: float | None = Field(
        description="lowest rolling Cpk among characteristics with enough data for it"
    )
    worst_cpk_characteristic: str | None
    last_data_at: datetime | None = Field(description="newest charted measurement time")


class CharacteristicSummaryPublic(BaseModel):
    id: str
    name: str
    unit: str
    state: str = Field(description="in_control, out_of_control or baseline")
    open_alarms: int
    acknowledged_alarms: int
    cpk: float | None = Field(
        description="rolling Cpk; null with fewer than 25 subgroups in the window or no limits"
    )
    last_data_at: datetime | None
    last_value: float | None
    origin: str = Field(description="config (from the plant file) or api")


class ProcessSummaryPublic(BaseModel):
    id: str = Field(description="qualified process id <line>.<process>", examples=["line1.turning"])
    line: str
    process: str = Field(description="the process id within its line")
    name: str
    origin: str = Field(description="config, or api: known only from API-created characteristics")
    summary: SummaryPublic


class ProcessPublic(ProcessSummaryPublic):
    characteristics: list[CharacteristicSummaryPublic]


class LineSummaryPublic(BaseModel):
    id: str
    name: str
    origin: str = Field(description="config, or api: known only from API-created characteristics")
    summary: SummaryPublic


class LinePublic(LineSummaryPublic):
    processes: list[ProcessSummaryPublic]


class PlantPublic(BaseModel):
    id: str
    name: str
    summary: SummaryPublic
    lines: list[LineSummaryPublic]
