"""Test helpers for the HTTP API: keys made the way an administrator makes them."""

from __future__ import annotations

import itertools

from app.auth import KeyRing, Role
from app.settings import Settings

_names = itertools.count()


def key_headers(settings: Settings, role: Role = Role.ADMIN) -> dict[str, str]:
    """A new key with ``role`` in the service's key file, as request headers."""
    _, token = KeyRing(settings.keys_file).create(f"test-{role.value}-{next(_names)}", role)
    return {"Authorization": f"Bearer {token}"}
