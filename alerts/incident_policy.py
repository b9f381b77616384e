"""Which chart signals page people, and how incidents group, resolve and escalate.

Charts show every signal; only the signal kinds in ``paging`` open incidents. The other
signals of a characteristic that already has an incident are added to it as evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

SignalKind = tuple[str, str]  # (rule, chart): ("1", "i"), ("cusum", "cusum"), ...


@dataclass(frozen=True)
class IncidentPolicy:
    """The alarm policy: what opens an incident, grouping, auto-resolution, escalation.

    - ``paging``: the signal kinds that open an incident;
    - ``critical``: the kinds that make an incident critical (others: warning);
    - ``group_window``: a paging signal on another characteristic of the same process
      within this time of an unresolved incident's last signal joins that incident;
    - ``resolve_after``: an incident resolves itself once each of its characteristics has
      had this many points in a row without a paging signal;
    - ``escalate_after``: an open, unacknowledged incident escalates (to critical, once)
      after this long;
    - ``max_new_per_hour``: at most this many incidents open per process in any hour;
      more problems re-open and join the process's latest incident instead.
    """

    # the CUSUM alone (k 0.35, h 6.7 by default): every other kind that may page divides the
    # in-control ARL (rule 1 on the MR chart alone takes 375 down to 103); see
    # benchmarks/incident_policy.py
    paging: frozenset[SignalKind] = field(default_factory=lambda: frozenset({("cusum", "cusum")}))
    critical: frozenset[SignalKind] = field(default_factory=lambda: frozenset({("1", "i")}))
    group_window: timedelta = timedelta(seconds=60)
    resolve_after: int = 25
    escalate_after: timedelta = timedelta(minutes=15)
    max_new_per_hour: int = 6

    def __post_init__(self) -> None:
        if self.resolve_after < 1:
            raise ValueError(f"resolve_after must be >= 1 point, got {self.resolve_after}")
        if self.max_new_per_hour < 1:
            raise ValueError(f"max_new_per_hour must be >= 1, got {self.max_new_per_hour}")
        if self.group_window < timedelta(0) or self.escalate_after <= timedelta(0):
            raise ValueError("group_window must be >= 0 and escalate_after > 0")

    def pages(self, rule: str, chart: str) -> bool:
        """Return True when a signal of this kind opens an incident."""
        return (rule, chart) in self.paging

    def severity(self, rule: str, chart: str) -> str:
        """``critical`` or ``warning`` for a signal of this kind."""
        return "critical" if (rule, chart) in self.critical else "warning"
