"""The capability report of one characteristic: indices, histogram, fitted normal (pure).

``capability_report(record, values)`` runs ``spc.capability`` on the good values of a
period (within sigma by the chart: moving ranges for ``imr``, R-bar/d2 for ``xbar_r``,
s-bar/c4 for ``xbar_s``) and adds what a client needs to draw the histogram:

- bins: the Freedman-Diaconis width h = 2 IQR n^(-1/3) (D. Freedman and P. Diaconis,
  "On the histogram as a density estimator", Z. Wahrscheinlichkeitstheorie 57, 1981),
  k = ceil(range / h) equal bins from the smallest to the largest value; the square-root
  rule k = ceil(sqrt(n)) when the IQR is 0; k kept within 1..``MAX_BINS``. Each bin is
  ``[left, right)`` but the last, which holds the largest value: counts sum to n.
- the fitted normal: the overall mean and sigma (sample sd, n - 1) of
  ``spc.capability``; expected count per bin n (Phi(right) - Phi(left)), which sums to
  slightly less than n (the tails beyond the data); its density at ``CURVE_POINTS``
  evenly spaced x over the data, the specification limits and mean +/- 4 sigma, both per
  unit of measure and on the histogram's count axis (n x bin width x density).

Subgrouped charts use whole subgroups counted from the first value; the values of a
trailing incomplete subgroup are left out (``values_unused``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import stats

from ingest import CharacteristicRecord
from spc import Capability, capability

FloatArray = npt.NDArray[np.float64]
MAX_BINS: Final = 100
CURVE_POINTS: Final = 201
SIGMA_WITHIN: Final = {"imr": "mr", "xbar_r": "rbar", "xbar_s": "sbar"}


class InsufficientData(ValueError):
    """The values cannot give a capability report; the message says why."""


@dataclass(frozen=True)
class Histogram:
    """Bin ``edges`` (k + 1), observed ``counts`` and the normal's ``expected`` counts (k)."""

    rule: str
    edges: tuple[float, ...]
    counts: tuple[int, ...]
    expected: tuple[float, ...]


@dataclass(frozen=True)
class NormalCurve:
    """The fitted normal(mean, sigma) at ``x``: ``density`` per unit, ``count`` per bin."""

    mean: float
    sigma: float
    x: tuple[float, ...]
    density: tuple[float, ...]
    count: tuple[float, ...]


@dataclass(frozen=True)
class CapabilityReport:
    capability: Capability
    histogram: Histogram
    normal: NormalCurve
    values_unused: int


def capability_report(record: CharacteristicRecord, values: Sequence[float]) -> CapabilityReport:
    """Capability of ``values`` (time order) against the record's specification.

    Raises ``InsufficientData`` when the record has no specification limit, there are too
    few values or subgroups, or the values have no variation.
    """
    if record.lsl is None and record.usl is None:
        raise InsufficientData(
            f"characteristic {record.id!r} has no specification limit (lsl or usl): "
            "capability is undefined"
        )
    n = record.subgroup_size
    x = np.asarray(values, dtype=np.float64)
    whole = x.size // n * n
    if whole // n < 2:
        unit = "values" if n == 1 else f"whole subgroups of {n} values"
        raise InsufficientData(
            f"capability needs at least 2 {unit}; the period has {x.size} good values"
        )
    try:
        cap = capability(
            x[:whole], record.lsl, record.usl, record.target, n, SIGMA_WITHIN[record.chart]
        )
    except ValueError as exc:
        raise InsufficientData(str(exc)) from exc
    hist = histogram(x[:whole], cap.mean, cap.sigma_overall)
    curve = normal_curve(cap.mean, cap.sigma_overall, hist, record.lsl, record.usl)
    return CapabilityReport(cap, hist, curve, int(x.size - whole))


def histogram(values: FloatArray, mean: float, sigma: float) -> Histogram:
    """Bins by the Freedman-Diaconis rule (module doc) and the normal's expected counts."""
    x = np.asarray(values, dtype=np.float64)
    k, rule = bin_count(x)
    lo, hi = float(x.min()), float(x.max())
    if hi <= lo:  # one value repeated: one bin of unit width around it
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, k + 1)
    counts, _ = np.histogram(x, bins=edges)
    cdf = stats.norm.cdf(edges, loc=mean, scale=sigma)
    expected = x.size * np.diff(cdf)
    return Histogram(rule, tuple(edges.tolist()), tuple(counts.tolist()), tuple(expected.tolist()))


def bin_count(values: FloatArray) -> tuple[int, str]:
    """(k, rule): Freedman-Diaconis, or the square-root rule when the IQR is 0."""
    x = np.asarray(values, dtype=np.float64)
    span = float(x.max() - x.min())
    q1, q3 = np.percentile(x, [25.0, 75.0])
    iqr = float(q3 - q1)
    if iqr > 0.0 and span > 0.0:
        width = 2.0 * iqr * x.size ** (-1.0 / 3.0)
        k, rule = math.ceil(span / width), "freedman-diaconis"
    else:
        k, rule = math.ceil(math.sqrt(x.size)), "sqrt"
    return min(max(k, 1), MAX_BINS), rule


def normal_curve(
    mean: float, sigma: float, hist: Histogram, lsl: float | None, usl: float | None
) -> NormalCurve:
    """The normal density over the data, the limits and mean +/- 4 sigma (module doc)."""
    n = sum(hist.counts)
    width = (hist.edges[-1] - hist.edges[0]) / len(hist.counts)
    ends = [hist.edges[0], hist.edges[-1], mean - 4.0 * sigma, mean + 4.0 * sigma]
    ends += [v for v in (lsl, usl) if v is not None]
    x = np.linspace(min(ends), max(ends), CURVE_POINTS)
    pdf = stats.norm.pdf(x, loc=mean, scale=sigma)
    return NormalCurve(
        mean, sigma, tuple(x.tolist()), tuple(pdf.tolist()), tuple((n * width * pdf).tolist())
    )
