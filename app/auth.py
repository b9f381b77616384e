"""API keys and roles.

A key reads ``spc_<key id>_<secret>``. Only the key id, the SHA-256 of the secret, a name
and the role are kept (in a JSON file, mode 0600): the secret itself is shown once, when
the key is created, and cannot be recovered. The secret is 256 random bits, so a plain
SHA-256 is enough; a slow password hash would only slow every request.

Roles grant what their rank includes, except ``ingest``, which may push and nothing
else: ``viewer`` < ``operator`` < ``engineer`` < ``admin``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

_log = logging.getLogger(__name__)
KEY_PREFIX = "spc_"


class Role(StrEnum):
    VIEWER = "viewer"  # read everything
    OPERATOR = "operator"  # + acknowledge alarms
    ENGINEER = "engineer"  # + limits and characteristics
    INGEST = "ingest"  # push measurements only
    ADMIN = "admin"  # everything


_GRANTS: dict[Role, frozenset[Role]] = {
    Role.VIEWER: frozenset({Role.VIEWER}),
    Role.OPERATOR: frozenset({Role.VIEWER, Role.OPERATOR}),
    Role.ENGINEER: frozenset({Role.VIEWER, Role.OPERATOR, Role.ENGINEER}),
    Role.INGEST: frozenset({Role.INGEST}),
    Role.ADMIN: frozenset(Role),
}


def grants(held: Role, needed: Role) -> bool:
    """Whether a key with role ``held`` may do what needs ``needed``."""
    return needed in _GRANTS[held]


@dataclass(frozen=True)
class ApiKey:
    """A stored key: never the secret, only its digest."""

    key_id: str
    name: str
    role: Role
    digest: str  # hex SHA-256 of the secret
    created_at: datetime


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key's name and role, or the anonymous reader."""

    name: str
    role: Role
    anonymous: bool = False


ANONYMOUS = Principal("anonymous", Role.VIEWER, anonymous=True)


class KeyFileError(Exception):
    """The key file cannot be read or written; the message names the file and why."""


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _split(token: str) -> tuple[str, str] | None:
    if not token.startswith(KEY_PREFIX):
        return None
    key_id, sep, secret = token[len(KEY_PREFIX) :].partition("_")
    return (key_id, secret) if sep and key_id and secret else None


class KeyRing:
    """The keys in one JSON file, re-read when the file changes (no restart needed)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._keys: dict[str, ApiKey] = {}
        self._stamp: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def keys(self) -> list[ApiKey]:
        """Every key, oldest first."""
        self._refresh()
        return sorted(self._keys.values(), key=lambda k: k.created_at)

    def verify(self, token: str) -> ApiKey | None:
        """The key a presented token belongs to, or ``None`` (compared in constant time)."""
        parts = _split(token)
        if parts is None:
            return None
        self._refresh()
        key = self._keys.get(parts[0])
        if key is None or not hmac.compare_digest(key.digest, _digest(parts[1])):
            return None
        return key

    def create(self, name: str, role: Role) -> tuple[ApiKey, str]:
        """A new key; returns it with the token, which is shown this once only."""
        if not name.strip():
            raise ValueError("name: give the key a name that says who uses it")
        with self._lock:
            self._refresh_locked()
            if any(k.name == name for k in self._keys.values()):
                raise ValueError(f"name: a key named {name!r} exists; revoke it first")
            key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
            key = ApiKey(key_id, name, role, _digest(secret), datetime.now(UTC))
            self._write({**self._keys, key_id: key})
        return key, f"{KEY_PREFIX}{key_id}_{secret}"

    def revoke(self, name: str) -> bool:
        """Delete the key with this name; ``False`` if there is none."""
        with self._lock:
            self._refresh_locked()
            kept = {i: k for i, k in self._keys.items() if k.name != name}
            if len(kept) == len(self._keys):
                return False
            self._write(kept)
        return True

    def _refresh(self) -> None:
        with self._lock:
            self._refresh_locked()

    def _refresh_locked(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._keys, self._stamp = {}, None
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        try:
            rows = json.loads(self.path.read_text(encoding="utf-8"))["keys"]
            self._keys = {
                r["key_id"]: ApiKey(
                    r["key_id"], r["name"], Role(r["role"]), r["digest"],
                    datetime.fromisoformat(r["created_at"]),
                )
                for r in rows
            }  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # keep the keys last read rather than lock everyone out over a bad edit
            _log.error(
                "API key file %s unreadable (%s); keeping the keys last read", self.path, exc
            )
        self._stamp = stamp

    def _write(self, keys: dict[str, ApiKey]) -> None:
        rows = [
            {**asdict(k), "role": k.role.value, "created_at": k.created_at.isoformat()}
            for k in keys.values()
        ]
        tmp = self.path.with_suffix(".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump({"keys": rows}, out, indent=2)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            raise KeyFileError(f"cannot write the API key file {self.path}: {exc}") from exc
        self._keys, self._stamp = keys, None
