"""Run rules over a control chart: Western Electric / Nelson tests 1-8 (the batch reference).

Each test flags the point that completes a pattern, and every further point while the
pattern holds. With z_i = (x_i - center) / sigma, and every comparison strict:

1. One point beyond 3 sigma: x_i > centre + 3 sigma or x_i < centre - 3 sigma, the limits
   as drawn (equivalent to |z_i| > 3 but for rounding exactly at a limit). A point
   exactly on a limit is in control.
   (Shewhart; Western Electric 1956; Nelson 1984 test 1; NIST/SEMATECH e-Handbook 6.3.2.)
2. ``same_side`` points in a row on one side of the centre line: z > 0 for all of
   i - n + 1 .. i, or z < 0 for all. A point exactly on the centre line breaks the run.
   (Nelson 1984 test 2: 9 points; Western Electric 1956: 8 points.)
3. ``trend`` points in a row steadily increasing or decreasing: the trend - 1 differences
   x_j - x_(j-1) ending at i are all > 0, or all < 0. A tie breaks the run; 6 points are
   5 differences. (Nelson 1984 test 3: 6 points.)
4. ``alternating`` points in a row alternating up and down: the alternating - 1
   differences ending at i are all non-zero and alternate in sign. A zero difference
   breaks the run. (Nelson 1984 test 4: 14 points.)
5. ``zone_a`` = (k, m): z_i > 2 and at least k of the last m points (i included) have
   z > 2; or the same below, z < -2. At the start of a series fewer than m points exist
   and k of them suffice. (Nelson 1984 test 5 and Western Electric 1956: 2 of 3.)
6. ``zone_b`` = (k, m): as test 5 with 1 sigma. (Nelson 1984 test 6, Western Electric
   1956: 4 of 5.)
7. ``within_c`` points in a row with |z| < 1, either side. (Nelson 1984 test 7: 15.)
8. ``outside_c`` points in a row with |z| > 1, either side, mixed sides allowed.
   (Nelson 1984 test 8: 8.)

Tests 3 and 4 compare the plotted values x, not z. Sources: L. S. Nelson, "The Shewhart
Control Chart - Tests for Special Causes", J. Quality Technology 16(4), 1984, 237-239;
Western Electric Co., *Statistical Quality Control Handbook*, 1956.

Presets (``rule_set(name)``): ``NELSON`` (all eight tests, Nelson's run lengths),
``WESTERN_ELECTRIC`` (tests 1, 2, 5, 6 with 8 points on one side) and ``AIAG``.

``AIAG`` is unconfirmed against its source: the AIAG *Statistical Process Control*
reference manual (2nd ed., 2005) could not be consulted, and secondary sources disagree.
The reading used, the more widely cited one, is one point beyond a control limit, 7
points in a row on one side and 7 points in a row steadily increasing or decreasing
(qualitytrainingportal.com, "AIAG rules"; the same three tests in PQ Systems' Quality
Advisor); the manual adds cycles and other non-random patterns that no test captures.
Other sources (nikunjbhoraniya.com, citing the 2nd ed.; an R ``qcc`` extension) give an
eight-test table instead, Nelson's tests with 7 points on one side: that is
``RuleSet(same_side=7)``. Whether the manual counts a trend in points or in intervals, and
whether an equal neighbour continues it, is unconfirmed too; test 3 here counts points and
a tie always breaks it.

``DEFAULT = NELSON``: Nelson 1984 is the standard statement of all eight tests, and its
run lengths are the defaults of common SPC software (e.g. Minitab's tests 1-8). More tests
raise the false-alarm rate of an in-control process; pick a smaller set for routine
monitoring if that matters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

RULE_IDS = ("1", "2", "3", "4", "5", "6", "7", "8")
ALL_RULES = frozenset(RULE_IDS)
DISPERSION_RULES = frozenset({"1"})
LOCATION_CHARTS = frozenset({"i", "imr", "x", "xbar"})
DISPERSION_CHARTS = frozenset({"r", "s", "mr"})

_Mask = npt.NDArray[np.bool_]
_Floats = npt.NDArray[np.float64]


@dataclass(frozen=True, order=True)
class Violation:
    """A point that breaks a rule: ``index`` is 0-based on the input, ``rule`` "1".."8"."""

    index: int
    rule: str


@dataclass(frozen=True)
class RuleSet:
    """Which tests to run and their run lengths (defaults: Nelson 1984, J. Qual. Tech. 16(4)).

    Parameters
    ----------
    enabled : rule ids "1".."8" to apply (any iterable of them; stored as a frozenset).
    same_side : points in a row on one side of the centre line (test 2).
    trend : points in a row steadily increasing or decreasing (test 3).
    alternating : points in a row alternating up and down (test 4).
    zone_a : (k, m), k of the last m points beyond 2 sigma on one side (test 5).
    zone_b : (k, m), k of the last m points beyond 1 sigma on one side (test 6).
    within_c : points in a row within 1 sigma (test 7).
    outside_c : points in a row beyond 1 sigma, either side (test 8).
    """

    enabled: frozenset[str] = ALL_RULES
    same_side: int = 9
    trend: int = 6
    alternating: int = 14
    zone_a: tuple[int, int] = (2, 3)
    zone_b: tuple[int, int] = (4, 5)
    within_c: int = 15
    outside_c: int = 8

    def __post_init__(self) -> None:
        if isinstance(self.enabled, str):
            raise TypeError(
                f"enabled must be a collection of rule ids, got the string {self.enabled!r};"
                f" write frozenset({{{', '.join(repr(c) for c in self.enabled)}}})"
            )
        object.__setattr__(self, "enabled", frozenset(self.enabled))
        unknown = sorted(map(repr, self.enabled - ALL_RULES))
        if unknown:
            raise ValueError(
                f"unknown rule ids [{', '.join(unknown)}]; use the strings {', '.join(RULE_IDS)}"
            )
        for name in ("same_side", "trend", "alternating", "within_c", "outside_c"):
            value = getattr(self, name)
            if not _is_int(value) or value < 2:
                raise ValueError(f"{name} must be an int of at least 2 points, got {value!r}")
            object.__setattr__(self, name, int(value))
        for name in ("zone_a", "zone_b"):
            object.__setattr__(self, name, _k_of_m(name, getattr(self, name)))


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _k_of_m(name: str, value: object) -> tuple[int, int]:
    pair = tuple(value) if isinstance(value, tuple | list) else (value,)
    if len(pair) != 2 or not all(_is_int(v) for v in pair) or not 2 <= pair[0] <= pair[1]:
        raise ValueError(
            f"{name} must be a pair (k, m) of ints with 2 <= k <= m (k of the last m points),"
            f" got {value!r}"
        )
    return int(pair[0]), int(pair[1])


NELSON = RuleSet()
WESTERN_ELECTRIC = RuleSet(enabled=frozenset({"1", "2", "5", "6"}), same_side=8)
AIAG = RuleSet(enabled=frozenset({"1", "2", "3"}), same_side=7, trend=7)
DEFAULT = NELSON
PRESETS: Mapping[str, RuleSet] = MappingProxyType(
    {"nelson": NELSON, "western_electric": WESTERN_ELECTRIC, "aiag": AIAG}
)


def rule_set(name: str) -> RuleSet:
    """The preset called ``name``: "nelson", "western_electric" or "aiag" (any case)."""
    preset = PRESETS.get(name.strip().lower()) if isinstance(name, str) else None
    if preset is None:
        raise ValueError(
            f"unknown rule preset {name!r}; presets: {', '.join(PRESETS)};"
            ' to pick rules by id pass a sequence such as ("1", "2")'
        )
    return preset


def rules_for_chart(chart: str, rules: RuleSet | str | Iterable[str] = DEFAULT) -> RuleSet:
    """The tests that apply to ``chart``: all of ``rules`` on a location chart, test 1 only
    on a dispersion chart.

    Tests 2-8 assume the plotted statistic is roughly normal and symmetric about the
    centre line with independent points. Ranges, standard deviations and moving ranges are
    skewed (their centre line is not their median) and moving ranges are autocorrelated,
    since neighbours share a point, so run and zone tests on R, S and MR charts raise
    false alarms. Applying them there is a common mistake in SPC tools.

    Parameters
    ----------
    chart : a location chart ("i", "imr", "x", "xbar") or a dispersion chart ("r", "s", "mr").
    rules : a RuleSet, a preset name or rule ids, as for ``check_rules``.
    """
    resolved = _as_rule_set(rules)
    if chart in DISPERSION_CHARTS:
        return dataclasses.replace(resolved, enabled=resolved.enabled & DISPERSION_RULES)
    if chart in LOCATION_CHARTS:
        return resolved
    known = ", ".join(sorted(LOCATION_CHARTS | DISPERSION_CHARTS))
    raise ValueError(f"unknown chart {chart!r}; known charts: {known}")


def check_rules(
    values: npt.ArrayLike,
    center: float,
    sigma: float,
    rules: RuleSet | str | Iterable[str] = DEFAULT,
) -> list[Violation]:
    """Evaluate Western Electric / Nelson tests 1-8 (module docstring) on chart points.

    Parameters
    ----------
    values : chart points in time order (individuals or subgroup means); no NaN.
        +/-inf are allowed and count as beyond every limit.
    center, sigma : centre line and the sigma of the plotted statistic, same unit.
    rules : a ``RuleSet``, a preset name ("nelson", "western_electric", "aiag") or a
        sequence of rule ids such as ``("1", "2")`` (then with Nelson's run lengths).

    Returns
    -------
    One ``Violation`` per (index, rule), sorted by index then rule.
    """
    rule_set_ = _as_rule_set(rules)
    if not (np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a positive finite number, got {sigma!r}")
    if not np.isfinite(center):
        raise ValueError(f"center must be a finite number, got {center!r}")
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"values must be a 1-D sequence of points, got shape {x.shape}")
    nan_at = np.flatnonzero(np.isnan(x))
    if nan_at.size:
        raise ValueError(
            f"values contain NaN at index {nan_at[:5].tolist()}; drop missing points"
            " before checking rules"
        )
    if x.size == 0:
        return []
    z = (x - center) / sigma
    found = [
        Violation(int(i), rule)
        for rule in sorted(rule_set_.enabled - {"1"})
        for i in np.flatnonzero(_TESTS[rule](x, z, rule_set_))
    ]
    if "1" in rule_set_.enabled:
        # against the limits as drawn (centre +/- 3 sigma), not z > 3: the two can differ
        # by one rounding step exactly at a limit, and users judge by the drawn limit
        ucl, lcl = center + 3.0 * sigma, center - 3.0 * sigma
        found.extend(Violation(int(i), "1") for i in np.flatnonzero((x > ucl) | (x < lcl)))
    return sorted(found)


def _as_rule_set(rules: RuleSet | str | Iterable[str]) -> RuleSet:
    if isinstance(rules, RuleSet):
        return rules
    if isinstance(rules, str):
        return rule_set(rules)
    return RuleSet(enabled=frozenset(rules))


def _run_lengths(mask: _Mask) -> npt.NDArray[np.int64]:
    """Length of the run of True ending at each index (0 where ``mask`` is False)."""
    index = np.arange(mask.size, dtype=np.int64)
    last_false = np.maximum.accumulate(np.where(mask, -1, index))
    return index - last_false


def _steps(x: _Floats) -> npt.NDArray[np.int64]:
    """+1, -1 or 0 for x_j above, below or equal to x_(j-1), stored at j - 1.

    Comparisons rather than ``np.sign(np.diff(x))``: inf - inf is NaN, inf == inf a tie.
    """
    return (x[1:] > x[:-1]).astype(np.int64) - (x[1:] < x[:-1]).astype(np.int64)


def _on_points(step_mask: _Mask) -> _Mask:
    """Move a mask over steps (x_(j-1) to x_j, stored at j - 1) onto the points (at j)."""
    return np.concatenate([np.zeros(1, dtype=np.bool_), step_mask])


def _k_of_last_m(mask: _Mask, k: int, m: int) -> _Mask:
    """``mask`` holds at i and in at least k of the points i - m + 1 .. i that exist."""
    total = np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(mask, dtype=np.int64)])
    start = np.maximum(np.arange(mask.size) + 1 - m, 0)
    counts: npt.NDArray[np.int64] = total[1:] - total[start]
    return mask & (counts >= k)


def _same_side(x: _Floats, z: _Floats, rs: RuleSet) -> _Mask:
    n = rs.same_side
    return (_run_lengths(z > 0.0) >= n) | (_run_lengths(z < 0.0) >= n)


def _trend(x: _Floats, z: _Floats, rs: RuleSet) -> _Mask:
    steps, n = _steps(x), rs.trend - 1
    return _on_points((_run_lengths(steps == 1) >= n) | (_run_lengths(steps == -1) >= n))


def _alternating(x: _Floats, z: _Floats, rs: RuleSet) -> _Mask:
    steps = _steps(x)
    flips = np.zeros(steps.size, dtype=np.bool_)
    flips[1:] = steps[1:] * steps[:-1] == -1  # step j reverses step j - 1
    chain = np.where(steps != 0, _run_lengths(flips) + 1, 0)  # alternating steps ending here
    return _on_points(chain >= rs.alternating - 1)


def _zone_a(x: _Floats, z: _Floats, rs: RuleSet) -> _Mask:
    k, m = rs.zone_a
    return _k_of_last_m(z > 2.0, k, m) | _k_of_last_m(z < -2.0, k, m)


def _zone_b(x: _Floats, z: _Floats, rs: RuleSet) -> _Mask:
    k, m = rs.zone_b
    return _k_of_last_m(z > 1.0, k, m) | _k_of_last_m(z < -1.0, k, m)


def _within_c(x: _Floats, z: _Floats, rs: RuleSet) -> _Mask:
    return _run_lengths(np.abs(z) < 1.0) >= rs.within_c


def _outside_c(x: _Floats, z: _Floats, rs: RuleSet) -> _Mask:
    return _run_lengths(np.abs(z) > 1.0) >= rs.outside_c


_TESTS: Mapping[str, Callable[[_Floats, _Floats, RuleSet], _Mask]] = MappingProxyType(
    {
        "2": _same_side,
        "3": _trend,
        "4": _alternating,
        "5": _zone_a,
        "6": _zone_b,
        "7": _within_c,
        "8": _outside_c,
    }
)
