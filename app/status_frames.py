"""The frames of the status feed, from the service (``app.status_feed``) to the front.

A frame: a 4-byte big-endian length and the time the service began to gather it
(``time.monotonic()``, a big-endian double: one clock for every process of the machine),
then records of ``!HHI`` (the lengths of the
characteristic id, the ETag and the body) each followed by those bytes; an ETag of
length 0 means the characteristic is gone. A frame without records is a heartbeat.
"""

from __future__ import annotations

import asyncio
import struct

_HEADER = struct.Struct("!Id")
_RECORD = struct.Struct("!HHI")

Change = tuple[str, str, bytes]  # characteristic, ETag ("" if gone), body


def encode_frame(changes: list[Change], gathered_at: float) -> bytes:
    """One frame of changed answers (an empty list: a heartbeat) gathered from
    ``gathered_at`` (``time.monotonic()``) on."""
    parts: list[bytes] = []
    for characteristic, etag, body in changes:
        cid, tag = characteristic.encode(), etag.encode("latin-1")
        parts += (_RECORD.pack(len(cid), len(tag), len(body)), cid, tag, body)
    payload = b"".join(parts)
    return _HEADER.pack(len(payload), gathered_at) + payload


async def read_frame(reader: asyncio.StreamReader) -> tuple[float, list[Change]]:
    """The next frame's time gathered and changes; ``asyncio.IncompleteReadError`` when
    the feed ends."""
    size, gathered_at = _HEADER.unpack(await reader.readexactly(_HEADER.size))
    payload = await reader.readexactly(size)
    changes: list[Change] = []
    at = 0
    while at < size:
        id_len, tag_len, body_len = _RECORD.unpack_from(payload, at)
        at += _RECORD.size
        characteristic = payload[at : at + id_len].decode()
        at += id_len
        etag = payload[at : at + tag_len].decode("latin-1")
        at += tag_len
        changes.append((characteristic, etag, payload[at : at + body_len]))
        at += body_len
    return gathered_at, changes
