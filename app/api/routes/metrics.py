"""Prometheus scrape endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.api.deps import ServiceDep, require
from app.auth import Role

router = APIRouter(tags=["metrics"], dependencies=[Depends(require(Role.VIEWER))])


@router.get("/metrics", response_class=Response)
async def read_metrics(service: ServiceDep) -> Response:
    """Metrics in the Prometheus text format."""
    return Response(generate_latest(service.registry), media_type=CONTENT_TYPE_LATEST)
