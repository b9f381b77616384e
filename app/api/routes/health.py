"""Liveness (/healthz) and readiness (/readyz): open to orchestrators, no key needed."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Response, status

from app.api.deps import ServiceDep
from app.api.schemas import HealthPublic, ReadinessPublic
from app.wiring import Service
from ingest import StoreError
from ingest.spool import SpooledStore

router = APIRouter(tags=["health"])
_log = logging.getLogger(__name__)
STORE_PROBE_TIMEOUT_S = 2.0


def _collectors(service: Service) -> dict[str, bool]:
    collectors: dict[str, bool] = {}
    if service.mqtt is not None:
        collectors["mqtt"] = service.mqtt.connected
    for collector in service.opcua:
        collectors[f"opcua:{collector.endpoint}"] = collector.connected
    return collectors


@router.get("/healthz", response_model=HealthPublic)
async def read_health(service: ServiceDep) -> HealthPublic:
    """Liveness and a summary: store backend, pipeline state and collector connections."""
    spooled = service.spooled_rows
    return HealthPublic(
        status="degraded" if service.pipeline.degraded or spooled else "ok",
        store=service.store.kind,
        spooled_rows=spooled,
        characteristics=len(service.monitor.characteristics),
        collectors=_collectors(service),
    )


@router.get(
    "/readyz",
    response_model=ReadinessPublic,
    responses={503: {"model": ReadinessPublic, "description": "not ready: see the checks"}},
)
async def read_readiness(service: ServiceDep, response: Response) -> ReadinessPublic:
    """Readiness: 200 while the service can take and keep data, else 503 with the checks.

    A database that is away while the local spool takes the writes is ``degraded``, not
    unready (nothing is lost); a disconnected collector is ``degraded`` too (it
    reconnects by itself).
    """
    checks: dict[str, str] = {}
    try:  # one indexed lookup: the cheapest round trip every store backend has
        await asyncio.wait_for(service.store.active_limits(""), STORE_PROBE_TIMEOUT_S)
        checks["store"] = "ok"
    except (StoreError, TimeoutError) as exc:
        _log.warning("readiness: store probe failed: %s", exc or "timeout")
        checks["store"] = "spooling" if isinstance(service.store, SpooledStore) else "unavailable"
    if service.spooled_rows:
        checks["spool"] = f"{service.spooled_rows} rows waiting"
    if service.pipeline.degraded:
        checks["pipeline"] = "degraded"
    for name, connected in _collectors(service).items():
        checks[name] = "ok" if connected else "disconnected"
    ready = checks["store"] != "unavailable"
    degraded = any(v != "ok" for v in checks.values())
    if not ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return ReadinessPublic(
        status="unready" if not ready else "degraded" if degraded else "ok", checks=checks
    )
