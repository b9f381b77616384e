"""Data health: a source gone quiet, a frozen sensor, values of bad quality.

Conventions:

- quiet source: no data for longer than max(factor × usual interval, min seconds), the
  usual interval being the median gap between consecutive recent points (robust to the
  odd pause; a batch sharing one timestamp gives gaps of 0, leaving the minimum);
- frozen sensor: the same value ``repeats`` times in a row, by exact float equality, as
  real measurement noise never repeats exactly at float resolution;
- bad quality: any value delivered with bad quality (OPC UA status Bad/Uncertain,
  Sparkplug quality) counts; the collector tells the count, the check only judges it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from alerts.early_warnings.model import JsonValue, format_duration, format_value

QUIET_FACTOR = 5.0
"""Default multiple of the usual interval that counts as quiet."""
QUIET_MIN_SECONDS = 10.0
"""Default shortest silence ever called quiet, in seconds."""
FROZEN_REPEATS = 10
"""Default number of identical values in a row that make a sensor frozen."""


def usual_interval(seconds: npt.ArrayLike) -> float | None:
    """Median gap in seconds between consecutive points; None with fewer than 2."""
    t = np.asarray(seconds, dtype=np.float64)
    return float(np.median(np.diff(t))) if t.size >= 2 else None


@dataclass(frozen=True)
class QuietCheck:
    """How long a source has been silent against its threshold (seconds)."""

    silent_for: float
    usual_interval: float
    threshold: float
    factor: float

    @property
    def quiet(self) -> bool:
        """True when the silence is longer than the threshold."""
        return self.silent_for > self.threshold

    def message(self) -> str:
        """A sentence for people."""
        return (
            f"No data for {format_duration(self.silent_for)}, more than "
            f"{self.factor:g} × the usual interval of {self.usual_interval:.3g} s "
            f"(threshold {format_duration(self.threshold)})"
        )

    def details(self) -> dict[str, JsonValue]:
        """A JSON-able summary."""
        return {
            "silent_for_s": self.silent_for,
            "usual_interval_s": self.usual_interval,
            "threshold_s": self.threshold,
            "basis": "median gap between consecutive recent points",
        }


def check_quiet(
    last_seen: float,
    now: float,
    interval: float,
    factor: float = QUIET_FACTOR,
    min_seconds: float = QUIET_MIN_SECONDS,
) -> QuietCheck:
    """Silence since `last_seen` at `now` (both in seconds) against the usual `interval`."""
    threshold = max(factor * interval, min_seconds)
    return QuietCheck(max(now - last_seen, 0.0), interval, threshold, factor)


@dataclass(frozen=True)
class RunState:
    """The tail of a value stream: its last value, how many times in a row it has come
    (``run``), and how many points in a row have each differed from the one before
    (``moving``, which clears a frozen-sensor warning)."""

    last: float | None = None
    run: int = 0
    moving: int = 0

    def extend(self, values: npt.ArrayLike) -> RunState:
        """The state after `values` (oldest first)."""
        last, run, moving = self.last, self.run, self.moving
        for v in np.asarray(values, dtype=np.float64).tolist():
            if last is not None and v == last:
                run, moving = run + 1, 0
            else:
                run, moving = 1, moving + 1 if last is not None else 0
            last = v
        return RunState(last, run, moving)

    def frozen(self, repeats: int = FROZEN_REPEATS) -> bool:
        """True when the last value has come `repeats` times or more in a row."""
        return self.run >= repeats

    def message(self, unit: str | None) -> str:
        """A sentence for people about a frozen value."""
        value = format_value(self.last if self.last is not None else float("nan"), unit)
        return f"The same value {value} came {self.run} times in a row: is the sensor frozen?"


def bad_quality_message(bad: int, good: int) -> str:
    """A sentence for people about a batch with bad-quality values."""
    return (
        f"{bad} of {bad + good} values in the last batch arrived with bad quality "
        "(OPC UA status or Sparkplug quality) and were left out"
    )
