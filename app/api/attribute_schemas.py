"""Response models of the attribute (p) chart of a process's inspection verdicts."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class AttributeViolationPublic(BaseModel):
    rule: Literal["1", "2"] = Field(
        description='"1": beyond a limit; "2": 9 subgroups in a row on one side of p-bar'
    )
    side: Literal["high", "low"]


class AttributePointPublic(BaseModel):
    number: int = Field(
        description="the subgroup's number among the process's first-pass subgroups, "
        "counted from the oldest stored one"
    )
    first_time: datetime = Field(description="time of the subgroup's first verdict")
    time: datetime = Field(description="time of its last verdict: where the point is plotted")
    defectives: int = Field(description="nonconforming (NOK) first-pass inspections")
    n: int = Field(description="first-pass inspections in the subgroup")
    p: float = Field(description="fraction nonconforming, defectives / n")
    limit_version: int | None = Field(description="null: Phase I baseline, not judged")
    violations: list[AttributeViolationPublic]


class AttributeLimitsPublic(BaseModel):
    version: int
    center: float = Field(description="p-bar = sum of defectives / sum of n over the baseline")
    ucl: float = Field(description="p-bar + 3 sqrt(p-bar (1 - p-bar) / n), at most 1")
    lcl: float = Field(description="p-bar - 3 sqrt(p-bar (1 - p-bar) / n), at least 0")
    sigma: float = Field(description="sqrt(p-bar (1 - p-bar) / n)")
    baseline_subgroups: int = Field(description="subgroups the limits were computed from")
    created_at: datetime | None = Field(description="when the limits were frozen")
    in_force_after: datetime | None = Field(
        description="judges subgroups completed after this time: the baseline's last verdict"
    )


class BaselinePublic(BaseModel):
    collected: int = Field(description="Phase I subgroups collected")
    needed: int = Field(description="Phase I subgroups needed")
    frozen: bool = Field(description="limits are frozen (Phase II)")


class OpenSubgroupPublic(BaseModel):
    inspected: int = Field(description="first-pass inspections so far (fewer than n)")
    defectives: int
    since: datetime | None = Field(description="time of its first verdict; null when empty")


class AttributeChartPublic(BaseModel):
    process: str = Field(description="<line>.<process>")
    chart: Literal["p"] = "p"
    subgroup_size: int = Field(description="n: consecutive first-pass inspections per subgroup")
    rules: list[str] = Field(description="tests applied: 1 and 2 (see the README)")
    baseline: BaselinePublic
    limits: AttributeLimitsPublic | None = Field(description="null while Phase I collects")
    open_subgroup: OpenSubgroupPublic
    points: list[AttributePointPublic] = Field(description="oldest first")
    next_cursor: str | None = Field(
        description="pass as cursor for the older points kept in memory; null: no more"
    )
    notes: list[str]
