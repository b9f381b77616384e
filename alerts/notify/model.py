"""The notification and the one small port every notifier adapter implements."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

SEVERITIES = ("info", "warning", "critical")
"""Ordered from least to most severe; a notifier gets what is at or above its minimum."""

KINDS = frozenset(
    {
        "incident_opened",
        "incident_escalated",
        "incident_acknowledged",
        "incident_resolved",
        "early_warning",
        "grade_changed",
    }
)


def severity_rank(severity: str) -> int:
    """Position of ``severity`` in ``SEVERITIES`` (info = 0); ValueError if unknown."""
    try:
        return SEVERITIES.index(severity)
    except ValueError:
        raise ValueError(f"unknown severity {severity!r}: use one of {SEVERITIES}") from None


@dataclass(frozen=True)
class Notification:
    """One message for people and machines about an incident, warning or grade change.

    ``title`` is one line; ``text`` a few lines (what happened, evidence, what to do).
    ``at`` is an aware UTC time; ``key`` is stable across retries and restarts so receivers
    can drop duplicates (e.g. ``"incident-42-opened"``). ``data`` holds JSON-able details.
    """

    kind: str
    severity: str
    title: str
    text: str
    at: datetime
    key: str
    line: str | None = None
    process: str | None = None
    characteristics: tuple[str, ...] = ()
    incident_id: int | None = None
    url: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown notification kind {self.kind!r}: use one of {sorted(KINDS)}")
        severity_rank(self.severity)
        if self.at.utcoffset() != timedelta(0):
            raise ValueError("Notification.at must be an aware UTC datetime")
        if not self.key:
            raise ValueError("Notification.key must not be empty: receivers de-duplicate by it")
        if "\n" in self.title:
            raise ValueError("Notification.title must be one line")

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of this notification (``at`` as ISO 8601 with ``Z``)."""
        return {
            "kind": self.kind,
            "severity": self.severity,
            "title": self.title,
            "text": self.text,
            "at": self.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "key": self.key,
            "line": self.line,
            "process": self.process,
            "characteristics": list(self.characteristics),
            "incident_id": self.incident_id,
            "url": self.url,
            "data": dict(self.data),
        }

    def to_json(self) -> bytes:
        """UTF-8 JSON of ``to_dict``; values ``data`` cannot encode become strings."""
        return json.dumps(self.to_dict(), ensure_ascii=False, default=str).encode("utf-8")


class Notifier(Protocol):
    """A channel to people or machines (webhook, robot, e-mail, MQTT topic).

    ``send`` makes one delivery attempt and raises ``NotifyError`` on failure; retries,
    backoff and dead letters are the dispatcher's job. ``aclose`` releases connections.
    """

    name: str
    min_severity: str

    async def send(self, n: Notification) -> None: ...

    async def aclose(self) -> None: ...
