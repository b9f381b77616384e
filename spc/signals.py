"""Decoding the kernel's per-point flags into signals, column-wise.

One numpy pass per flag bit builds a ``SignalTable`` of plain arrays; ``RuleSignal``
objects are only made when a consumer asks for them, so a batch full of signals costs
array operations, not a Python object per signal.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt

from spc import _kernels as k
from spc.engine_types import LimitSet, RuleSignal

# (flag bit, rule, chart, side) in the order signals of one point are listed
_KINDS: list[tuple[int, str, str, str]] = [
    (k.FLAG_ABOVE_UCL, "1", "i", "high"),
    (k.FLAG_BELOW_LCL, "1", "i", "low"),
    (k.FLAG_MR_ABOVE_UCL, "1", "mr", "high"),
    *[(k.FLAG_RULE_2 << (r - 2), str(r), "i", "?") for r in range(2, 9)],
    (k.FLAG_EWMA_HIGH, "ewma", "ewma", "high"),
    (k.FLAG_EWMA_LOW, "ewma", "ewma", "low"),
    (k.FLAG_CUSUM_HIGH, "cusum", "cusum", "high"),
    (k.FLAG_CUSUM_LOW, "cusum", "cusum", "low"),
]
ANY_SIGNAL = 0
for _bit, *_ in _KINDS:
    ANY_SIGNAL |= _bit


@dataclass(frozen=True)
class SignalTable:
    """Signals of one batch as columns; ``kind`` indexes the module's ``_KINDS``."""

    position: npt.NDArray[np.int64]
    characteristic: npt.NDArray[np.int64]
    kind: npt.NDArray[np.int64]
    side: npt.NDArray[np.int64]  # indexes into SIDES
    value: npt.NDArray[np.float64]
    limit: npt.NDArray[np.float64]
    version: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.position.size)

    def reindexed(self, order: npt.NDArray[np.int64]) -> SignalTable:
        """The table for a batch that was processed as ``batch[order]``: original positions."""
        position = order[self.position]
        o = np.lexsort((self.kind, position))
        return SignalTable(
            position[o], self.characteristic[o], self.kind[o], self.side[o], self.value[o],
            self.limit[o], self.version[o],
        )  # fmt: skip

    def objects(self) -> list[RuleSignal]:
        return [
            RuleSignal(p, c, _KINDS[kd][1], _KINDS[kd][2], s, v, None if lm != lm else lm, ver)
            for p, c, kd, s, v, lm, ver in zip(
                self.position.tolist(), self.characteristic.tolist(), self.kind.tolist(),
                [SIDES[i] for i in self.side.tolist()], self.value.tolist(),
                self.limit.tolist(), self.version.tolist(),
                strict=True,
            )
        ]  # fmt: skip


class BatchResult:
    """What one ``Engine.process`` call found: signals and newly frozen limit sets."""

    def __init__(self, table: SignalTable, new_limits: dict[int, LimitSet]) -> None:
        self.table = table
        self.new_limits = new_limits

    @property
    def count(self) -> int:
        """Number of signals (cheap: no objects are built)."""
        return len(self.table)

    @cached_property
    def signals(self) -> list[RuleSignal]:
        """The signals in batch order (several on one point in rule order)."""
        return self.table.objects()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BatchResult):
            return NotImplemented
        return self.signals == other.signals and self.new_limits == other.new_limits

    __hash__ = None  # type: ignore[assignment]  # mutable cache: not hashable

    def __repr__(self) -> str:
        return f"BatchResult(signals={self.signals!r}, new_limits={self.new_limits!r})"


def decode(
    chars: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    mr: npt.NDArray[np.float64],
    mon: npt.NDArray[np.float64],
    flags: npt.NDArray[np.int64],
    versions: npt.NDArray[np.int64],
    fstate: npt.NDArray[np.float64],
    mcfg: npt.NDArray[np.float64],
) -> SignalTable:
    """Every signal of a processed batch, column-wise, in batch order."""
    hit = np.flatnonzero(flags & ANY_SIGNAL)
    parts: list[
        tuple[npt.NDArray[np.int64], int, npt.NDArray[np.float64], npt.NDArray[np.float64]]
    ] = []
    f, c = flags[hit], chars[hit]
    for kind, (bit, rule, chart, _) in enumerate(_KINDS):
        sel = np.flatnonzero(f & bit)
        if sel.size:
            idx, rows = hit[sel], c[sel]
            value, limit = _value_and_limit(
                rule, chart, bit, idx, rows, values, mr, mon, fstate, mcfg
            )
            parts.append((idx, kind, value, limit))
    if not parts:
        empty_i, empty_f = np.empty(0, np.int64), np.empty(0)
        return SignalTable(empty_i, empty_i, empty_i, empty_i, empty_f, empty_f, empty_i)
    position = np.concatenate([p[0] for p in parts])
    kinds = np.concatenate([np.full(p[0].size, p[1], np.int64) for p in parts])
    order = np.lexsort((kinds, position))
    position, kinds = position[order], kinds[order]
    value = np.concatenate([p[2] for p in parts])[order]
    limit = np.concatenate([p[3] for p in parts])[order]
    sides = _sides(kinds, flags[position], values[position], fstate[chars[position], k.F_CENTER])
    return SignalTable(position, chars[position], kinds, sides, value, limit, versions[position])


def _value_and_limit(
    rule: str, chart: str, bit: int, idx: npt.NDArray[np.int64], rows: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64], mr: npt.NDArray[np.float64], mon: npt.NDArray[np.float64],
    fstate: npt.NDArray[np.float64], mcfg: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:  # fmt: skip
    if chart == "mr":
        return mr[idx], fstate[rows, k.F_MR_UCL]
    if chart == "ewma":
        sign = 1.0 if bit == k.FLAG_EWMA_HIGH else -1.0
        return mon[idx, 0], fstate[rows, k.F_CENTER] + sign * mon[idx, 1]
    if chart == "cusum":
        column = 2 if bit == k.FLAG_CUSUM_HIGH else 3
        return mon[idx, column], mcfg[rows, k.M_CUSUM_H] * fstate[rows, k.F_SIGMA]
    if rule == "1":
        col = k.F_UCL if bit == k.FLAG_ABOVE_UCL else k.F_LCL
        return values[idx], fstate[rows, col]
    return values[idx], np.full(idx.size, np.nan)


SIDES = ("high", "low", "up", "down", "none")
_FIXED_SIDE = np.array([SIDES.index(side) if side != "?" else -1 for *_, side in _KINDS])
_RULE = np.array([int(rule) if rule.isdigit() else 0 for _, rule, _, _ in _KINDS])


def _sides(
    kind: npt.NDArray[np.int64],
    flags: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    centers: npt.NDArray[np.float64],
) -> npt.NDArray[np.int64]:
    """Side codes (indexes into ``SIDES``): fixed by the kind, or from the point itself."""
    rule = _RULE[kind]
    by_position = np.where(values > centers, 0, 1)
    by_trend = np.where(flags & k.FLAG_TREND_UP, 2, 3)
    side = np.where(np.isin(rule, (2, 5, 6)), by_position, np.where(rule == 3, by_trend, 4))
    return np.where(_FIXED_SIDE[kind] >= 0, _FIXED_SIDE[kind], side).astype(np.int64)
