"""Slow, obviously correct reference for the run rules (tests 1-8 of ``spc.rules``).

Plain Python over plain floats, point by point and window by window, written from the
definitions (Nelson 1984, J. Quality Technology 16(4); Western Electric *Statistical
Quality Control Handbook*, 1956) as stated in the ``spc.rules`` docstring. Nothing here
imports ``spc``: the run lengths come in as plain arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from itertools import pairwise


def violations(
    values: list[float],
    center: float,
    sigma: float,
    *,
    enabled: Collection[str],
    same_side: int,
    trend: int,
    alternating: int,
    zone_a: tuple[int, int],
    zone_b: tuple[int, int],
    within_c: int,
    outside_c: int,
) -> list[tuple[int, str]]:
    """(index, rule) pairs for every point that completes or continues a pattern, sorted."""
    z = [(x - center) / sigma for x in values]
    tests: dict[str, Callable[[int], bool]] = {
        "1": lambda i: values[i] > center + 3.0 * sigma or values[i] < center - 3.0 * sigma,
        "2": lambda i: same_side_run(z, i, same_side),
        "3": lambda i: trend_run(values, i, trend),
        "4": lambda i: alternating_run(values, i, alternating),
        "5": lambda i: k_of_m(z, i, zone_a, 2.0),
        "6": lambda i: k_of_m(z, i, zone_b, 1.0),
        "7": lambda i: all_of_last(z, i, within_c, lambda v: abs(v) < 1.0),
        "8": lambda i: all_of_last(z, i, outside_c, lambda v: abs(v) > 1.0),
    }
    found = []
    for i in range(len(values)):
        for rule in sorted(enabled):
            if tests[rule](i):
                found.append((i, rule))
    return found


def all_of_last(z: list[float], i: int, n: int, holds: Callable[[float], bool]) -> bool:
    """Points i - n + 1 .. i all exist and all satisfy ``holds``."""
    if i - n + 1 < 0:
        return False
    return all(holds(z[j]) for j in range(i - n + 1, i + 1))


def same_side_run(z: list[float], i: int, n: int) -> bool:
    above = all_of_last(z, i, n, lambda v: v > 0.0)
    below = all_of_last(z, i, n, lambda v: v < 0.0)
    return above or below


def step(values: list[float], j: int) -> int:
    """+1 if point j is above point j - 1, -1 if below, 0 for a tie."""
    if values[j] > values[j - 1]:
        return 1
    if values[j] < values[j - 1]:
        return -1
    return 0


def trend_run(values: list[float], i: int, n: int) -> bool:
    """Points i - n + 1 .. i exist and their n - 1 steps all go up, or all go down."""
    first = i - n + 1
    if first < 0:
        return False
    steps = [step(values, j) for j in range(first + 1, i + 1)]
    return all(s == 1 for s in steps) or all(s == -1 for s in steps)


def alternating_run(values: list[float], i: int, n: int) -> bool:
    """Points i - n + 1 .. i exist, no step is a tie and each step reverses the one before."""
    first = i - n + 1
    if first < 0:
        return False
    steps = [step(values, j) for j in range(first + 1, i + 1)]
    if any(s == 0 for s in steps):
        return False
    return all(b == -a for a, b in pairwise(steps))


def k_of_m(z: list[float], i: int, k_m: tuple[int, int], threshold: float) -> bool:
    """Point i is beyond ``threshold`` on one side and so are k of the last m that exist."""
    k, m = k_m
    window = z[max(0, i - m + 1) : i + 1]
    if z[i] > threshold:
        return sum(1 for v in window if v > threshold) >= k
    if z[i] < -threshold:
        return sum(1 for v in window if v < -threshold) >= k
    return False
