"""The MES push on the wire: rows, batches, the service's answers and the dead-letter file.

`MesPusher` (in `simulators.mes_pusher`) does the buffering, sending and retrying; this
module holds what it sends and reads back, with no I/O but the dead-letter file:

- rows: `measurement_row`, `verdict_row`, `cost_event_row` check their arguments
  (``ValueError``) and stamp times as ISO 8601 UTC with microseconds and ``Z``;
- `Batch`: the rows of one push body, with its ``idempotency_key``;
- answers: `retry_after_s`, `error_detail` and `row_answer` read what the service said;
- `DeadLetter`: one JSON Lines entry of the dead-letter file (`append_dead_letter`,
  `read_dead_letters`);
- `RetryPolicy` and `PushStats`: the pusher's backoff settings and counters.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from simulators.scenario import utc_iso

ENDPOINT = "/api/v1/measurements"
_QUALITIES = frozenset({"good", "uncertain", "bad"})
# mirrors the service's cost categories (simulators may not import ingest): an unknown
# one would make the service refuse the whole batch, so it is refused here, at the add
COST_CATEGORIES = frozenset(
    {"scrap", "rework", "downgrade", "stoppage", "incident", "claim", "return"}
    | {"price_reduction", "warranty", "output_value"}
)
_KINDS = ("measurements", "verdicts", "cost_events")
CONFIG_PROBLEMS = {
    401: "the API key is missing or not valid",
    403: "the API key lacks the ingest role",
    404: "no push endpoint at this base URL",
    405: "no push endpoint at this base URL",
}
_ROW = re.compile(r"^(measurements|verdicts|cost_events)\[(\d+)\]$")


class Answer(Protocol):
    """What the pusher reads of an answer (an `httpx.Response`)."""

    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def text(self) -> str: ...
    def json(self) -> Any: ...


class PushClient(Protocol):
    """What the pusher needs of its client: `httpx.Client` or FastAPI's ``TestClient``."""

    def post(self, url: str, *, json: Any) -> Answer: ...


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts per batch (the first included) and backoff in seconds.

    The n-th retry waits ``min(cap_s, base_s * 2**(n-1))`` scaled by a random factor in
    [0.5, 1] ("equal jitter"), or the server's ``Retry-After`` capped at ``cap_s``.
    """

    max_attempts: int = 6
    base_s: float = 0.5
    cap_s: float = 30.0

    def delay(self, retry: int, retry_after: float | None, rng: random.Random) -> float:
        if retry_after is not None:
            return min(self.cap_s, retry_after)
        return min(self.cap_s, self.base_s * 2.0 ** (retry - 1)) * rng.uniform(0.5, 1.0)


@dataclass
class PushStats:
    """Row and batch counters since the pusher was made."""

    rows_added: int = 0
    rows_sent: int = 0  # rows in batches the service answered
    rows_accepted: int = 0  # as the service counts them (resent duplicates included)
    rows_rejected: int = 0  # refused one by one by the service
    rows_dead_lettered: int = 0  # written to the dead-letter file, for any reason
    batches_sent: int = 0
    batches_retried: int = 0  # batches that needed more than one attempt
    batches_dead_lettered: int = 0  # whole batches written to the dead-letter file


@dataclass(frozen=True)
class DeadLetter:
    """One line of the dead-letter file; ``batch`` is a push body, ready to post again."""

    at: str
    reason: str
    status: int | None
    row: str | None
    batch: dict[str, Any]


def append_dead_letter(
    path: Path, reason: str, status: int | None, row: str | None, body: dict[str, Any]
) -> None:
    """Append one entry, stamped now, creating the file and its folder if needed."""
    entry = DeadLetter(utc_iso(datetime.now(UTC)), reason, status, row, body)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(asdict(entry)) + "\n")


def read_dead_letters(path: Path | str) -> list[DeadLetter]:
    """Every entry of a dead-letter file, oldest first (empty when there is no file)."""
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [DeadLetter(**json.loads(line)) for line in lines if line.strip()]


@dataclass
class Batch:
    """Rows by kind (``measurements``, ``verdicts``, ``cost_events``) and the batch's key."""

    key: str | None = None
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {k: [] for k in _KINDS})

    def __len__(self) -> int:
        return sum(len(r) for r in self.rows.values())

    def body(self, historical: bool) -> dict[str, Any]:
        return {"idempotency_key": self.key, "historical": historical, **self.rows}

    def take(self, limit: int) -> Batch:
        """Remove and return up to ``limit`` rows, measurements first."""
        out = Batch()
        for kind in _KINDS:
            n = min(limit - len(out), len(self.rows[kind]))
            out.rows[kind], self.rows[kind] = self.rows[kind][:n], self.rows[kind][n:]
        return out

    def rejected_rows(self, rejections: list[dict[str, Any]]) -> list[tuple[str, str, Batch]]:
        """Per rejection of `row_answer`: its reason, the row it names (``measurements[3]``)
        and a batch of that row alone to dead-letter (all of this one when it names none)."""
        out: list[tuple[str, str, Batch]] = []
        for item in rejections:
            reason = f"{item.get('field')}: {item.get('reason')}"
            match = _ROW.match(str(item["row"]))
            if match is None or int(match[2]) >= len(self.rows[match[1]]):
                # cannot tell which row: keep them all (the batch key keeps a replay harmless)
                out.append((reason, str(item["row"]), self))
                continue
            letter = Batch()
            letter.rows[match[1]].append(self.rows[match[1]][int(match[2])])
            out.append((reason, match[0], letter))
        return out


def measurement_row(
    characteristic: str,
    value: float,
    time: datetime,
    *,
    part: str | None,
    lot: str | None,
    quality: str,
    ingest_id: str | None,
) -> dict[str, Any]:
    """A ``measurements`` row; see `MesPusher.add_measurement`."""
    if quality not in _QUALITIES:
        raise ValueError(f"quality: expected one of {sorted(_QUALITIES)}, got {quality!r}")
    row: dict[str, Any] = {
        "characteristic": characteristic,
        "value": _finite("value", value),
        "time": _stamp(time),
        "quality": quality,
    }
    ingest_id = ingest_id or (_ingest_id(part, characteristic) if part else None)
    extra = {"part": part, "lot": lot, "ingest_id": ingest_id}
    row.update({k: v for k, v in extra.items() if v is not None})
    return row


def verdict_row(
    process: str, part: str, ok: bool, time: datetime, *, first_pass: bool, defects: Sequence[str]
) -> dict[str, Any]:
    """A ``verdicts`` row; see `MesPusher.add_verdict`."""
    row = {"process": process, "part": part, "ok": ok, "first_pass": first_pass}
    return {**row, "time": _stamp(time), "defects": list(defects)}


def cost_event_row(
    scope: str, category: str, amount: float, time: datetime, *, currency: str, note: str | None
) -> dict[str, Any]:
    """A ``cost_events`` row; see `MesPusher.add_cost_event`."""
    if category not in COST_CATEGORIES:
        raise ValueError(f"category: expected one of {sorted(COST_CATEGORIES)}, got {category!r}")
    if _finite("amount", amount) < 0:
        raise ValueError(f"amount: must be >= 0, got {amount}")
    row = {"scope": scope, "category": category, "amount": float(amount), "currency": currency}
    return {**row, "time": _stamp(time), "note": note}


def _stamp(moment: datetime) -> str:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"time: {moment.isoformat()} is naive; pass an aware datetime (UTC)")
    return utc_iso(moment)


def _finite(name: str, value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(f"{name}: {value} is not finite; the service accepts finite numbers")
    return float(value)


def _ingest_id(part: str, characteristic: str) -> str:
    # the service takes ingest ids of up to 128 characters
    text = f"{part}:{characteristic}"
    return text if len(text) <= 128 else "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def retry_after_s(answer: Answer) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), else None."""
    text = answer.headers.get("retry-after", "").strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
        return max(0.0, (when - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):  # unparseable, or a date without a zone
        return None


def error_detail(answer: Answer) -> str:
    """The answer's ``detail`` (else its text), cut to 500 characters."""
    try:
        return str(answer.json().get("detail") or answer.text)[:500]
    except (ValueError, AttributeError):
        return answer.text[:500]


def row_answer(answer: Answer) -> tuple[int, list[dict[str, Any]]] | None:
    """Rows accepted and per-row rejections of a 2xx or 422 answer; None for another shape
    (a 422 for a malformed body lists fields, not rows)."""
    try:
        payload = answer.json()
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    items = payload.get("rejected", payload.get("errors"))
    if not isinstance(items, list) or not all(isinstance(i, dict) and "row" in i for i in items):
        return None
    accepted = payload.get("accepted", 0)
    return (accepted if isinstance(accepted, int) else 0), items
