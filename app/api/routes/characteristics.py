"""Characteristics and their live status."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Depends

from app.api.deps import ServiceDep, require
from app.api.schemas import (
    AlarmPublic,
    BaselinePublic,
    CapabilityPublic,
    CharacteristicPublic,
    LastValuePublic,
    LimitsPublic,
    StatusPublic,
)
from app.auth import Role
from app.errors import NotFound
from app.wiring import Service
from ingest import CharacteristicRecord

router = APIRouter(
    prefix="/api/v1/characteristics",
    tags=["characteristics"],
    dependencies=[Depends(require(Role.VIEWER))],
)


def _public(record: CharacteristicRecord) -> CharacteristicPublic:
    return CharacteristicPublic(**{**asdict(record), "rules": list(record.rules)})


def _record_or_404(service: Service, characteristic_id: str) -> CharacteristicRecord:
    record = service.monitor.record(characteristic_id)
    if record is None:
        raise NotFound(f"no characteristic with id {characteristic_id!r}")
    return record


@router.get("", response_model=list[CharacteristicPublic])
async def list_characteristics(
    service: ServiceDep, line: str | None = None, process: str | None = None
) -> list[CharacteristicPublic]:
    """List the monitored characteristics, optionally of one line and/or process."""
    return [
        _public(r)
        for r in service.monitor.characteristics
        if (line is None or r.line == line) and (process is None or r.process == process)
    ]


@router.get("/{characteristic_id}", response_model=CharacteristicPublic)
async def read_characteristic(characteristic_id: str, service: ServiceDep) -> CharacteristicPublic:
    """One characteristic's definition."""
    return _public(_record_or_404(service, characteristic_id))


@router.get("/{characteristic_id}/status", response_model=StatusPublic)
async def read_status(characteristic_id: str, service: ServiceDep) -> StatusPublic:
    """Live state for a dashboard tile: last value, limits, rolling capability, open alarms."""
    record = _record_or_404(service, characteristic_id)
    monitor = service.monitor
    limits = monitor.limits(record.id)
    cap = monitor.capability(record.id)
    last = monitor.last.get(record.id)
    collected, needed = monitor.baseline_progress(record.id)
    alarms = service.alarms.open_alarms(record.id)
    return StatusPublic(
        characteristic=_public(record),
        last=LastValuePublic(time=last.time, value=last.value) if last else None,
        baseline=BaselinePublic(collected=collected, needed=needed),
        limits=LimitsPublic(**asdict(limits)) if limits else None,
        capability=CapabilityPublic(**asdict(cap), window=monitor.engine.window) if cap else None,
        open_alarms=[
            AlarmPublic(**{k: v for k, v in asdict(a).items() if k != "characteristic"})
            for a in alarms
        ],
        in_control=None if limits is None else not alarms,
    )
