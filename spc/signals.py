"""Signals of a processed batch, as columns; ``RuleSignal`` objects only on demand.

The kernel ``decode_signals`` turns per-point flags into columns in one pass, so a
batch full of signals costs array work, not a Python object per signal.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt

from spc import _kernels as k
from spc.engine_types import LimitSet, RuleSignal

# (rule, chart) of each signal kind, in the order of ``_kernels.KIND_BITS``
KINDS: tuple[tuple[str, str], ...] = (
    ("1", "i"),
    ("1", "i"),
    ("1", "mr"),
    *((str(rule), "i") for rule in range(2, 9)),
    ("ewma", "ewma"),
    ("ewma", "ewma"),
    ("cusum", "cusum"),
    ("cusum", "cusum"),
    ("1", "r"),  # subgrouped dispersion charts: R high, R low, S high, S low
    ("1", "r"),
    ("1", "s"),
    ("1", "s"),
)
SIDES = ("high", "low", "up", "down", "none")  # indexed by the kernel's SIDE_* codes


@dataclass(frozen=True)
class SignalTable:
    """Signals of one batch as columns; ``kind`` indexes ``KINDS``, ``side`` ``SIDES``.

    ``limit`` is NaN for the pattern rules 2..8.
    """

    position: npt.NDArray[np.int64]
    characteristic: npt.NDArray[np.int64]
    kind: npt.NDArray[np.int64]
    side: npt.NDArray[np.int64]
    value: npt.NDArray[np.float64]
    limit: npt.NDArray[np.float64]
    version: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.position.size)

    def reindexed(self, order: npt.NDArray[np.int64]) -> SignalTable:
        """The table for a batch that was processed as ``batch[order]``: original positions."""
        position = order[self.position]
        # a point's signals are adjacent and in kind order already: a stable sort keeps it
        o = np.argsort(position, kind="stable")
        return SignalTable(
            position[o], self.characteristic[o], self.kind[o], self.side[o], self.value[o],
            self.limit[o], self.version[o],
        )  # fmt: skip

    def objects(self) -> list[RuleSignal]:
        out = []
        for p, c, kd, s, v, lim, ver in zip(
            self.position.tolist(), self.characteristic.tolist(), self.kind.tolist(),
            self.side.tolist(), self.value.tolist(), self.limit.tolist(),
            self.version.tolist(), strict=True,
        ):  # fmt: skip
            rule, chart = KINDS[kd]
            out.append(RuleSignal(p, c, rule, chart, SIDES[s], v, None if lim != lim else lim, ver))
        return out


class BatchResult:
    """What one ``Engine.process`` call found: signals and newly frozen limit sets.

    ``new_limits`` maps a characteristic row to the limits its baseline froze in this
    batch; ``limit_positions`` maps the same row to the batch position of the point that
    completed the baseline (the limits judge the points charted after it).
    """

    def __init__(
        self,
        table: SignalTable,
        new_limits: dict[int, LimitSet],
        limit_positions: dict[int, int] | None = None,
    ) -> None:
        self.table = table
        self.new_limits = new_limits
        self.limit_positions = limit_positions or {}

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
    position, kind, side, value, limit = k.decode_signals(
        flags, chars, values, mr, mon, fstate, mcfg
    )
    return SignalTable(position, chars[position], kind, side, value, limit, versions[position])
