"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import ServiceDep
from app.api.schemas import HealthPublic

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthPublic)
async def read_health(service: ServiceDep) -> HealthPublic:
    """Service health: store backend, pipeline state and collector connections."""
    collectors: dict[str, bool] = {}
    if service.mqtt is not None:
        collectors["mqtt"] = service.mqtt.connected
    for collector in service.opcua:
        collectors[f"opcua:{collector.endpoint}"] = collector.connected
    spooled = service.spooled_rows
    return HealthPublic(
        status="degraded" if service.pipeline.degraded or spooled else "ok",
        store=service.store.kind,
        spooled_rows=spooled,
        characteristics=len(service.monitor.characteristics),
        collectors=collectors,
    )
