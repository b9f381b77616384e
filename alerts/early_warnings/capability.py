"""Capability warning: the rolling Cpk is below its target beyond reasonable doubt.

Raised only when the upper bound of Cpk's 95 % interval is below the target, so a small
sample with a low point estimate does not cry wolf; the condition clears once the point
estimate is back at or above the target (the gap between the two is the hysteresis).

Conventions are those of ``spc.capability`` (Montgomery, *Introduction to Statistical
Quality Control*, 6th ed., ch. 8): for individuals, sigma_within = MR-bar / d2 with
d2 = 2 / sqrt(pi) (moving ranges of span 2), Cpk = min((USL - mean), (mean - LSL)) /
3 sigma_within over the limits that exist, and Bissell's interval
Cpk ± z sqrt(1 / (9 n) + Cpk² / (2 ν)) with ν = n - 1 (``spc.capability.cpk_interval``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from alerts.early_warnings.model import JsonValue, Severity
from spc import Metric, MetricValue, grade_metric
from spc.capability import capability_indices, cpk_interval, within_dof
from spc.constants import D2_N2

CPK_TARGET = 1.33
"""Default Cpk target (the grade-3 threshold of docs/quality-grades.md)."""
CPK_NOT_CAPABLE = 1.0
"""An upper bound below this makes the warning critical: not capable even at best."""
CAPABILITY_MIN_POINTS = 25
"""Fewer points than this: no capability judgement (as the grading's minimum)."""


@dataclass(frozen=True)
class CapabilityCheck:
    """Cpk of one sample with its two-sided 95 % interval, against a target."""

    n: int
    mean: float
    sigma_within: float
    cpk: float
    interval: tuple[float, float]
    target: float

    @property
    def below_target(self) -> bool:
        """True when even the interval's upper bound is below the target."""
        return self.interval[1] < self.target

    @property
    def severity(self) -> Severity:
        """critical when the upper bound is below 1.0, else warning."""
        return "critical" if self.interval[1] < CPK_NOT_CAPABLE else "warning"

    def message(self) -> str:
        """A sentence for people."""
        low, high = self.interval
        return (
            f"Rolling Cpk {self.cpk:.2f} (95 % interval {low:.2f}–{high:.2f}, n = {self.n}) "
            f"is below the target {self.target:.2f}"
        )

    def details(self) -> dict[str, JsonValue]:
        """A JSON-able summary, with the grade the point estimate reaches."""
        graded = grade_metric(MetricValue(Metric.CPK, self.cpk, self.n))
        return {
            "method": "Cpk with sigma_within = MR-bar/d2, Bissell 95 % interval",
            "n": self.n,
            "mean": self.mean,
            "sigma_within": self.sigma_within,
            "cpk": self.cpk,
            "cpk_interval": [self.interval[0], self.interval[1]],
            "target": self.target,
            "grade": graded.grade,
            "next_grade_cpk": graded.next_target,
        }


def check_cpk(
    n: int,
    mean: float,
    sigma_within: float,
    lsl: float | None,
    usl: float | None,
    target: float = CPK_TARGET,
    dof: float | None = None,
) -> CapabilityCheck:
    """Cpk and its interval from summary statistics (``dof`` defaults to n - 1)."""
    if lsl is None and usl is None:
        raise ValueError("give at least one specification limit (lsl or usl)")
    if n < 2 or not sigma_within > 0.0:
        raise ValueError("Cpk needs n >= 2 and sigma_within > 0")
    _, cpk, _, _ = capability_indices(mean, sigma_within, lsl, usl)
    assert cpk is not None  # a limit exists
    return CapabilityCheck(n, mean, sigma_within, cpk, cpk_interval(cpk, n, dof), target)


def rolling_cpk(
    values: npt.ArrayLike,
    lsl: float | None,
    usl: float | None,
    target: float = CPK_TARGET,
    min_points: int = CAPABILITY_MIN_POINTS,
) -> CapabilityCheck | None:
    """Cpk of individuals over `values`; None with fewer than `min_points` or no variation."""
    x = np.asarray(values, dtype=np.float64)
    if x.size < max(min_points, 2) or (lsl is None and usl is None):
        return None
    sigma = float(np.abs(np.diff(x)).mean()) / D2_N2
    if not sigma > 0.0:
        return None  # a frozen sensor: the data-health check speaks for it
    dof = within_dof("mr", int(x.size), 1)
    return check_cpk(int(x.size), float(x.mean()), sigma, lsl, usl, target, dof)
