"""The early warning as the service receives it: what, where, how bad, and why.

An early warning is a condition that holds for a while (a drift heading for a limit, a
frozen sensor), not an event on one point: the evaluator raises it once, re-emits it only
when its severity rises, and emits it once more with ``cleared=True`` when it has gone.
``key`` names the condition, so the caller can match the clearing to the raising.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, TypeAlias, get_args

WarningKind = Literal[
    "capability", "drift", "quiet_source", "frozen_sensor", "bad_quality", "autocorrelation"
]
Severity = Literal["info", "warning", "critical"]
WARNING_KINDS: tuple[str, ...] = get_args(WarningKind)
SEVERITY_RANK: Mapping[str, int] = {"info": 0, "warning": 1, "critical": 2}

JsonValue: TypeAlias = str | int | float | bool | list["JsonValue"] | dict[str, "JsonValue"] | None
WarningKey = tuple[str, str]
"""(characteristic, kind): one condition of one characteristic."""


@dataclass(frozen=True)
class EarlyWarning:
    """One early-warning condition of one characteristic, raised or cleared.

    ``at`` is an aware UTC datetime: the time of the last point that decided it (or the
    ``now`` of a quiet-source check). ``message`` is a sentence for people with numbers
    and units; ``details`` a JSON-able mapping with the estimate, its interval and the
    basis (points, window, method). Infinite bounds appear in ``details`` as None.
    """

    kind: WarningKind
    characteristic: str
    severity: Severity
    at: datetime
    message: str
    details: Mapping[str, JsonValue] = field(default_factory=dict)
    cleared: bool = False

    def __post_init__(self) -> None:
        if self.kind not in WARNING_KINDS:
            raise ValueError(f"kind must be one of {WARNING_KINDS}, not {self.kind!r}")
        if self.severity not in SEVERITY_RANK:
            raise ValueError(f"severity must be info, warning or critical, not {self.severity!r}")
        if self.at.tzinfo is None:
            raise ValueError("at must be an aware datetime (UTC)")

    @property
    def key(self) -> WarningKey:
        """The condition this warning belongs to: (characteristic, kind)."""
        return (self.characteristic, self.kind)


def format_duration(seconds: float) -> str:
    """A rounded duration for people: "45 s", "12 min", "2.5 h", "3.1 d"."""
    if seconds < 90.0:
        return f"{seconds:.0f} s"
    if seconds < 90.0 * 60.0:
        return f"{seconds / 60.0:.0f} min"
    if seconds < 48.0 * 3600.0:
        return f"{seconds / 3600.0:.1f} h"
    return f"{seconds / 86400.0:.1f} d"


def format_value(value: float, unit: str | None) -> str:
    """A value with its unit: "25.05 mm" (6 significant digits)."""
    return f"{value:.6g} {unit}" if unit else f"{value:.6g}"


def percent(fraction: float) -> str:
    """A confidence level for people: 0.95 -> "95 %"."""
    return f"{100.0 * fraction:.3g} %"
