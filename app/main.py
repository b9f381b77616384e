"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from starlette.types import Receive, Scope, Send

from app.api.routes import (
    alarms,
    attribute_charts,
    characteristics,
    charts,
    dashboard,
    grades,
    health,
    hierarchy,
    limits,
    measurements,
    metrics,
    session,
    stream,
    warnings,
)
from app.api.schemas import ProblemPublic
from app.body_limit import BodyLimitMiddleware
from app.errors import PROBLEM, install_error_handlers
from app.fast_status import answer_status
from app.settings import Settings
from app.status_feed import StatusFeed
from app.wiring import Service

_PROBLEM_REF = "#/components/schemas/ProblemPublic"
_PROBLEMS = {
    400: "the body cannot be read (not UTF-8 JSON)",
    401: "no key, or a key that is not valid",
    403: "the key's role does not allow this",
    404: "no such resource (or route)",
    413: "the request body is over the size limit",
    422: "invalid input: each field and its problem",
    500: "an unexpected error (details in the service log, never in the answer)",
    503: "the store cannot serve right now",
}
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": text, "content": {PROBLEM: {"schema": {"$ref": _PROBLEM_REF}}}}
    for status, text in _PROBLEMS.items()
}


def _with_problem_schema(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, with the problem+json schema every error answer refers to."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            routes=app.routes,
        )
        for operation in (op for path in schema["paths"].values() for op in path.values()):
            for status, answer in operation.get("responses", {}).items():
                if status[0] in "45":  # every error answer is problem+json, whatever the route
                    answer["content"] = {PROBLEM: {"schema": {"$ref": _PROBLEM_REF}}}
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["ProblemPublic"] = ProblemPublic.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        app.openapi_schema = schema
    return app.openapi_schema


class SpcmonApp(FastAPI):
    """FastAPI with the status poll answered first (see ``app.fast_status``)."""

    fast_status = True  # off: every request takes the routed way (used to compare the two)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.fast_status and scope["type"] == "http":
            service = getattr(self.state, "service", None)
            if service is not None and await answer_status(service, scope, send):
                return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, status_feed: Path | None = None) -> SpcmonApp:
    """Build the app; the store, engine and collectors open in its lifespan, not here.

    ``status_feed``: a Unix socket path on which to send the status answers to the
    status front (``app.status_feed``), when the service runs behind one.
    """
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = Service.build(settings)
        app.state.service = service
        await service.start()
        feed = None
        if status_feed is not None:
            feed = StatusFeed(service, status_feed, settings.http.status_front_refresh_s)
            await feed.start()
        try:
            yield
        finally:
            if feed is not None:
                await feed.stop()
            await service.stop()

    app = SpcmonApp(
        title="spcmon",
        version=settings.version,
        summary="Real-time shop-floor SPC monitoring",
        lifespan=lifespan,
        responses=PROBLEM_RESPONSES,
    )
    app.openapi = lambda: _with_problem_schema(app)  # type: ignore[method-assign]
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.http.max_body_bytes)
    if settings.http.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.http.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=[
                "Authorization",
                "X-API-Key",
                "Content-Type",
                "If-None-Match",
                "Last-Event-ID",
            ],
            expose_headers=["ETag"],
        )
    routers = (
        health, characteristics, charts, limits, measurements, hierarchy, alarms, warnings,
        grades, attribute_charts, session,
    )  # fmt: skip
    for module in (*routers, stream, metrics, dashboard):
        app.include_router(module.router)
    return app
