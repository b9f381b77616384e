"""Records to JSON and back, losslessly, for the on-disk spool.

Times keep their microseconds and UTC offset (ISO 8601); floats use Python's shortest
repr, which reads back to the same double.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ingest.model import (
    CostCategory,
    CostEvent,
    DeadLetter,
    InspectionVerdict,
    Measurement,
    Quality,
)

Record = Measurement | InspectionVerdict | CostEvent | DeadLetter
KINDS = ("measurements", "verdicts", "cost_events", "dead_letters")


def encode(records: Sequence[Record]) -> list[dict[str, Any]]:
    return [_encode_one(r) for r in records]


def _encode_one(r: Record) -> dict[str, Any]:
    if isinstance(r, Measurement):
        return {
            "time": r.time.isoformat(),
            "characteristic": r.characteristic,
            "value": r.value,
            "ingest_id": r.ingest_id,
            "source": r.source,
            "part": r.part,
            "lot": r.lot,
            "quality": r.quality.value,
        }
    if isinstance(r, InspectionVerdict):
        return {
            "time": r.time.isoformat(),
            "process": r.process,
            "part": r.part,
            "ok": r.ok,
            "first_pass": r.first_pass,
            "ingest_id": r.ingest_id,
            "source": r.source,
            "defects": list(r.defects),
        }
    if isinstance(r, CostEvent):
        return {
            "time": r.time.isoformat(),
            "scope": r.scope,
            "category": r.category.value,
            "amount": r.amount,
            "currency": r.currency,
            "ingest_id": r.ingest_id,
            "source": r.source,
            "note": r.note,
        }
    return {
        "received_at": r.received_at.isoformat(),
        "source": r.source,
        "reason": r.reason,
        "payload": r.payload,
    }


def decode(kind: str, rows: list[dict[str, Any]]) -> list[Record]:
    """Rebuild the records of one spooled batch of ``kind`` (one of ``KINDS``)."""
    if kind == "measurements":
        return [
            Measurement(
                _time(d["time"]),
                d["characteristic"],
                d["value"],
                d["ingest_id"],
                d["source"],
                d["part"],
                d["lot"],
                Quality(d["quality"]),
            )
            for d in rows
        ]
    if kind == "verdicts":
        return [
            InspectionVerdict(
                _time(d["time"]),
                d["process"],
                d["part"],
                d["ok"],
                d["first_pass"],
                d["ingest_id"],
                d["source"],
                tuple(d["defects"]),
            )
            for d in rows
        ]
    if kind == "cost_events":
        return [
            CostEvent(
                _time(d["time"]),
                d["scope"],
                CostCategory(d["category"]),
                d["amount"],
                d["currency"],
                d["ingest_id"],
                d["source"],
                d["note"],
            )
            for d in rows
        ]
    if kind == "dead_letters":
        return [
            DeadLetter(_time(d["received_at"]), d["source"], d["reason"], d["payload"])
            for d in rows
        ]
    raise ValueError(f"unknown spool record kind {kind!r}")


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)
