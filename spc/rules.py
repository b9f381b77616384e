"""Run rules over a location chart (the batch reference)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IMPLEMENTED_RULES = ("1",)


@dataclass(frozen=True, order=True)
class Violation:
    """A point that breaks a rule: ``index`` is 0-based on the input, ``rule`` "1".."8"."""

    index: int
    rule: str


def check_rules(
    values: npt.ArrayLike, center: float, sigma: float, rules: Sequence[str] = ("1",)
) -> list[Violation]:
    """Evaluate Western Electric / Nelson rules on chart points.

    Rule 1: one point strictly beyond center +/- 3 sigma (a point exactly on a limit is
    in control), as in the NIST/SEMATECH e-Handbook sec. 6.3.2 and the AIAG SPC manual.
    Rules 2..8 arrive with the full SPC core; asking for them now raises ``ValueError``.

    Parameters
    ----------
    values : chart points in time order (individuals or subgroup means).
    center, sigma : centre line and the sigma of the plotted statistic, same unit.
    rules : rule ids to apply.
    """
    unknown = [r for r in rules if r not in IMPLEMENTED_RULES]
    if unknown:
        raise ValueError(f"rules {unknown} are not implemented yet; available: {IMPLEMENTED_RULES}")
    if not (np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a positive finite number, got {sigma!r}")
    x = np.asarray(values, dtype=np.float64)
    if "1" not in rules:
        return []
    ucl = center + 3.0 * sigma
    lcl = center - 3.0 * sigma
    beyond = np.flatnonzero((x > ucl) | (x < lcl))
    return [Violation(int(i), "1") for i in beyond]
