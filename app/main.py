"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.api.routes import characteristics, dashboard, grades, health, measurements, metrics
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
    for module in (health, characteristics, measurements, grades, metrics, dashboard):
        app.include_router(module.router)
    return app
