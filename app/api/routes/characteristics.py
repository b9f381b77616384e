"""Characteristics: their definitions (read, create, edit, delete) and live status."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from app.api.characteristic_schemas import CharacteristicCreate, CharacteristicUpdate
from app.api.deps import EngineerDep, ServiceDep, require
from app.api.schemas import CharacteristicPublic, StatusPublic
from app.api.status_view import public_characteristic, selected, status_answer
from app.auth import Role
from app.errors import BadRequest, Conflict, NotFound
from app.status_poll import etag_matches
from app.wiring import Service, characteristic_record
from ingest import CharacteristicRecord

router = APIRouter(
    prefix="/api/v1/characteristics",
    tags=["characteristics"],
    dependencies=[Depends(require(Role.VIEWER))],
)


def record_or_404(service: Service, characteristic_id: str) -> CharacteristicRecord:
    """The registered characteristic, or a 404 naming the id."""
    record = service.monitor.record(characteristic_id)
    if record is None:
        raise NotFound(f"no characteristic with id {characteristic_id!r}")
    return record


def _editable(service: Service, characteristic_id: str) -> CharacteristicRecord:
    record = record_or_404(service, characteristic_id)
    if record.origin != "api":
        raise Conflict(
            f"characteristic {characteristic_id!r} is defined in the plant file "
            f"({service.settings.config}); edit it there and restart the service"
        )
    return record


@router.get("", response_model=list[CharacteristicPublic])
async def list_characteristics(
    service: ServiceDep, line: str | None = None, process: str | None = None
) -> list[CharacteristicPublic]:
    """List the monitored characteristics, optionally of one line and/or process.

    ``process`` is ``line.process`` (as in /processes) or a bare process id.
    """
    return [
        public_characteristic(r)
        for r in service.monitor.characteristics
        if selected(r, line, process)
    ]


@router.post(
    "",
    response_model=CharacteristicPublic,
    status_code=status.HTTP_201_CREATED,
    responses={409: {"description": "the id is taken"}},
)
async def create_characteristic(
    body: CharacteristicCreate, service: ServiceDep, response: Response, _: EngineerDep
) -> CharacteristicPublic:
    """Create a characteristic (engineer); it is charted from its first pushed point."""
    window = service.settings.spc.window
    if window % body.subgroup_size:
        raise BadRequest(
            f"subgroup_size: {body.subgroup_size} does not divide the capability window of "
            f"{window} values (SPCMON_SPC__WINDOW); choose a divisor of it"
        )
    async with service.edit_lock:
        if body.id in service.monitor:
            raise Conflict(f"a characteristic with id {body.id!r} exists")
        record = characteristic_record(body.line, body.process, body, origin="api")
        await service.store.upsert_characteristics([record])
        service.monitor.register(record)
    response.headers["Location"] = f"{router.prefix}/{record.id}"
    return public_characteristic(record)


@router.get("/{characteristic_id}", response_model=CharacteristicPublic)
async def read_characteristic(characteristic_id: str, service: ServiceDep) -> CharacteristicPublic:
    """One characteristic's definition."""
    return public_characteristic(record_or_404(service, characteristic_id))


@router.patch(
    "/{characteristic_id}",
    response_model=CharacteristicPublic,
    responses={409: {"description": "defined in the plant file, or a chart change"}},
)
async def update_characteristic(
    characteristic_id: str, body: CharacteristicUpdate, service: ServiceDep, _: EngineerDep
) -> CharacteristicPublic:
    """Edit an API-created characteristic (engineer): spec limits, rules, EWMA/CUSUM, names."""
    async with service.edit_lock:
        record = _editable(service, characteristic_id)
        changes = body.model_dump(exclude_unset=True)
        for name in ("chart", "subgroup_size"):
            if name in changes and changes[name] != getattr(record, name):
                raise Conflict(
                    f"{name}: the frozen limits belong to the current chart "
                    f"({record.chart}, subgroups of {record.subgroup_size}); create a new "
                    "characteristic for a different chart"
                )
        merged = _merged(record, changes)
        updated = characteristic_record(record.line, record.process, merged, origin="api")
        await service.store.upsert_characteristics([updated])
        async with service.pipeline.exclusive():  # no batch half charted into either row
            await service.monitor.replace(updated)
    return public_characteristic(updated)


def _merged(record: CharacteristicRecord, changes: dict[str, Any]) -> CharacteristicCreate:
    current: dict[str, Any] = {
        "id": record.id, "name": record.name, "unit": record.unit, "line": record.line,
        "process": record.process, "lsl": record.lsl, "usl": record.usl,
        "target": record.target, "chart": record.chart,
        "subgroup_size": record.subgroup_size,
        "rules": record.rules[0] if len(record.rules) == 1 and not record.rules[0].isdigit()
        else record.rules,
        "ewma": dict(zip(("lam", "L"), record.ewma, strict=True)) if record.ewma else None,
        "cusum": dict(zip(("k", "h"), record.cusum, strict=True)) if record.cusum else None,
    }  # fmt: skip
    try:
        return CharacteristicCreate.model_validate({**current, **changes})
    except ValidationError as exc:  # the edit makes the whole definition inconsistent
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        ) from exc


@router.delete(
    "/{characteristic_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={409: {"description": "defined in the plant file"}},
)
async def delete_characteristic(
    characteristic_id: str, service: ServiceDep, _: EngineerDep
) -> None:
    """Stop monitoring an API-created characteristic (engineer); its stored data are kept."""
    async with service.edit_lock:
        _editable(service, characteristic_id)
        service.monitor.unregister(characteristic_id)
        if service.warnings is not None:
            service.warnings.forget(characteristic_id)  # its waiting values and warnings
        service.status_answers.forget(characteristic_id)  # its cached answers and parts
        await service.store.delete_characteristic(characteristic_id)


@router.get(
    "/{characteristic_id}/status",
    response_model=StatusPublic,
    responses={304: {"description": "unchanged since the ETag sent in If-None-Match"}},
)
async def read_status(characteristic_id: str, service: ServiceDep, request: Request) -> Response:
    """Live state for a dashboard tile: last value, limits, capability, alarms, grade.

    Answers carry an ``ETag``; send it back in ``If-None-Match`` to get a bodiless 304
    while nothing changed.
    """
    record = record_or_404(service, characteristic_id)
    body, etag = status_answer(service, record)
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if etag_matches(etag, request.headers.get("if-none-match", "")):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(body, media_type="application/json", headers=headers)
