"""Control-chart points and capability reports of one characteristic."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["charts"])
