"""The plant hierarchy (plant, lines, processes) with a status summary per level.

Processes are identified as ``<line>.<process>`` (e.g. ``line1.turning``), as in the
grades; the summaries' conventions are in ``app.summaries``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import ServiceDep, ViewerDep
from app.api.query_schemas import (
    CharacteristicSummaryPublic,
    LinePublic,
    LineSummaryPublic,
    PlantPublic,
    ProcessPublic,
    ProcessSummaryPublic,
    SummaryPublic,
)
from app.errors import NotFound
from app.summaries import (
    CharacteristicStatus,
    LineNode,
    PlantNode,
    ProcessNode,
    Summary,
    build_hierarchy,
    control_state,
    rolling_cpk,
)
from app.wiring import Service
from ingest import CharacteristicRecord

router = APIRouter(prefix="/api/v1", tags=["hierarchy"])


def _status(service: Service, record: CharacteristicRecord) -> CharacteristicStatus:
    monitor = service.monitor
    alarms = service.alarms.open_alarms(record.id)
    acknowledged = sum(a.state == "acknowledged" for a in alarms)
    cap = monitor.capability(record.id)
    last = monitor.last.get(record.id)
    return CharacteristicStatus(
        id=record.id,
        name=record.name,
        unit=record.unit,
        line=record.line,
        process=record.process,
        origin=record.origin,
        state=control_state(monitor.limits(record.id) is not None, len(alarms)),
        open_alarms=len(alarms) - acknowledged,
        acknowledged_alarms=acknowledged,
        cpk=rolling_cpk(cap.cpk, cap.n, record.subgroup_size) if cap else None,
        last_time=last.time if last else None,
        last_value=last.value if last else None,
    )


def _hierarchy(service: Service) -> PlantNode:
    statuses = [_status(service, r) for r in service.monitor.characteristics]
    return build_hierarchy(service.plant, statuses)


def _summary(s: Summary) -> SummaryPublic:
    return SummaryPublic(
        characteristics=s.characteristics,
        in_control=s.in_control,
        out_of_control=s.out_of_control,
        baseline=s.baseline,
        open_alarms=s.open_alarms,
        acknowledged_alarms=s.acknowledged_alarms,
        worst_cpk=s.worst_cpk,
        worst_cpk_characteristic=s.worst_cpk_characteristic,
        last_data_at=s.last_data_at,
    )


def _line(node: LineNode) -> LineSummaryPublic:
    return LineSummaryPublic(
        id=node.id, name=node.name, origin=node.origin, summary=_summary(node.summary)
    )


def _process(node: ProcessNode) -> ProcessSummaryPublic:
    return ProcessSummaryPublic(
        id=node.id,
        line=node.line,
        process=node.process,
        name=node.name,
        origin=node.origin,
        summary=_summary(node.summary),
    )


def _characteristic(s: CharacteristicStatus) -> CharacteristicSummaryPublic:
    return CharacteristicSummaryPublic(
        id=s.id,
        name=s.name,
        unit=s.unit,
        state=s.state,
        open_alarms=s.open_alarms,
        acknowledged_alarms=s.acknowledged_alarms,
        cpk=s.cpk,
        last_data_at=s.last_time,
        last_value=s.last_value,
        origin=s.origin,
    )


@router.get("/plant", response_model=PlantPublic)
async def read_plant(service: ServiceDep, _: ViewerDep) -> PlantPublic:
    """The plant with its status summary and each line's."""
    plant = _hierarchy(service)
    return PlantPublic(
        id=plant.id,
        name=plant.name,
        summary=_summary(plant.summary),
        lines=[_line(line) for line in plant.lines],
    )


@router.get("/lines", response_model=list[LineSummaryPublic])
async def list_lines(service: ServiceDep, _: ViewerDep) -> list[LineSummaryPublic]:
    """The lines with a status summary each."""
    return [_line(line) for line in _hierarchy(service).lines]


@router.get(
    "/lines/{line_id}", response_model=LinePublic, responses={404: {"description": "no such line"}}
)
async def read_line(line_id: str, service: ServiceDep, _: ViewerDep) -> LinePublic:
    """One line's status summary and its processes' summaries."""
    node = next((line for line in _hierarchy(service).lines if line.id == line_id), None)
    if node is None:
        raise NotFound(f"no line with id {line_id!r}")
    return LinePublic(**_line(node).model_dump(), processes=[_process(p) for p in node.processes])


@router.get("/processes", response_model=list[ProcessSummaryPublic])
async def list_processes(
    service: ServiceDep,
    _: ViewerDep,
    line: Annotated[str | None, Query(description="only the processes of this line")] = None,
) -> list[ProcessSummaryPublic]:
    """The processes (ids ``<line>.<process>``) with a status summary each."""
    return [_process(p) for p in _hierarchy(service).processes if line is None or p.line == line]


@router.get(
    "/processes/{process_id}",
    response_model=ProcessPublic,
    responses={404: {"description": "no such process"}},
)
async def read_process(process_id: str, service: ServiceDep, _: ViewerDep) -> ProcessPublic:
    """One process (``<line>.<process>``, e.g. ``line1.turning``) and its characteristics."""
    node = next((p for p in _hierarchy(service).processes if p.id == process_id), None)
    if node is None:
        raise NotFound(
            f"no process with id {process_id!r}; processes are named <line>.<process>, "
            "e.g. line1.turning"
        )
    return ProcessPublic(
        **_process(node).model_dump(),
        characteristics=[_characteristic(c) for c in node.characteristics],
    )
