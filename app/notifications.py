"""What the service tells people: incidents, early warnings and grade changes as
`alerts.notify.Notification`s, handed to the dispatcher of the configured notifiers.

Texts are short and concrete (what happened, where, what to do next), in English with the
Chinese grade names where grades appear; the receivers (DingTalk, WeCom, e-mail, webhook,
MQTT) format them. Without a notifiers file nothing is sent and nothing is built.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from urllib.parse import quote

from alerts.early_warnings import EarlyWarning
from alerts.notify import Dispatcher, Notification
from ingest.store import AlarmRecord
from spc.grades import grade as grade_of

_log = logging.getLogger(__name__)

SOURCE_KINDS = frozenset({"quiet_source", "bad_quality"})
"""Data-health kinds a stopped line or source raises on many characteristics at once:
notified once per line and kind, not once per characteristic."""

_VERBS = {
    "opened": "opened",
    "escalated": "escalated: nobody has acknowledged it",
    "acknowledged": "acknowledged",
    "resolved": "resolved",
}


class Notifications:
    """Builds notifications and submits them; a no-op without a dispatcher."""

    def __init__(self, dispatcher: Dispatcher | None, dashboard_url: str | None = None) -> None:
        self.dispatcher = dispatcher
        self._url = dashboard_url.rstrip("/") if dashboard_url else None

    def incident(self, kind: str, incident: AlarmRecord) -> None:
        """An incident was opened, escalated, acknowledged or resolved."""
        if self.dispatcher is None:
            return
        self._submit(incident_notification(kind, incident, self._url))

    def warnings(
        self, found: Sequence[EarlyWarning], locate: Callable[[str], tuple[str, str]]
    ) -> None:
        """The warnings of one evaluation: data-health ones of one line and kind (a line or
        a source gone quiet) as one notification, the others one by one. ``locate`` gives
        a characteristic's line and qualified process."""
        if self.dispatcher is None:
            return
        grouped: dict[tuple[str, str, bool], list[EarlyWarning]] = defaultdict(list)
        for w in found:
            line, process = locate(w.characteristic)
            if w.kind in SOURCE_KINDS:
                grouped[(line, w.kind, w.cleared)].append(w)
            else:
                self._submit(warning_notification(w, line, process, self._url))
        for (line, _, _), group in grouped.items():
            if len(group) == 1:
                process = locate(group[0].characteristic)[1]
                self._submit(warning_notification(group[0], line, process, self._url))
            else:
                self._submit(source_notification(group, line, self._url))

    def grade_change(
        self, level: str, entity: str, old: int | None, new: int | None, at: datetime
    ) -> None:
        """An entity's quality grade changed."""
        if self.dispatcher is None:
            return
        self._submit(grade_notification(level, entity, old, new, at, self._url))

    def _submit(self, n: Notification) -> None:
        assert self.dispatcher is not None
        try:
            self.dispatcher.submit(n)
        except Exception:  # a notification must never cost the incident itself
            _log.exception("could not submit notification %s", n.key)


def incident_notification(kind: str, i: AlarmRecord, url: str | None) -> Notification:
    """The notification of an incident's transition ``kind``."""
    assert i.id is not None
    chars = ", ".join(i.characteristics)
    severity = i.severity if kind in ("opened", "escalated") else "info"
    lines = [
        f"Incident {i.id} on {i.process or i.characteristic} {_VERBS.get(kind, kind)}.",
        f"Characteristics: {chars}. First signal: {i.message}",
        f"Signals so far: {i.count}, the last at {i.last_at.isoformat()}.",
    ]
    if kind in ("opened", "escalated"):
        lines.append("Check the process now; acknowledge with the cause and the action taken.")
    if kind == "acknowledged" and i.ack is not None:
        lines.append(f"By {i.ack.by}: {i.ack.comment} (cause: {i.ack.cause or '-'}; "
                     f"action: {i.ack.action or '-'})")  # fmt: skip
    if kind == "resolved" and i.details.resolution is not None:
        res = i.details.resolution
        lines.append(f"By {res.by}: {res.note}")
    return Notification(
        kind=f"incident_{kind}",
        severity=severity,
        title=f"{i.process or i.characteristic}: incident {i.id} {kind} ({i.severity})",
        text="\n".join(lines),
        at=datetime.now(UTC),
        key=f"incident-{i.id}-{kind}-{i.count}",
        line=i.line or None,
        process=i.process or None,
        characteristics=i.characteristics,
        incident_id=i.id,
        url=f"{url}/#/c/{quote(i.characteristic, safe='')}" if url else None,
        data={"state": i.state, "rule": i.rule, "chart": i.chart, "count": i.count},
    )


def warning_notification(w: EarlyWarning, line: str, process: str, url: str | None) -> Notification:
    """The notification of an early warning (or of its clearing)."""
    what = "cleared" if w.cleared else w.kind.replace("_", " ")
    return Notification(
        kind="early_warning",
        severity="info" if w.cleared else w.severity,
        title=f"{w.characteristic}: {what}",
        text=w.message,
        at=w.at,
        key=f"warning-{w.characteristic}-{w.kind}-{w.at.isoformat()}-{int(w.cleared)}",
        line=line or None,
        process=process or None,
        characteristics=(w.characteristic,),
        url=f"{url}/#/c/{quote(w.characteristic, safe='')}" if url else None,
        data={"kind": w.kind, "cleared": w.cleared, **dict(w.details)},
    )


def source_notification(group: Sequence[EarlyWarning], line: str, url: str | None) -> Notification:
    """One notification for the same data-health warning on several characteristics of a
    line (raised or cleared together: a stopped line, a lost source)."""
    first = group[0]
    chars = tuple(sorted(w.characteristic for w in group))
    what = "cleared" if first.cleared else first.kind.replace("_", " ")
    severity = (
        "info"
        if first.cleared
        else max((w.severity for w in group), key=("info", "warning", "critical").index)
    )
    shown = ", ".join(chars[:10]) + (f" and {len(chars) - 10} more" if len(chars) > 10 else "")
    at = max(w.at for w in group)
    return Notification(
        kind="early_warning",
        severity=severity,
        title=f"{line or 'plant'}: {len(chars)} characteristics {what}",
        text=f"{first.message}\nCharacteristics: {shown}.",
        at=at,
        key=f"warnings-{line}-{first.kind}-{at.isoformat()}-{int(first.cleared)}",
        line=line or None,
        characteristics=chars,
        url=f"{url}/#/" if url else None,
        data={"kind": first.kind, "cleared": first.cleared, "count": len(chars)},
    )


def grade_notification(
    level: str, entity: str, old: int | None, new: int | None, at: datetime, url: str | None
) -> Notification:
    """The notification of a grade change (a drop is a warning, a rise is news)."""

    def name(grade: int | None) -> str:
        if grade is None:
            return "not graded (insufficient data)"
        named = grade_of(grade)
        return f"{grade} {named.en} {named.zh}"

    dropped = old is not None and (new is None or new < old)
    return Notification(
        kind="grade_changed",
        severity="warning" if dropped else "info",
        title=f"{level} {entity}: grade {name(old)} → {name(new)}",
        text=f"The quality grade of {level} {entity} changed from {name(old)} to {name(new)}.",
        at=at,
        key=f"grade-{level}-{entity}-{at.isoformat()}",
        line=entity if level == "line" else None,
        url=f"{url}/#/" if url else None,
        data={"level": level, "entity": entity, "old": old, "new": new},
    )
