"""Opaque page cursors: a position (time, seq) in a characteristic's measurements."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime, timedelta

from ingest.store import HistoryCursor

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def encode_cursor(cursor: HistoryCursor) -> str:
    """An opaque, URL-safe page cursor: base64url of {"t": µs since the epoch, "s": seq}."""
    micros = (cursor.time - _EPOCH) // timedelta(microseconds=1)
    raw = json.dumps({"t": micros, "s": cursor.seq}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(text: str) -> HistoryCursor:
    """The cursor ``encode_cursor`` made; ``ValueError`` for anything else."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        micros, seq = raw["t"], raw["s"]
        if not (type(micros) is int and type(seq) is int):  # bool is not a position
            raise ValueError
        return HistoryCursor(_EPOCH + timedelta(microseconds=micros), seq)
    except (ValueError, TypeError, KeyError, OverflowError, binascii.Error):
        raise ValueError(
            "cursor: not a cursor from a previous page; pass next_cursor unchanged"
        ) from None
