"""The p chart of a process's first-pass inspection verdicts (``app.attribute_monitor``)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated

from fastapi import APIRouter, Query

from app.api.attribute_schemas import (
    AttributeChartPublic,
    AttributeLimitsPublic,
    AttributePointPublic,
    AttributeViolationPublic,
    BaselinePublic,
    OpenSubgroupPublic,
)
from app.api.deps import ServiceDep, ViewerDep
from app.attribute_monitor import ProcessChart, SubgroupPoint
from app.errors import BadRequest, NotFound
from app.wiring import Service

router = APIRouter(prefix="/api/v1/processes", tags=["attribute charts"])
ERRORS: dict[int | str, dict[str, str]] = {
    404: {"description": "unknown process"},
    422: {"description": "a parameter the service cannot use"},
}


@router.get("/{process_id}/attribute-chart", response_model=AttributeChartPublic, responses=ERRORS)
async def read_attribute_chart(
    process_id: str,
    service: ServiceDep,
    _: ViewerDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="points per page, newest")] = 100,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> AttributeChartPublic:
    """The live p chart of a process's first-pass inspections (``<line>.<process>``).

    Subgroups of n consecutive first-pass verdicts (re-inspections are left out), their
    fraction nonconforming p, the frozen limits (p-bar +/- 3 sqrt(p-bar (1 - p-bar) / n))
    and violations of tests 1 and 2; while Phase I collects, its progress and no limits.
    The newest ``limit`` points; older ones kept in memory (the last 1,000 subgroups)
    through ``cursor=next_cursor``.
    """
    state = _chart_or_404(service, process_id)
    before = _decode(cursor) if cursor is not None else None
    older = [p for p in state.points if before is None or p.number < before]
    page = older[-limit:]
    more = len(older) > len(page)
    return _public(state, page, _encode(page[0].number) if more else None)


def _chart_or_404(service: Service, process_id: str) -> ProcessChart:
    if service.attributes is None or process_id not in service.monitor.process_ids():
        raise NotFound(
            f"no process with id {process_id!r}; processes are named <line>.<process>, "
            "e.g. line2.vision"
        )
    return service.attributes.chart(process_id)


def _public(
    state: ProcessChart, page: list[SubgroupPoint], next_cursor: str | None
) -> AttributeChartPublic:
    chart = state.chart
    collected, needed = chart.baseline_progress()
    units, defectives = chart.open_subgroup
    limits, stored = chart.limits, state.stored
    notes = []
    if limits is None:
        notes.append(
            f"Phase I: {collected} of {needed} subgroups of {chart.subgroup_size} first-pass "
            "inspections collected; limits freeze when the baseline is complete"
        )
    if not state.points:
        notes.append("no complete subgroup of first-pass inspections yet")
    return AttributeChartPublic(
        process=state.process,
        subgroup_size=chart.subgroup_size,
        rules=sorted(chart.rules.enabled),
        baseline=BaselinePublic(collected=collected, needed=needed, frozen=limits is not None),
        limits=None
        if limits is None
        else AttributeLimitsPublic(
            version=limits.version,
            center=limits.center,
            ucl=limits.ucl,
            lcl=limits.lcl,
            sigma=limits.sigma,
            baseline_subgroups=limits.baseline_n,
            created_at=stored.created_at if stored else None,
            in_force_after=stored.in_force_after if stored else None,
        ),
        open_subgroup=OpenSubgroupPublic(
            inspected=units, defectives=int(defectives), since=state.open_since
        ),
        points=[
            AttributePointPublic(
                number=p.number,
                first_time=p.first_time,
                time=p.time,
                defectives=p.defectives,
                n=p.n,
                p=p.p,
                limit_version=p.limit_version,
                violations=[
                    AttributeViolationPublic(rule=v.rule, side=v.side) for v in p.violations
                ],
            )
            for p in page
        ],
        next_cursor=next_cursor,
        notes=notes,
    )


def _encode(before: int) -> str:
    raw = json.dumps({"before": before}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode(text: str) -> int:
    try:
        before = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))["before"]
        if type(before) is not int:
            raise ValueError
        return before
    except (ValueError, TypeError, KeyError, binascii.Error):
        raise BadRequest(
            "cursor: not a cursor from a previous page; pass next_cursor unchanged"
        ) from None
