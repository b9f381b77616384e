"""Pure incident rules: fold one signal into the unresolved incidents, resolve, escalate.

No I/O: the manager (`alerts.incidents`) keeps the state and saves what these return.
Incidents are `AlarmRecord`s; the opening signal gives ``characteristic``, ``rule`` and
``chart``; ``details`` holds every characteristic concerned and the evidence.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta

from alerts.incident_policy import IncidentPolicy
from alerts.signals import ChartSignal
from ingest.store import MAX_EVIDENCE, AlarmRecord, Evidence, Resolution

KEEP_FIRST = 10  # of MAX_EVIDENCE: the opening signals stay, then the most recent ones
SEVERITY_RANK = {"warning": 1, "critical": 2}


def evidence_of(s: ChartSignal) -> Evidence:
    """The evidence entry of a signal."""
    return Evidence(
        s.time, s.characteristic, s.rule, s.chart, s.value, s.limit, s.limit_version, s.describe()
    )


def with_evidence(incident: AlarmRecord, s: ChartSignal, severity: str | None) -> AlarmRecord:
    """``incident`` after absorbing signal ``s`` (``severity`` None: a non-paging signal)."""
    details = incident.details
    chars = incident.characteristics
    if s.characteristic not in chars:
        chars = (*chars, s.characteristic)
    kept = (*details.evidence, evidence_of(s))
    if len(kept) > MAX_EVIDENCE:
        kept = kept[:KEEP_FIRST] + kept[-(MAX_EVIDENCE - KEEP_FIRST) :]
    higher = severity is not None and SEVERITY_RANK[severity] > SEVERITY_RANK[incident.severity]
    return replace(
        incident,
        last_at=max(incident.last_at, s.time),
        count=incident.count + 1,
        last_value=measured(s, incident.last_value),
        limit_version=s.limit_version,
        severity=severity if higher and severity else incident.severity,
        details=replace(details, characteristics=chars, evidence=kept),
    )


def measured(s: ChartSignal, otherwise: float) -> float:
    """The measured value behind a signal: ``value`` is a statistic on MR, EWMA, CUSUM."""
    if s.point is not None:
        return s.point
    return s.value if s.chart in ("i", "xbar") else otherwise


def opened_by(s: ChartSignal, line: str, process: str, policy: IncidentPolicy) -> AlarmRecord:
    """A new incident opened by paging signal ``s`` on ``process`` of ``line``."""
    new = AlarmRecord(
        characteristic=s.characteristic,
        rule=s.rule,
        chart=s.chart,
        state="open",
        opened_at=s.time,
        last_at=s.time,
        count=0,
        limit_version=s.limit_version,
        last_value=measured(s, s.value),
        message=s.describe(),
        line=line,
        process=process,
        severity=policy.severity(s.rule, s.chart),
    )
    return with_evidence(new, s, new.severity)


def joinable(
    incidents: Iterable[AlarmRecord], s: ChartSignal, process: str, policy: IncidentPolicy
) -> AlarmRecord | None:
    """The unresolved incident ``s`` belongs to: its characteristic's own, else the latest
    of its process whose last signal is within the grouping window."""
    same_process: AlarmRecord | None = None
    for incident in incidents:
        if incident.state == "resolved":
            continue
        if s.characteristic in incident.characteristics:
            return incident
        near = s.time - incident.last_at <= policy.group_window
        later = same_process is None or incident.last_at > same_process.last_at
        if incident.process == process and near and later:
            same_process = incident
    return same_process


def over_rate(opened: Iterable[datetime], at: datetime, policy: IncidentPolicy) -> bool:
    """True when the process opened ``max_new_per_hour`` incidents in the hour before ``at``."""
    hour_ago = at - timedelta(hours=1)
    return sum(1 for t in opened if hour_ago < t <= at) >= policy.max_new_per_hour


def reopened(incident: AlarmRecord, s: ChartSignal, policy: IncidentPolicy) -> AlarmRecord:
    """A rate-limited process's latest incident, open again with signal ``s`` added."""
    again = replace(incident, state="open", details=replace(incident.details, resolution=None))
    return with_evidence(again, s, policy.severity(s.rule, s.chart))


def resolved_if_calm(
    incident: AlarmRecord, calm_run: Mapping[str, int], policy: IncidentPolicy, at: datetime
) -> AlarmRecord | None:
    """The incident resolved by the system once every characteristic it concerns has
    ``resolve_after`` points in a row without a paging signal; None while not."""
    if incident.state == "resolved":
        return None
    if any(calm_run.get(c, 0) < policy.resolve_after for c in incident.characteristics):
        return None
    note = f"back in control: {policy.resolve_after} points in a row without a paging signal"
    done = Resolution("system", at, note)
    return replace(incident, state="resolved", details=replace(incident.details, resolution=done))


def escalated_if_due(
    incident: AlarmRecord, now: datetime, policy: IncidentPolicy
) -> AlarmRecord | None:
    """The open incident escalated (critical, once) when unacknowledged past the delay."""
    if incident.state != "open" or incident.details.escalated_at is not None:
        return None
    if now - incident.opened_at < policy.escalate_after:
        return None
    return replace(
        incident, severity="critical", details=replace(incident.details, escalated_at=now)
    )
