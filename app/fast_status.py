"""``GET /api/v1/characteristics/{id}/status`` answered before FastAPI's routing.

Dashboards poll every tile's status each second. Through the middleware stack and the
dependency solving, one answer cost about 0.6 ms of CPU, two thirds of it machinery
(sampled with py-spy under ``benchmarks.api_load``). A request that will certainly
succeed (a known characteristic, a key that may read, no CORS ``Origin``) is answered
here from the same cache, with the same status, headers and body as the route. Anything
else, every error included, goes the usual way, so answers keep one shape and one set of
rules.
"""

from __future__ import annotations

import logging

from starlette.types import Scope, Send

from app.api.deps import principal_for
from app.api.status_view import etag_matches, status_answer
from app.auth import Role, grants
from app.errors import Unauthorized
from app.wiring import Service

PREFIX = "/api/v1/characteristics/"
SUFFIX = "/status"

_log = logging.getLogger(__name__)


async def answer_status(service: Service, scope: Scope, send: Send) -> bool:
    """Send the status answer if this request is one the route would answer with 200/304.

    Returns ``False``, having sent nothing, for any other request.
    """
    path = _route_path(scope)
    if scope["method"] != "GET" or not path.startswith(PREFIX) or not path.endswith(SUFFIX):
        return False
    characteristic = path[len(PREFIX) : -len(SUFFIX)]
    if not characteristic or "/" in characteristic:
        return False
    authorization = api_key = if_none_match = None
    for name, value in scope["headers"]:  # ASGI: names are lower-case
        if name == b"origin":
            return False  # CORS answers carry headers only the middleware adds
        if name == b"authorization" and authorization is None:
            authorization = value.decode("latin-1")
        elif name == b"x-api-key" and api_key is None:
            api_key = value.decode("latin-1")
        elif name == b"if-none-match" and if_none_match is None:
            if_none_match = value.decode("latin-1")
    try:
        principal = principal_for(service, _token(authorization, api_key))
        record = service.monitor.record(characteristic)
        if record is None or not grants(principal.role, Role.VIEWER):
            return False
        body, etag = status_answer(service, record)
    except Unauthorized:
        return False
    except Exception:  # the route meets it again and answers with the usual problem
        _log.exception("status of %s: the fast path failed; handing over", characteristic)
        return False
    headers = [(b"etag", etag.encode("latin-1")), (b"cache-control", b"no-cache")]
    if if_none_match is not None and etag_matches(etag, if_none_match):
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return True
    headers += [
        (b"content-length", str(len(body)).encode("latin-1")),
        (b"content-type", b"application/json"),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    return True


def _route_path(scope: Scope) -> str:
    """The path the router matches: without the root path (``--root-path``, a proxy's
    prefix), which uvicorn leaves in ``path``."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] == "/":
        return path[len(root) :]
    return path


def _token(authorization: str | None, api_key: str | None) -> str | None:
    """The key as FastAPI's HTTPBearer, then APIKeyHeader, would read it."""
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    return api_key or None
