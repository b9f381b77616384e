"""Live push: a Server-Sent Events stream of points, violations and alarm changes."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["stream"])
