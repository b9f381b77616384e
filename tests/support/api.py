"""Test helpers for the HTTP API: keys made the way an administrator makes them."""

from __future__ import annotations

import itertools
import time

from starlette.testclient import TestClient

from app.auth import KeyRing, Role
from app.settings import Settings

_names = itertools.count()


def key_headers(settings: Settings, role: Role = Role.ADMIN) -> dict[str, str]:
    """A new key with ``role`` in the service's key file, as request headers."""
    _, token = KeyRing(settings.keys_file).create(f"test-{role.value}-{next(_names)}", role)
    return {"Authorization": f"Bearer {token}"}


def wait_for_grades(client: TestClient, timeout_s: float = 20.0) -> None:
    """Wait for the service's first grade computation: it changes every status answer
    (and its ETag) once, which a test comparing two answers must not race."""
    service = client.app.state.service  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout_s
    while service.grades.latest is None:
        assert time.monotonic() < deadline, f"no grades computed in {timeout_s:.0f} s"
        time.sleep(0.05)
