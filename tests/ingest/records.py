"""Builders of valid records for the ingest and alerts tests; override what a test is about."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ingest.model import CostCategory, CostEvent, InspectionVerdict, Measurement, Quality
from ingest.store import CharacteristicRecord

T0 = datetime(2025, 3, 14, 8, 0, 0, 123456, tzinfo=UTC)
"""A fixed past instant with microseconds, so round trips are checked to the microsecond."""


def measurement(i: int = 0, **overrides: Any) -> Measurement:
    """The i-th reading of characteristic ``c1``, one second apart."""
    fields: dict[str, Any] = {
        "time": T0 + timedelta(seconds=i),
        "characteristic": "c1",
        "value": 10.0 + i / 100,
        "ingest_id": f"m-{i}",
        "source": "test",
        "part": f"S{i:04d}",
        "lot": "L1",
        "quality": Quality.GOOD,
    }
    fields.update(overrides)
    return Measurement(**fields)


def verdict(i: int = 0, **overrides: Any) -> InspectionVerdict:
    fields: dict[str, Any] = {
        "time": T0 + timedelta(seconds=i),
        "process": "line2.vision",
        "part": f"S{i:04d}",
        "ok": True,
        "first_pass": True,
        "ingest_id": f"v-{i}",
        "source": "test",
        "defects": (),
    }
    fields.update(overrides)
    return InspectionVerdict(**fields)


def cost_event(i: int = 0, **overrides: Any) -> CostEvent:
    fields: dict[str, Any] = {
        "time": T0 + timedelta(seconds=i),
        "scope": "line1",
        "category": CostCategory.SCRAP,
        "amount": 120.5,
        "currency": "CNY",
        "ingest_id": f"c-{i}",
        "source": "test",
        "note": None,
    }
    fields.update(overrides)
    return CostEvent(**fields)


def characteristic(char_id: str = "c1", **overrides: Any) -> CharacteristicRecord:
    fields: dict[str, Any] = {
        "id": char_id,
        "name": "Shaft diameter",
        "unit": "mm",
        "line": "line1",
        "process": "turning",
        "lsl": 24.95,
        "usl": 25.05,
        "target": 25.0,
        "chart": "imr",
        "subgroup_size": 1,
        "rules": ("1",),
        "source_kind": "opcua",
        "source_address": "ns=2;s=Demo/line1/turning/diameter",
        "origin": "config",
    }
    fields.update(overrides)
    return CharacteristicRecord(**fields)
