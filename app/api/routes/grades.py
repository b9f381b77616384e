"""Quality grades of the plant, its lines, processes and characteristics."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, Depends, Query

from app.api.deps import ServiceDep, require
from app.api.schemas import (
    EntityGradePublic,
    GradeSnapshotPublic,
    MetricGradePublic,
    PeriodPublic,
    PlantGradesPublic,
)
from app.auth import Role
from app.errors import BadRequest, NotFound
from app.grading import Graded, PlantGrades, grade_plant
from app.periods import parse_period
from app.wiring import Service
from spc.grades import MetricGrade, grade

router = APIRouter(
    prefix="/api/v1/grades", tags=["grades"], dependencies=[Depends(require(Role.VIEWER))]
)

PERIOD = Query(
    default=None,
    description="7d, 24h (ending now) or 2026-01-01/2026-03-31 (whole UTC days); default 30d",
)
QUANTITATIVE_ONLY = (
    "quantitative quality performance only; the qualitative criteria (management "
    "system, digitalisation, culture, strategy) are not judged"
)


async def _grades(service: Service, period: str | None) -> PlantGrades:
    now = datetime.now(UTC)
    try:
        parsed = parse_period(period, now)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    return await grade_plant(service.monitor, service.store, service.plant.plant.id, parsed, now)


@router.get("", response_model=PlantGradesPublic)
async def read_plant_grades(service: ServiceDep, period: str | None = PERIOD) -> PlantGradesPublic:
    """The plant's grade and each line's, with the limiting metric of each."""
    grades = await _grades(service, period)
    plant = grades.of_level("plant")[0]
    return PlantGradesPublic(
        period=_period(grades),
        computed_at=grades.computed_at,
        scope=QUANTITATIVE_ONLY,
        plant=_public(plant, grades),
        lines=[_public(g, grades) for g in grades.of_level("line")],
    )


@router.get("/{level}/{entity_id}", response_model=EntityGradePublic)
async def read_entity_grade(
    service: ServiceDep,
    level: Literal["plant", "line", "process", "characteristic"],
    entity_id: str,
    period: str | None = PERIOD,
) -> EntityGradePublic:
    """One entity's grade with every metric, its basis and what the next grade needs.

    Processes are named ``<line>.<process>`` (e.g. ``line2.vision``).
    """
    grades = await _grades(service, period)
    graded = grades.get(level, entity_id)
    if graded is None:
        raise NotFound(f"no {level} with id {entity_id!r}")
    return _public(graded, grades)


@router.get("/{level}/{entity_id}/history", response_model=list[GradeSnapshotPublic])
async def read_grade_history(
    service: ServiceDep,
    level: Literal["plant", "line", "process", "characteristic"],
    entity_id: str,
    period: str | None = PERIOD,
) -> list[GradeSnapshotPublic]:
    """The stored snapshots of one entity in the period, oldest first (the trend)."""
    try:
        parsed = parse_period(period, datetime.now(UTC))
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    snapshots = await service.store.grade_history(level, entity_id, parsed.start, parsed.end)
    return [
        GradeSnapshotPublic(
            taken_at=s.taken_at,
            grade=s.grade,
            grade_en=grade(s.grade).en if s.grade else None,
            grade_zh=grade(s.grade).zh if s.grade else None,
            limiting_metric=s.limiting_metric,
            metrics=dict(s.metrics),
        )
        for s in snapshots
    ]


def _period(grades: PlantGrades) -> PeriodPublic:
    p = grades.period
    return PeriodPublic(start=p.start, end=p.end, label=p.label, cpk_from=grades.cpk_from)


def _public(graded: Graded, grades: PlantGrades) -> EntityGradePublic:
    result = graded.result
    children = (
        [grades.get(_CHILD[graded.level], child) for child in graded.children]
        if graded.level in _CHILD
        else []
    )
    return EntityGradePublic(
        level=graded.level,
        id=graded.id,
        grade=result.grade,
        grade_en=grade(result.grade).en if result.grade else None,
        grade_zh=grade(result.grade).zh if result.grade else None,
        ceiling=result.ceiling,
        limiting_metric=result.limiting.value if result.limiting else None,
        insufficient=[m.value for m in result.insufficient],
        metrics=[_metric(m) for m in result.metrics],
        children={c.id: c.result.grade for c in children if c is not None},
        capability_sigma_level=graded.capability_sigma,
        period=_period(grades),
        computed_at=grades.computed_at,
    )


def _metric(m: MetricGrade) -> MetricGradePublic:
    return MetricGradePublic(
        metric=m.metric.value,
        value=m.value,
        basis=m.basis,
        grade=m.grade,
        grade_en=grade(m.grade).en if m.grade else None,
        grade_zh=grade(m.grade).zh if m.grade else None,
        next_target=m.next_target,
        note=m.note,
        interval=m.interval,
    )


_CHILD = {"plant": "line", "line": "process", "process": "characteristic"}
