"""Early warnings: what the service sees coming before the chart rules fire."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from app.api.deps import ServiceDep, ViewerDep

router = APIRouter(prefix="/api/v1/warnings", tags=["alarms"])


class EarlyWarningPublic(BaseModel):
    characteristic: str
    line: str | None
    process: str | None = Field(description="qualified <line>.<process>")
    kind: str = Field(
        description="drift, capability, quiet_source, frozen_sensor, bad_quality or autocorrelation"
    )
    severity: str = Field(description="info, warning or critical")
    at: datetime = Field(description="when it was raised or last escalated")
    message: str = Field(description="a sentence for people, with numbers and units")
    details: dict[str, Any] = Field(description="the estimate, its interval and its basis")


@router.get("", response_model=list[EarlyWarningPublic])
async def list_warnings(
    service: ServiceDep,
    _: ViewerDep,
    characteristic: Annotated[str | None, Query(description="only this one's")] = None,
    line: Annotated[str | None, Query(description="only this line's")] = None,
) -> list[EarlyWarningPublic]:
    """The early warnings raised now: drift forecast to the limits, capability below its
    target (upper confidence bound), data health, autocorrelation; most severe first."""
    feed = service.warnings
    found = feed.active(characteristic) if feed is not None else []
    rank = {"critical": 0, "warning": 1, "info": 2}
    out = []
    for w in sorted(found, key=lambda w: (rank.get(w.severity, 3), w.characteristic, w.kind)):
        where = service.monitor.locate(w.characteristic)
        if line is not None and where[0] != line:
            continue
        out.append(
            EarlyWarningPublic(
                characteristic=w.characteristic,
                line=where[0] or None,
                process=where[1] or None,
                kind=w.kind,
                severity=w.severity,
                at=w.at,
                message=w.message,
                details=dict(w.details),
            )
        )
    return out
