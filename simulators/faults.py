"""The faults a scenario can inject, and what each does to one part's values.

Every fault acts from part index ``start`` (inclusive) to ``end`` (exclusive; None: to the
end of the run) on the characteristics it names, in units of each characteristic's own
sigma, so one scenario means the same thing on a 0.005 mm diameter and a 0.1 µm roughness:

=================  ==========================================================================
kind               effect on a faulty part i (x = nominal + sigma * z, z ~ N(0, 1))
=================  ==========================================================================
in-control         none
mean-shift         x + size * sigma                                   (size: sigmas, def. 2)
drift              x + size * sigma * (k + 1), k = parts since the start or the last tool
                   change (every ``tool_change_every`` parts)         (size: sigmas/part, 0.05)
variance           nominal + size * sigma * z                         (size: sigma factor, 2)
stratification     nominal + size * sigma * z, size < 1: points hug the centre line (0.3)
mixture            x ± size * sigma, one sign drawn per part for all its characteristics:
                   two streams                                        (size: 2)
cyclic             x + size * sigma * sin(2 pi (i - start) / period_parts)  (size: 1.5)
outliers           x ± size * sigma on a random ``rate`` of the parts (size: 5, rate: 0.02)
freeze             the value of the last part before the start, repeated (a stuck sensor)
bad-quality        unchanged value, but sent with bad quality (OPC UA status Bad...)
lost-connection    the part's values are never delivered
=================  ==========================================================================

The extra random draws (mixture signs, outliers) come from a second stream, so the base
noise z of a faulty run is the very same as the in-control run with the same seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt

FaultKind = Literal[
    "in-control",
    "mean-shift",
    "drift",
    "variance",
    "stratification",
    "mixture",
    "cyclic",
    "outliers",
    "freeze",
    "bad-quality",
    "lost-connection",
]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)

#: The magnitude each kind uses when none is given (units in the table above).
DEFAULT_SIZE: dict[str, float] = {
    "mean-shift": 2.0,
    "drift": 0.05,
    "variance": 2.0,
    "stratification": 0.3,
    "mixture": 2.0,
    "cyclic": 1.5,
    "outliers": 5.0,
}
#: Kinds that change nothing before the start: the data-health faults last this long.
DEFAULT_DURATION: dict[str, int] = {"bad-quality": 20, "lost-connection": 30}
DataArray = npt.NDArray[np.float64]


class FaultParameterError(ValueError):
    """A fault parameter out of range; `field` names the `FaultSpec` field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class FaultSpec:
    """One fault: its kind, when it acts (part indices) and its parameters."""

    kind: FaultKind
    start: int = 100
    size: float | None = None
    end: int | None = None
    tool_change_every: int | None = None
    period_parts: int = 40
    rate: float = 0.02

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise FaultParameterError(
                "kind", f"fault kind must be one of {FAULT_KINDS}, got {self.kind!r}"
            )
        if self.start < 0:
            raise FaultParameterError(
                "start", f"the fault's start part must be >= 0, got {self.start}"
            )
        if self.end is not None and self.end <= self.start:
            raise FaultParameterError(
                "end", f"the fault's end part ({self.end}) must be after its start ({self.start})"
            )
        if self.size is not None and not math.isfinite(self.size):
            raise FaultParameterError(
                "size", f"the fault's size must be a finite number, got {self.size}"
            )
        if self.kind in ("variance", "stratification") and self.size is not None and self.size <= 0:
            raise FaultParameterError("size", f"a {self.kind} factor must be > 0, got {self.size}")
        if self.tool_change_every is not None and self.tool_change_every < 1:
            raise FaultParameterError(
                "tool_change_every", f"tool_change_every must be >= 1, got {self.tool_change_every}"
            )
        if self.period_parts < 2:
            raise FaultParameterError(
                "period_parts", f"a cycle's period must be >= 2 parts, got {self.period_parts}"
            )
        if not 0.0 < self.rate <= 1.0:
            raise FaultParameterError(
                "rate", f"the outlier rate must be in (0, 1], got {self.rate}"
            )

    @property
    def magnitude(self) -> float:
        """The size in effect: the given one, else the kind's default (0 if it has none)."""
        return self.size if self.size is not None else DEFAULT_SIZE.get(self.kind, 0.0)

    @property
    def last_part(self) -> int | None:
        """The first part after the fault (exclusive end), or None: until the run ends."""
        if self.end is not None:
            return self.end
        duration = DEFAULT_DURATION.get(self.kind)
        return None if duration is None else self.start + duration

    def active(self, index: int) -> bool:
        """Return True when part `index` is affected (always False for in-control)."""
        end = self.last_part
        return self.kind != "in-control" and index >= self.start and (end is None or index < end)

    def params(self) -> dict[str, float | int | None]:
        """The parameters that matter for this kind, for the ground truth."""
        kind, size = self.kind, self.magnitude
        if kind == "drift":
            return {"sigma_per_part": size, "tool_change_every": self.tool_change_every}
        if kind == "cyclic":
            return {"amplitude_sigma": size, "period_parts": self.period_parts}
        if kind == "outliers":
            return {"size_sigma": size, "rate": self.rate}
        if kind in ("variance", "stratification"):
            return {"sigma_factor": size}
        if kind in ("mean-shift", "mixture"):
            return {"size_sigma": size}
        return {}

    def describe(self) -> str:
        """One line for people: what happens and from which part."""
        p = self.params()
        span = f"from part {self.start}" + (f" to {self.last_part}" if self.last_part else "")
        what = {
            "mean-shift": f"mean {p.get('size_sigma', 0):+g} sigma",
            "drift": f"drift of {p.get('sigma_per_part', 0):g} sigma per part"
            + (
                f", tool change every {self.tool_change_every} parts"
                if self.tool_change_every
                else ""
            ),
            "variance": f"sigma x {p.get('sigma_factor', 0):g}",
            "stratification": f"sigma x {p.get('sigma_factor', 0):g} (stratified)",
            "mixture": f"two streams at ±{p.get('size_sigma', 0):g} sigma",
            "cyclic": f"cycle of ±{p.get('amplitude_sigma', 0):g} sigma every "
            f"{self.period_parts} parts",
            "outliers": f"outliers of ±{p.get('size_sigma', 0):g} sigma on "
            f"{self.rate:.0%} of the parts",
            "freeze": "sensor frozen at its last value",
            "bad-quality": "values sent with bad quality",
            "lost-connection": "connection lost: no values delivered",
        }.get(self.kind, "in control")
        return f"{what} {span}"


def apply_fault(
    spec: FaultSpec,
    index: int,
    values: DataArray,
    nominal: DataArray,
    sigma: DataArray,
    mask: npt.NDArray[np.bool_],
    frozen: DataArray,
    extra: np.random.Generator,
) -> None:
    """Change `values` in place where `mask` is set, for faulty part `index`.

    `values` is nominal + sigma * z for every characteristic; `frozen` holds each one's
    value just before the fault started (used by ``freeze``). The caller has checked that
    the part is faulty; quality and delivery faults leave the values alone.
    """
    kind, size, k = spec.kind, spec.magnitude, index - spec.start
    if kind == "mean-shift":
        values[mask] += size * sigma[mask]
    elif kind == "drift":
        run = k % spec.tool_change_every if spec.tool_change_every else k
        values[mask] += size * sigma[mask] * (run + 1)
    elif kind in ("variance", "stratification"):
        values[mask] = nominal[mask] + size * (values[mask] - nominal[mask])
    elif kind == "mixture":  # one stream per part: the same sign on every characteristic
        sign = -1.0 if extra.random() < 0.5 else 1.0
        values[mask] += sign * size * sigma[mask]
    elif kind == "cyclic":
        values[mask] += size * sigma[mask] * math.sin(2.0 * math.pi * k / spec.period_parts)
    elif kind == "outliers":
        draws = extra.random(values.size)
        signs = np.where(extra.random(values.size) < 0.5, -1.0, 1.0)
        hit = mask & (draws < spec.rate)
        values[hit] += (size * sigma * signs)[hit]
    elif kind == "freeze":
        values[mask] = frozen[mask]
