"""Chart signals as the alerting layer receives them from the SPC evaluation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

CHART_NAMES = {"i": "individuals", "mr": "moving-range"}


@dataclass(frozen=True)
class ChartSignal:
    """One rule violation on one point; ``limit`` is the control limit it crossed."""

    characteristic: str
    time: datetime
    value: float
    rule: str
    chart: str  # "i" | "mr"
    side: str  # "high" | "low"
    limit: float
    limit_version: int

    def describe(self) -> str:
        """A sentence for people: what happened, against which limit."""
        chart = CHART_NAMES.get(self.chart, self.chart)
        if self.chart == "mr":
            return (
                f"Rule {self.rule}: moving range {self.value:.6g} above its UCL "
                f"{self.limit:.6g} (limits v{self.limit_version})"
            )
        where, op = ("above UCL", ">") if self.side == "high" else ("below LCL", "<")
        return (
            f"Rule {self.rule}: point {where} on the {chart} chart "
            f"({self.value:.6g} {op} {self.limit:.6g}, limits v{self.limit_version})"
        )
