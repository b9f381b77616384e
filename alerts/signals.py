"""Chart signals as the alerting layer receives them from the SPC evaluation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from spc import RuleSet

CHART_NAMES = {"i": "individuals", "mr": "moving-range", "ewma": "EWMA", "cusum": "CUSUM"}
PATTERNS = {
    "2": "{n} points in a row on one side of the centre line",
    "3": "{n} points in a row steadily {side}",
    "4": "{n} points in a row alternating up and down",
    "5": "{k} of the last {n} points beyond 2 sigma on one side",
    "6": "{k} of the last {n} points beyond 1 sigma on one side",
    "7": "{n} points in a row within 1 sigma of the centre line (stratification)",
    "8": "{n} points in a row beyond 1 sigma, none within (mixture)",
}


def pattern_sizes(rules: RuleSet, rule: str) -> tuple[int, int]:
    """(k, n) of a pattern rule under a rule set, for its description."""
    sizes = {
        "2": (rules.same_side, rules.same_side),
        "3": (rules.trend, rules.trend),
        "4": (rules.alternating, rules.alternating),
        "5": rules.zone_a,
        "6": rules.zone_b,
        "7": (rules.within_c, rules.within_c),
        "8": (rules.outside_c, rules.outside_c),
    }
    return sizes.get(rule, (0, 0))


@dataclass(frozen=True)
class ChartSignal:
    """One signal on one point; ``limit`` is the limit it crossed (None for patterns)."""

    characteristic: str
    time: datetime
    value: float
    rule: str
    chart: str  # "i" | "mr" | "ewma" | "cusum"
    side: str  # "high" | "low" | "up" | "down" | "none"
    limit: float | None
    limit_version: int
    pattern: tuple[int, int] = (0, 0)  # (k, n) of a pattern rule, for its description
    point: float | None = None  # the measured value of the point (``value`` may be a statistic)

    def describe(self) -> str:
        """A sentence for people: what happened, against which limit."""
        version = f"limits v{self.limit_version}"
        if self.rule in PATTERNS:
            side = "increasing" if self.side == "up" else "decreasing"
            k, n = self.pattern
            what = PATTERNS[self.rule].format(side=side, k=k, n=n)
            return f"Rule {self.rule}: {what} (last value {self.value:.6g}, {version})"
        chart = CHART_NAMES.get(self.chart, self.chart)
        if self.rule in ("ewma", "cusum"):
            word = "upper" if self.side == "high" else "lower"
            return (f"{chart} {word} signal: statistic {self.value:.6g} beyond "
                    f"{self.limit:.6g} ({version})")  # fmt: skip
        if self.chart == "mr":
            return (
                f"Rule 1: moving range {self.value:.6g} above its UCL {self.limit:.6g} ({version})"
            )
        where, op = ("above UCL", ">") if self.side == "high" else ("below LCL", "<")
        return (f"Rule {self.rule}: point {where} on the {chart} chart "
                f"({self.value:.6g} {op} {self.limit:.6g}, {version})")  # fmt: skip
