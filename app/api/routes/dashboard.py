"""The built-in dashboard page (static HTML that polls the status API)."""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["dashboard"])


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def read_dashboard() -> HTMLResponse:
    """The line dashboard."""
    page = files("app").joinpath("static/dashboard.html").read_text(encoding="utf-8")
    return HTMLResponse(page)
