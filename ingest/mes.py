"""Normalisation behind the MES push (``POST /api/v1/measurements``).

The body's shape is validated by pydantic (a malformed body is refused whole, with the
path of each bad field). Rows that are well-formed but unacceptable (unknown
characteristic, timestamp in the future, ...) are rejected one by one with their index
and reason and kept as dead letters, while the good rows of the same batch are accepted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Container
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from ingest.errors import InvalidRecord
from ingest.model import (
    CostCategory,
    CostEvent,
    DeadLetter,
    InspectionVerdict,
    Measurement,
    Quality,
)
from ingest.pipeline import Submission

SOURCE = "http:mes"
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Text = Annotated[str, Field(min_length=1, max_length=256)]


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MeasurementIn(_Row):
    characteristic: Text
    value: FiniteFloat
    time: AwareDatetime
    part: Text | None = None
    lot: Text | None = None
    ingest_id: Annotated[str, Field(min_length=1, max_length=128)] | None = Field(
        default=None,
        description="the sender's own unique id of this reading: a row resent with the same "
        "id is stored once (default: derived from the batch key or the row's content)",
    )
    quality: Quality = Field(
        default=Quality.GOOD,
        description="good, uncertain or bad: only good values are charted; all are stored",
    )


class VerdictIn(_Row):
    process: Text = Field(description="qualified process id, e.g. line2.vision")
    part: Text
    ok: bool
    first_pass: bool = True
    time: AwareDatetime
    defects: list[Text] = Field(default_factory=list)


class CostEventIn(_Row):
    scope: Text = Field(description="line id, or the plant id")
    category: CostCategory
    amount: FiniteFloat = Field(ge=0)
    currency: Annotated[str, Field(min_length=3, max_length=3)] = "CNY"
    time: AwareDatetime
    note: Annotated[str, Field(max_length=2000)] | None = None


class MesBatch(_Row):
    """One push from an MES. ``idempotency_key`` makes a resent batch harmless."""

    idempotency_key: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    historical: bool = Field(
        default=False,
        description="back-filled history: stored and charted, but never raises alarms or "
        "live events (imports, MES catch-up after an outage)",
    )
    measurements: list[MeasurementIn] = Field(default_factory=list, max_length=100_000)
    verdicts: list[VerdictIn] = Field(default_factory=list, max_length=100_000)
    cost_events: list[CostEventIn] = Field(default_factory=list, max_length=100_000)


@dataclass(frozen=True)
class RowRejection:
    """One rejected row: where it was (``measurements[3]``), which field, and why."""

    row: str
    field: str
    reason: str


_GOOD_ROW = {"quality"}


def _row_key(batch_key: str | None, kind: str, index: int, row: _Row) -> str:
    # without a key, the row's content is its identity
    if batch_key:
        basis = f"{batch_key}|{kind}|{index}".encode()
    else:
        # a good row's identity is what it was before rows had a quality: resends still match
        same = _GOOD_ROW if getattr(row, "quality", None) is Quality.GOOD else None
        # the serializer's own call: model_dump_json's bytes, without its wrapper
        basis = f"{kind}|".encode() + row.__pydantic_serializer__.to_json(row, exclude=same)
    return "mes:" + hashlib.sha256(basis).hexdigest()[:32]


def normalise(
    batch: MesBatch,
    known_characteristics: Container[str],
    now: datetime,
    known_processes: Collection[str] | None = None,
    known_scopes: Collection[str] | None = None,
) -> tuple[Submission, list[RowRejection]]:
    """Turn a validated batch into a pipeline submission plus per-row rejections.

    Verdicts of a process not in ``known_processes`` and cost events of a scope not in
    ``known_scopes`` are rejected (None: not checked): they would be stored and never
    graded, and the plant would count a mistyped line's claim as nobody's.
    """
    sub = Submission(live=not batch.historical)
    rejected: list[RowRejection] = []
    key = batch.idempotency_key

    def reject(row: str, field: str, reason: str, body: _Row) -> None:
        rejected.append(RowRejection(row, field, reason))
        sub.dead_letters.append(
            DeadLetter(now, SOURCE, f"{row}.{field}: {reason}", body.model_dump_json())
        )

    stored = sub.measurements
    for i, m in enumerate(batch.measurements):
        if m.characteristic not in known_characteristics:
            reject(
                f"measurements[{i}]",
                "characteristic",
                f"unknown characteristic {m.characteristic!r}",
                m,
            )
            continue
        try:
            stored.append(
                Measurement(
                    m.time,
                    m.characteristic,
                    m.value,
                    m.ingest_id or _row_key(key, "m", i, m),
                    SOURCE,
                    m.part,
                    m.lot,
                    m.quality,
                )
            )
        except InvalidRecord as exc:
            reject(f"measurements[{i}]", exc.field, exc.problem, m)
    for i, v in enumerate(batch.verdicts):
        if known_processes is not None and v.process not in known_processes:
            reject(f"verdicts[{i}]", "process", _unknown("process", v.process, known_processes), v)
            continue
        try:
            sub.verdicts.append(
                InspectionVerdict(
                    v.time,
                    v.process,
                    v.part,
                    v.ok,
                    v.first_pass,
                    _row_key(key, "v", i, v),
                    SOURCE,
                    tuple(v.defects),
                )
            )
        except InvalidRecord as exc:
            reject(f"verdicts[{i}]", exc.field, exc.problem, v)
    for i, c in enumerate(batch.cost_events):
        if known_scopes is not None and c.scope not in known_scopes:
            reject(f"cost_events[{i}]", "scope", _unknown("scope", c.scope, known_scopes), c)
            continue
        try:
            sub.cost_events.append(
                CostEvent(
                    c.time,
                    c.scope,
                    c.category,
                    c.amount,
                    c.currency,
                    _row_key(key, "c", i, c),
                    SOURCE,
                    c.note,
                )
            )
        except InvalidRecord as exc:
            reject(f"cost_events[{i}]", exc.field, exc.problem, c)
    return sub, rejected


def _unknown(what: str, value: str, known: Collection[str], shown: int = 8) -> str:
    names = sorted(known)
    listed = ", ".join(names[:shown]) + (", ..." if len(names) > shown else "")
    return f"unknown {what} {value!r}; known: {listed or 'none'}"


def rejected_body_letter(body: bytes, errors: list[dict[str, object]], now: datetime) -> DeadLetter:
    """A dead letter for a body refused whole (malformed JSON or wrong shape)."""
    reason = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}"  # type: ignore[attr-defined]
        for e in errors
    )
    return DeadLetter(now, SOURCE, reason[:4000], body.decode("utf-8", "backslashreplace"))


__all__ = ["MesBatch", "RowRejection", "normalise", "rejected_body_letter"]
