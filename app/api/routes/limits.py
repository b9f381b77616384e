"""Versioned control limits and their audited recalculation."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["limits"])
