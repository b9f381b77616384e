"""The dashboard's status poll, read off the raw ASGI request and answered from bytes.

Shared by the two places that answer ``GET /api/v1/characteristics/{id}/status`` ahead
of FastAPI's routing: the service itself (``app.fast_status``) and the status front
(``app.status_front``), which holds copies of the answers in another process. Kept free
of the service's modules so that the front starts small.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import Scope, Send

from app.auth import KeyRing, Role, grants

PREFIX = "/api/v1/characteristics/"
SUFFIX = "/status"


@dataclass(frozen=True, slots=True)
class StatusPoll:
    """A request that may be a status poll: whose status, with which key and tag."""

    characteristic: str
    token: str | None  # the API key as FastAPI's HTTPBearer, then APIKeyHeader, reads it
    if_none_match: str | None


def status_poll(scope: Scope) -> StatusPoll | None:
    """The poll in an HTTP scope, or ``None`` if the request is anything else.

    ``None`` too for a request with an ``Origin`` header: CORS answers carry headers only
    the middleware adds, so those take the routed way.
    """
    path = route_path(scope)
    if scope["method"] != "GET" or not path.startswith(PREFIX) or not path.endswith(SUFFIX):
        return None
    characteristic = path[len(PREFIX) : -len(SUFFIX)]
    if not characteristic or "/" in characteristic:
        return None
    authorization = api_key = if_none_match = None
    for name, value in scope["headers"]:  # ASGI: names are lower-case
        if name == b"origin":
            return None
        if name == b"authorization" and authorization is None:
            authorization = value.decode("latin-1")
        elif name == b"x-api-key" and api_key is None:
            api_key = value.decode("latin-1")
        elif name == b"if-none-match" and if_none_match is None:
            if_none_match = value.decode("latin-1")
    return StatusPoll(characteristic, _token(authorization, api_key), if_none_match)


def may_read(keys: KeyRing, anonymous_read: bool, token: str | None) -> bool:
    """Whether the caller would pass the routes' viewer check (no key: anonymous read)."""
    if token is None:
        return anonymous_read
    key = keys.verify(token)
    return key is not None and grants(key.role, Role.VIEWER)


async def send_status(send: Send, body: bytes, etag: str, if_none_match: str | None) -> None:
    """The route's answer: 200 with the body, or 304 when ``If-None-Match`` names the tag."""
    headers = [(b"etag", etag.encode("latin-1")), (b"cache-control", b"no-cache")]
    if if_none_match is not None and etag_matches(etag, if_none_match):
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    headers += [
        (b"content-length", str(len(body)).encode("latin-1")),
        (b"content-type", b"application/json"),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def etag_matches(etag: str, if_none_match: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (weak comparison, RFC 9110 13.1.2)."""
    tags = (tag.strip().removeprefix("W/") for tag in if_none_match.split(","))
    return etag in tags or if_none_match.strip() == "*"


def route_path(scope: Scope) -> str:
    """The path the router matches: without the root path (``--root-path``, a proxy's
    prefix), which uvicorn leaves in ``path``."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] == "/":
        return path[len(root) :]
    return path


def _token(authorization: str | None, api_key: str | None) -> str | None:
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    return api_key or None
