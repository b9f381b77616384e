"""app: settings, wiring, the HTTP API, metrics, CLI and the dashboard."""

from app.main import create_app
from app.settings import Settings

__all__ = ["Settings", "create_app"]
