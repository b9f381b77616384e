"""Bucket arithmetic shared by every store: widths in whole seconds, aligned to one origin."""

from __future__ import annotations

from datetime import datetime, timedelta

from ingest.errors import StoreError
from ingest.store import BUCKET_ORIGIN


def whole_seconds(width: timedelta) -> int:
    """A bucket width in seconds; refuses zero, negative and fractional widths."""
    seconds = width.total_seconds()
    if seconds < 1 or width % timedelta(seconds=1):
        raise StoreError(f"width: must be a whole number of seconds, at least 1, got {width}")
    return int(seconds)


def align_up(t: datetime, width: timedelta) -> datetime:
    """The first bucket start at or after ``t`` (buckets aligned to ``BUCKET_ORIGIN``)."""
    offset = (t - BUCKET_ORIGIN) % width
    return t if not offset else t - offset + width


def bucket_range(start: datetime, end: datetime, width: timedelta) -> tuple[datetime, datetime]:
    """The span of raw time covered by the whole buckets that start in ``[start, end)``."""
    return align_up(start, width), align_up(end, width)
