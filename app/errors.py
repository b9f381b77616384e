"""The one place where exceptions become HTTP responses (RFC 9457 problem+json).

AppError
 ├── BadRequest         422: a parameter the service cannot use (named in the detail)
 ├── Unauthorized       401: no key, or a key that is not valid
 ├── Forbidden          403: the key's role does not allow this
 ├── NotFound           404: the named resource does not exist
 ├── Conflict           409: the request clashes with the resource's state
 └── PreconditionFailed 412: If-Match does not match the current version
Request validation errors become 422 with every offending field listed, a StoreError
503; anything unexpected becomes a 500 without a traceback.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ingest import StoreError
from ingest.mes import rejected_body_letter

_log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"
DEAD_LETTER_PATHS = {"/api/v1/measurements"}


class AppError(Exception):
    status = 500
    title = "Internal error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(AppError):
    status = 404
    title = "Not found"


class Unauthorized(AppError):
    status = 401
    title = "Unauthorized"


class Forbidden(AppError):
    status = 403
    title = "Forbidden"


class Conflict(AppError):
    status = 409
    title = "Conflict"


class PreconditionFailed(AppError):
    status = 412
    title = "Precondition failed"


class BadRequest(AppError):
    """A query parameter the service cannot use; the detail names it."""

    status = 422
    title = "Invalid request"


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def field_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    """Each validation error as {field, problem}, the field as a dotted path."""
    return [
        {"field": ".".join(str(p) for p in err["loc"]), "problem": err["msg"]}
        for err in exc.errors()
    ]


async def _keep_rejected_body(request: Request, errors: list[dict[str, Any]]) -> None:
    """A pushed body refused whole is still kept, verbatim, as a dead letter."""
    try:
        body = await request.body()
        letter = rejected_body_letter(body, errors, datetime.now(UTC))
        await request.app.state.service.store.add_dead_letters([letter])
    except Exception:  # the 422 answer matters more than the copy; log loudly
        _log.exception("could not keep a rejected request body as a dead letter")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> JSONResponse:
        response = problem(exc.status, exc.title, exc.detail)
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {
            400: "Bad request",
            404: "Not found",
            405: "Method not allowed",
            413: "Content too large",
        }
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route {request.url.path}; the API is described at /docs"
        if exc.status_code == 400 and request.method == "POST":
            detail = "the body is not valid JSON in UTF-8"  # FastAPI's parse failure
            if request.url.path in DEAD_LETTER_PATHS:
                await _keep_rejected_body(request, [{"loc": ("body",), "msg": detail}])
        response = problem(exc.status_code, titles.get(exc.status_code, "Error"), detail)
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = field_errors(exc)
        if request.method == "POST" and request.url.path in DEAD_LETTER_PATHS:
            await _keep_rejected_body(request, list(exc.errors()))
        summary = "; ".join(f"{e['field']}: {e['problem']}" for e in errors[:5])
        return problem(422, "Invalid request", summary, errors=errors)

    @app.exception_handler(StoreError)
    async def _store(request: Request, exc: StoreError) -> JSONResponse:
        _log.error("store error on %s: %s", request.url.path, exc)
        return problem(503, "Store unavailable", "the measurement store cannot serve right now")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        _log.exception("unhandled error on %s", request.url.path)
        return problem(500, "Internal error", "an unexpected error occurred; see the service log")
