"""The built-in dashboard: one HTML page and its static assets, shipped in the package.

The page is plain HTML with JavaScript modules and a vendored charting library
(``app/static/vendor/uplot``): nothing is built at install time and nothing is loaded
from another host, so it works on a plant network without internet. It reads the same
``/api/v1`` routes as any client, with the key the user enters (kept in the browser).
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

from app.errors import NotFound

router = APIRouter(tags=["dashboard"])

# scripts, styles and data only from this origin; nothing inline, no frames
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # always revalidated: an upgrade shows at the next load
}


@cache
def _assets() -> StaticFiles:
    """The package's static folder (found on first use, not at import)."""
    return StaticFiles(packages=[("app", "static")])


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def read_dashboard() -> HTMLResponse:
    """The dashboard page."""
    page = files("app").joinpath("static/index.html").read_text(encoding="utf-8")
    return HTMLResponse(page, headers=_HEADERS)


@router.get("/static/{path:path}", include_in_schema=False)
async def read_dashboard_asset(path: str, request: Request) -> Response:
    """A file of the dashboard (scripts, styles, the vendored chart library); 404 else."""
    if any(part in ("", ".", "..") for part in path.split("/")):
        raise NotFound(f"no dashboard file {path!r}")
    response = await _assets().get_response(path, request.scope)
    response.headers.update(_HEADERS)
    return response
