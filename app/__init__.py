"""app: settings, wiring, the HTTP API, metrics, CLI and the dashboard."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.main import create_app
    from app.settings import Settings

__all__ = ["Settings", "create_app"]


def __getattr__(name: str) -> Any:
    # imported on first use: the status front's process needs neither (nor numba & co)
    if name == "create_app":
        from app.main import create_app

        return create_app
    if name == "Settings":
        from app.settings import Settings

        return Settings
    raise AttributeError(f"module 'app' has no attribute {name!r}")
