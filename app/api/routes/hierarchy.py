"""The plant hierarchy (plant, lines, processes) with a status summary per level."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["hierarchy"])
