"""Schemas of the alarms (incidents) API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints


class AlarmItemPublic(BaseModel):
    id: int
    characteristic: str = Field(description="the characteristic whose signal opened it")
    characteristics: list[str] = Field(
        description="every characteristic the incident concerns, the opening one first"
    )
    line: str | None = Field(description="null when the characteristic no longer exists")
    process: str | None = Field(description="qualified <line>.<process>; null as for line")
    rule: str = Field(description="the opening signal's rule")
    chart: str = Field(description="the opening signal's chart")
    severity: str = Field(description="warning or critical")
    state: str = Field(description="open, acknowledged or resolved")
    opened_at: datetime
    last_at: datetime = Field(description="time of the latest signal it absorbed")
    count: int = Field(description="signals it absorbed")
    limit_version: int
    last_value: float = Field(description="the latest measured value that signalled")
    message: str
    escalated_at: datetime | None = Field(default=None, description="null: not escalated")
    acknowledged_by: str | None = Field(
        default=None, description="the name of the key that acknowledged; null: not yet"
    )
    acknowledged_at: datetime | None = Field(default=None, description="null: not yet")
    ack_comment: str | None = Field(default=None, description="what the operator found")
    ack_cause: str | None = Field(default=None, description="assignable cause, if given")
    ack_action: str | None = Field(default=None, description="corrective action, if given")
    resolved_by: str | None = Field(
        default=None, description="who resolved it; 'system' when back in control by itself"
    )
    resolved_at: datetime | None = None
    resolution_note: str | None = None


class EvidencePublic(BaseModel):
    time: datetime
    characteristic: str
    rule: str
    chart: str
    value: float = Field(description="the point's value, or the statistic (MR, EWMA, CUSUM)")
    limit: float | None = Field(description="the limit crossed; null for pattern rules")
    limit_version: int
    message: str


class AlarmEventPublic(BaseModel):
    recorded_at: datetime = Field(
        description="the acknowledgement, escalation or resolution time for those events, "
        "otherwise the incident's last signal time when saved"
    )
    state: str
    count: int
    last_value: float
    actor: str | None = Field(
        default=None, description="who made this change (a key's name, or system); null: a signal"
    )
    note: str | None = Field(default=None, description="their comment")


class CataloguePublic(BaseModel):
    causes: list[str] = Field(description="assignable causes offered (free text allowed)")
    actions: list[str] = Field(description="corrective actions offered (free text allowed)")
    configured: bool = Field(description="false: the generic 5M1E lists (none configured)")


class AlarmDetailPublic(AlarmItemPublic):
    evidence: list[EvidencePublic] = Field(
        description="its signals: the first ones and the most recent (at most 50)"
    )
    events: list[AlarmEventPublic] = Field(description="every saved state, oldest first")
    catalogue: CataloguePublic = Field(description="what acknowledging it offers")


_Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class AcknowledgementCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: _Note = Field(description="what the operator found; required")
    cause: _Note | None = Field(
        default=None, description="assignable cause, from the catalogue or free text"
    )
    action: _Note | None = Field(
        default=None, description="corrective action taken, from the catalogue or free text"
    )


class AcknowledgementPublic(BaseModel):
    alarm: AlarmItemPublic
    acknowledged_by: str = Field(description="the name of the key that acknowledged")
    acknowledged_at: datetime
    comment: str
    cause: str | None
    action: str | None


class ResolutionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: _Note = Field(description="why it is over (what was done, what was checked)")


class ParetoEntryPublic(BaseModel):
    text: str = Field(description="the cause (or action) as first written")
    count: int
    share: float = Field(description="of all acknowledged incidents with one, 0..1")
    cumulative_share: float


class ParetoPublic(BaseModel):
    period_start: datetime
    period_end: datetime
    incidents: int = Field(description="incidents opened in the period (after the filters)")
    acknowledged: int
    without_cause: int = Field(description="acknowledged without a cause")
    causes: list[ParetoEntryPublic] = Field(description="most frequent first")
    actions: list[ParetoEntryPublic]
