"""Pure mapping from an MQTT message to measurement-model records (no I/O).

Payloads are JSON objects. Each configured field path (``features.gap_mm``) yields one
measurement; an ``inspection`` binding yields one OK/NOK verdict per message. Optional
keys understood in every payload: ``time`` (ISO 8601 with offset; else the receive time),
``serial`` or ``part``, ``lot``, ``inspection`` ("first" | "reinspection"), ``defects``.

A message-level problem (not JSON, not an object, bad time) rejects the whole message;
a field-level problem (missing, not a number, NaN) rejects only that field, so one bad
feature of a camera result does not lose the others.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ingest.errors import InvalidRecord, PayloadError
from ingest.model import MAX_FUTURE_SKEW, InspectionVerdict, Measurement

MAX_PAYLOAD_BYTES = 1_048_576
OK_WORDS = {"ok": True, "pass": True, "nok": False, "ng": False, "fail": False}


@dataclass(frozen=True)
class TopicBinding:
    """What the configuration maps one topic, or topic filter with ``+``/``#``, to.

    ``fields``: (dotted field path, characteristic id) pairs. ``verdict_field`` and
    ``process``: set when the topic also carries an inspection verdict for that process.
    """

    topic: str
    fields: tuple[tuple[str, str], ...] = ()
    verdict_field: str | None = None
    process: str | None = None


@dataclass
class ParsedMessage:
    measurements: list[Measurement] = field(default_factory=list)
    verdicts: list[InspectionVerdict] = field(default_factory=list)
    problems: list[PayloadError] = field(default_factory=list)


def lookup(document: dict[str, Any], path: str) -> Any:
    """Follow a dotted path through nested objects; ``PayloadError`` names the missing key."""
    node: Any = document
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            raise PayloadError(path, "missing from the payload")
        node = node[key]
    return node


def _number(raw: Any, path: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise PayloadError(path, f"must be a number, got {json.dumps(raw)[:40]}")
    return float(raw)


def _time(document: dict[str, Any], received_at: datetime) -> datetime:
    raw = document.get("time")
    if raw is None:
        return received_at
    if not isinstance(raw, str):
        raise PayloadError("time", "must be an ISO 8601 string")
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise PayloadError("time", f"not an ISO 8601 timestamp: {raw!r}") from exc
    if parsed.tzinfo is None:
        raise PayloadError("time", "needs a UTC offset, e.g. 2026-01-01T08:00:00Z")
    if parsed - received_at > MAX_FUTURE_SKEW:
        raise PayloadError("time", f"{raw} is more than 5 minutes ahead of the receive time")
    return parsed


def _text(document: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = document.get(key)
        if value is not None:
            if not isinstance(value, str | int):
                raise PayloadError(key, "must be text")
            return str(value)
    return None


def _decode(payload: bytes) -> dict[str, Any]:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadError("payload", f"{len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError("payload", f"not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise PayloadError("payload", "must be a JSON object")
    return document


def _record_key(topic: str, document: dict[str, Any], payload: bytes, received: datetime) -> str:
    """Stable identity of a message: its serial, time and inspection stage, where present.

    A redelivered copy maps to the same key; a re-inspection of the same serial (another
    time or stage) does not. With neither serial nor time, the receive time is part of
    the key: a redelivered copy may then be stored twice, which beats dropping two
    genuinely equal readings as one.
    """
    serial = _text(document, "serial", "part")
    sent = document.get("time")
    if serial is None and sent is None:
        basis = f"{topic}|{received.isoformat()}|{payload!r}"
    else:
        basis = f"{topic}|{serial}|{sent}|{document.get('inspection', 'first')}"
    return hashlib.sha256(basis.encode()).hexdigest()[:32]


def parse_payload(
    binding: TopicBinding, payload: bytes, received_at: datetime, topic: str | None = None
) -> ParsedMessage:
    """Map one message to records. Raises ``PayloadError`` if the message as a whole is bad.

    ``topic`` is the topic the message came on, when the binding's is a filter with
    wildcards: the records' identity and source name it, not the filter.
    """
    document = _decode(payload)
    when = _time(document, received_at)
    part = _text(document, "serial", "part")
    lot = _text(document, "lot")
    topic = topic or binding.topic
    key = _record_key(topic, document, payload, received_at)
    source = f"mqtt:{topic}"
    out = ParsedMessage()
    for path, characteristic in binding.fields:
        try:
            value = _number(lookup(document, path), path)
            out.measurements.append(
                Measurement(
                    when,
                    characteristic,
                    value,
                    f"{key}:{characteristic}",
                    source,
                    part=part,
                    lot=lot,
                )
            )
        except PayloadError as exc:
            out.problems.append(exc)
        except InvalidRecord as exc:
            out.problems.append(PayloadError(path, exc.problem))
    if binding.verdict_field and binding.process:
        try:
            out.verdicts.append(_verdict(binding, document, when, part, key, source))
        except (PayloadError, InvalidRecord) as exc:
            field_name = getattr(exc, "field", binding.verdict_field)
            out.problems.append(PayloadError(field_name, getattr(exc, "problem", str(exc))))
    return out


def _verdict(
    binding: TopicBinding,
    document: dict[str, Any],
    when: datetime,
    part: str | None,
    key: str,
    source: str,
) -> InspectionVerdict:
    assert binding.verdict_field is not None
    assert binding.process is not None
    raw = lookup(document, binding.verdict_field)
    if isinstance(raw, bool):
        ok = raw
    elif isinstance(raw, str) and raw.strip().lower() in OK_WORDS:
        ok = OK_WORDS[raw.strip().lower()]
    else:
        raise PayloadError(binding.verdict_field, f"must be OK or NOK, got {json.dumps(raw)[:40]}")
    if part is None:
        raise PayloadError("serial", "an inspection verdict needs the part serial")
    stage = document.get("inspection", "first")
    if stage not in ("first", "reinspection"):
        raise PayloadError("inspection", f"must be 'first' or 'reinspection', got {stage!r}")
    defects = document.get("defects", [])
    if not isinstance(defects, list) or not all(isinstance(d, str) for d in defects):
        raise PayloadError("defects", "must be a list of defect codes (text)")
    return InspectionVerdict(
        when,
        binding.process,
        part,
        ok,
        stage == "first",
        f"{key}:verdict",
        source,
        tuple(defects),
    )
