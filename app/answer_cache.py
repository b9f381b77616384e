"""Serialized answers kept until what they show changes (dashboards poll every second)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable


class AnswerCache:
    """One serialized answer and its ETag per resource, valid while its ``key`` is equal.

    The key must change whenever anything in the answer may change (e.g. a revision
    counter plus the time of the last grade computation); then a poll that finds
    nothing new costs a dictionary lookup instead of building and serializing the body.
    """

    def __init__(self) -> None:
        self._entries: dict[str, tuple[Hashable, bytes, str]] = {}

    def get(self, resource: str, key: Hashable, build: Callable[[], bytes]) -> tuple[bytes, str]:
        """The answer body and its strong ETag, built only when ``key`` changed."""
        entry = self._entries.get(resource)
        if entry is not None and entry[0] == key:
            return entry[1], entry[2]
        body = build()
        etag = f'"{hashlib.blake2b(body, digest_size=12).hexdigest()}"'
        self._entries[resource] = (key, body, etag)
        return body, etag

    def forget(self, resource: str) -> None:
        self._entries.pop(resource, None)
