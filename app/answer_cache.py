"""Serialized answers kept until what they show changes (dashboards poll every second)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class AnswerCache:
    """One serialized answer and its ETag per resource, valid while its ``key`` is equal.

    The key must change whenever anything in the answer may change (e.g. a revision
    counter plus the time of the last grade computation); then a poll that finds
    nothing new costs a dictionary lookup instead of building and serializing the body.
    """

    def __init__(self) -> None:
        self._entries: dict[str, tuple[Hashable, bytes, str]] = {}
        self._parts: dict[tuple[str, str], tuple[Hashable, Any]] = {}

    def get(self, resource: str, key: Hashable, build: Callable[[], bytes]) -> tuple[bytes, str]:
        """The answer body and its strong ETag, built only when ``key`` changed."""
        entry = self._entries.get(resource)
        if entry is not None and entry[0] == key:
            return entry[1], entry[2]
        body = build()
        etag = f'"{hashlib.blake2b(body, digest_size=12).hexdigest()}"'
        self._entries[resource] = (key, body, etag)
        return body, etag

    def part(self, name: str, resource: str, key: Hashable, build: Callable[[], T]) -> T:
        """A piece of answers (``name``) for ``resource``, rebuilt only when ``key`` changed."""
        entry = self._parts.get((name, resource))
        if entry is not None and entry[0] == key:
            value: T = entry[1]
            return value
        value = build()
        self._parts[name, resource] = (key, value)
        return value

    def forget(self, resource: str) -> None:
        self._entries.pop(resource, None)
        for name, of in [k for k in self._parts if k[1] == resource]:
            del self._parts[name, of]
