"""Alarms: list, read, acknowledge."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["alarms"])
