"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from app.api.routes import (
    alarms,
    characteristics,
    charts,
    dashboard,
    grades,
    health,
    hierarchy,
    limits,
    measurements,
    metrics,
    stream,
)
from app.body_limit import BodyLimitMiddleware
from app.errors import install_error_handlers
from app.settings import Settings
from app.wiring import Service


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the store, engine and collectors open in its lifespan, not here."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = Service.build(settings)
        app.state.service = service
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(
        title="spcmon",
        version="0.1.0",
        summary="Real-time shop-floor SPC monitoring",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.http.max_body_bytes)
    if settings.http.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.http.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "If-None-Match"],
            expose_headers=["ETag"],
        )
    routers = (health, characteristics, charts, limits, measurements, hierarchy, alarms, grades)
    for module in (*routers, stream, metrics, dashboard):
        app.include_router(module.router)
    return app
