"""The incremental SPC engine: state for many characteristics, updated per batch.

Each characteristic owns one row of numpy state (limits, run-rule run lengths, EWMA and
CUSUM statistics, rolling sums, ring buffer); ``spc._kernels.update`` walks a batch in
order and updates it in O(1) per point. The engine is held to the batch references
(``control_limits``, ``check_rules``, ``capability``, ``ewma``, ``cusum``) by the tests.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from spc import _kernels as k
from spc.capability import capability_indices
from spc.charts import control_limits
from spc.constants import D2_N2, D4_N2, chart_constants
from spc.engine_types import (
    CusumConfig,
    EwmaConfig,
    LimitSet,
    RollingCapability,
    RuleSignal,
)
from spc.rules import DEFAULT, RuleSet
from spc.signals import BatchResult, decode

DEFAULT_BASELINE_SIZE = 25
DEFAULT_WINDOW = 100
MAX_ZONE_WINDOW = 16  # the kernel keeps 16 bits of zone history
_STATE = ("_fstate", "_istate", "_rcfg", "_mcfg", "_baseline", "_ring", "_dring")
__all__ = ["BatchResult", "Engine", "LimitSet", "RollingCapability", "RuleSignal"]


def _subgroup_row(size: int, dispersion: str, window: int) -> list[float]:
    """Kernel configuration columns M_SUBGROUP.. for a chart of subgroups of ``size``."""
    if size == 1:
        return [1.0, 0.0, D2_N2, 0.0, D4_N2]
    if not 2 <= size <= 25:
        raise ValueError(f"subgroup_size must be 1 (individuals) or 2..25, got {size}")
    if dispersion not in ("r", "s"):
        raise ValueError(f"dispersion must be 'r' (range) or 's' (std dev), got {dispersion!r}")
    if window % size:
        raise ValueError(f"the engine window ({window}) must be a multiple of subgroup_size {size}")
    cc = chart_constants(size)
    if dispersion == "s":
        return [float(size), 1.0, cc.c4, cc.B3, cc.B4]
    return [float(size), 0.0, cc.d2, cc.D3, cc.D4]


def _rule_row(rules: RuleSet) -> list[int]:
    if max(rules.zone_a[1], rules.zone_b[1]) > MAX_ZONE_WINDOW:
        raise ValueError(f"zone windows longer than {MAX_ZONE_WINDOW} points are not supported")
    row = [0] * k.N_RULE_CFG
    row[k.R_ENABLED] = sum(1 << (int(r) - 1) for r in rules.enabled)
    row[k.R_SAME_SIDE], row[k.R_TREND] = rules.same_side, rules.trend
    row[k.R_ALTERNATING] = rules.alternating
    row[k.R_ZONE_A_K], row[k.R_ZONE_A_M] = rules.zone_a
    row[k.R_ZONE_B_K], row[k.R_ZONE_B_M] = rules.zone_b
    row[k.R_WITHIN_C], row[k.R_OUTSIDE_C] = rules.within_c, rules.outside_c
    return row


class Engine:
    """Rolling I-MR state, run rules, EWMA and CUSUM for many characteristics.

    Thread-safe (one lock): the service processes batches on a worker thread while the
    API reads limits and capability.
    """

    def __init__(
        self,
        baseline_size: int = DEFAULT_BASELINE_SIZE,
        window: int = DEFAULT_WINDOW,
        capacity: int = 64,
    ) -> None:
        if baseline_size < 2:
            raise ValueError(f"baseline_size must be at least 2, got {baseline_size}")
        if window < 2:
            raise ValueError(f"window must be at least 2, got {window}")
        self.baseline_size = baseline_size
        self.window = window
        self._count = 0
        self._lock = threading.Lock()
        # each row's LimitSet as last built, reused while its version holds: every status
        # answer and every batch asks for the limits in force
        self._limit_views: dict[int, LimitSet] = {}
        self._fstate: npt.NDArray[np.float64]
        self._istate: npt.NDArray[np.int64]
        self._rcfg: npt.NDArray[np.int64]
        self._mcfg: npt.NDArray[np.float64]
        self._baseline: npt.NDArray[np.float64]
        self._ring: npt.NDArray[np.float64]
        self._dring: npt.NDArray[np.float64]
        self._allocate(max(capacity, 1))

    def _allocate(self, capacity: int) -> None:
        new = {
            "_fstate": np.full((capacity, k.N_FLOAT), np.nan),
            "_istate": np.zeros((capacity, k.N_INT), dtype=np.int64),
            "_rcfg": np.zeros((capacity, k.N_RULE_CFG), dtype=np.int64),
            "_mcfg": np.full((capacity, k.N_MON_CFG), np.nan),
            "_baseline": np.zeros((capacity, 2 * self.baseline_size)),
            "_ring": np.zeros((capacity, self.window)),
            "_dring": np.zeros((capacity, max(self.window // 2, 1))),
        }
        for name, array in new.items():
            if self._count:
                array[: self._count] = getattr(self, name)[: self._count]
            setattr(self, name, array)

    def __len__(self) -> int:
        return self._count

    def add_characteristic(
        self,
        lsl: float | None = None,
        usl: float | None = None,
        rules: RuleSet = DEFAULT,
        ewma: EwmaConfig | None = EwmaConfig(),  # noqa: B008 - frozen, shared safely
        cusum: CusumConfig | None = CusumConfig(),  # noqa: B008
        subgroup_size: int = 1,
        dispersion: str = "r",
    ) -> int:
        """Register a characteristic; returns its row index.

        ``subgroup_size`` 1 charts individuals and moving ranges (I-MR); n = 2..25 charts
        means of n consecutive values with their range (``dispersion="r"``, X-bar/R) or
        standard deviation (``"s"``, X-bar/S); the engine's window must then be a
        multiple of n so that it always holds whole subgroups. ``rules`` apply to the
        location chart (I or X-bar); rule 1 also to the dispersion chart (MR, R or S).
        ``ewma``/``cusum`` (on the plotted point) None switches those charts off.
        """
        rule_row = _rule_row(rules)
        subgroup_row = _subgroup_row(subgroup_size, dispersion, self.window)
        with self._lock:
            if self._count == self._fstate.shape[0]:
                self._allocate(2 * self._count)
            row = self._count
            self._count += 1
            self._fstate[row, k.F_LSL] = np.nan if lsl is None else lsl
            self._fstate[row, k.F_USL] = np.nan if usl is None else usl
            for col in (k.F_SUM, k.F_SUMSQ, k.F_SUM_MR):
                self._fstate[row, col] = 0.0
            self._rcfg[row] = rule_row
            self._mcfg[row, k.M_SUBGROUP :] = subgroup_row
            self._fstate[row, k.F_DISP_SUM] = 0.0
            self._fstate[row, k.F_SG_SUM] = self._fstate[row, k.F_SG_SUMSQ] = 0.0
            if ewma is not None:
                self._mcfg[row, k.M_EWMA_LAMBDA], self._mcfg[row, k.M_EWMA_L] = ewma.lam, ewma.L
            if cusum is not None:
                self._mcfg[row, k.M_CUSUM_K], self._mcfg[row, k.M_CUSUM_H] = cusum.k, cusum.h
            return row

    def _check_row(self, row: int) -> None:
        if not 0 <= row < self._count:
            raise IndexError(f"characteristic row {row} is not registered (have {self._count})")

    def restore_limits(self, row: int, limits: LimitSet) -> None:
        """Install a frozen limit set; run rules, EWMA and CUSUM start afresh against it."""
        self._check_row(row)
        if limits.version < 1:
            raise ValueError(f"limit versions start at 1, got {limits.version}")
        with self._lock:
            f = self._fstate[row]
            f[k.F_CENTER], f[k.F_UCL], f[k.F_LCL] = limits.center, limits.ucl, limits.lcl
            f[k.F_SIGMA], f[k.F_MR_CENTER] = limits.sigma, limits.mr_center
            f[k.F_MR_UCL] = limits.mr_ucl
            f[k.F_DISP_LCL] = limits.dispersion_lcl
            self._istate[row, k.I_LIMIT_VERSION] = limits.version
            self._limit_views.pop(row, None)  # a reinstalled version may differ
            self._istate[row, k.I_BASELINE_N] = self.baseline_size
            self._istate[row, k.I_LIMIT_N] = limits.baseline_n
            k._reset_runs(self._istate, self._fstate, row)

    def restart_statistics(self, row: int) -> None:
        """Start run rules, EWMA and CUSUM afresh against the limits in force (as after
        new limits): once a problem is resolved, detection begins again from the zero
        state (Montgomery: the CUSUM restarts at zero after the cause is dealt with)."""
        self._check_row(row)
        with self._lock:
            k._reset_runs(self._istate, self._fstate, row)

    def recalculate(
        self, row: int, baseline: npt.ArrayLike, exclude: Sequence[int] = ()
    ) -> LimitSet:
        """``compute_limits`` and install the result (``restore_limits``) in one call."""
        limits = self.compute_limits(row, baseline, exclude)
        self.restore_limits(row, limits)
        return limits

    def compute_limits(
        self, row: int, baseline: npt.ArrayLike, exclude: Sequence[int] = ()
    ) -> LimitSet:
        """New Phase I limits from a baseline the caller gives, as the next version.

        Nothing is installed: the caller checks and stores them, then installs them with
        ``restore_limits``.

        Individuals: ``baseline`` holds values and ``exclude`` lists positions of
        assignable-cause points to leave out; moving ranges are then taken between the
        remaining consecutive points; limits follow ``control_limits(kept, "imr")``
        (sigma = MR-bar / d2, exact d2). Subgroups of n: ``baseline`` holds whole
        consecutive subgroups (a length that is a multiple of n), ``exclude`` lists
        subgroup positions; limits follow ``control_limits(kept, "xbar_r" | "xbar_s", n)``
        (AIAG: X-bar +/- A2 R-bar or A3 s-bar; R chart D3, D4; S chart B3, B4).
        Once installed, run rules, EWMA and CUSUM restart against the new version.
        """
        self._check_row(row)
        size = int(self._mcfg[row, k.M_SUBGROUP])
        values = np.asarray(baseline, dtype=np.float64)
        if values.ndim != 1 or values.size % size:
            raise ValueError(f"the baseline must be whole subgroups of {size} values in a row; "
                             f"got {values.size} values")  # fmt: skip
        groups = values.reshape(-1, size)
        dropped = set(exclude)
        if any(not 0 <= i < groups.shape[0] for i in dropped):
            what = "points" if size == 1 else "subgroups"
            raise IndexError(
                f"exclude holds positions outside the baseline of {groups.shape[0]} {what}"
            )
        kept = groups[[i for i in range(groups.shape[0]) if i not in dropped]]
        if kept.shape[0] < 2:
            raise ValueError("a baseline needs at least 2 points (subgroups) left after the "
                             "exclusions")  # fmt: skip
        if size == 1:
            chart = control_limits(kept.ravel(), "imr")
        else:
            name = "xbar_s" if self._mcfg[row, k.M_USE_S] == 1.0 else "xbar_r"
            chart = control_limits(kept, name, size)
        disp = chart.dispersion
        assert disp is not None  # every variables chart has its dispersion chart
        with self._lock:
            version = int(self._istate[row, k.I_LIMIT_VERSION]) + 1
        limits = LimitSet(
            version=version,
            center=float(chart.center), ucl=float(chart.ucl), lcl=float(chart.lcl),
            sigma=float(chart.sigma) / math.sqrt(size), mr_center=float(disp.center),
            mr_ucl=float(disp.ucl), baseline_n=int(kept.shape[0]),
            dispersion_lcl=float(disp.lcl) if size > 1 else 0.0,
        )  # fmt: skip
        return limits

    def process(
        self, rows: npt.ArrayLike, values: npt.ArrayLike, evaluate: bool = True
    ) -> BatchResult:
        """Feed a batch of points (in time order per characteristic).

        Parameters
        ----------
        rows : characteristic row of each point (int).
        values : the measured values (float; NaN and +/-inf are skipped, not charted).
        evaluate : report signals; ``False`` primes state from history silently (run
            lengths, EWMA and CUSUM still advance).
        """
        chars = np.ascontiguousarray(rows, dtype=np.int64)
        vals = np.ascontiguousarray(values, dtype=np.float64)
        if chars.shape != vals.shape or chars.ndim != 1:
            raise ValueError("rows and values must be 1-D arrays of the same length")
        if chars.size and (chars.min() < 0 or chars.max() >= self._count):
            raise IndexError("a row in the batch is not a registered characteristic")
        # Grouping the batch by characteristic (stable: each one's time order is kept)
        # makes consecutive points share cache lines of state; results are mapped back.
        order = None
        if chars.size > 1 and bool(np.any(chars[1:] < chars[:-1])):
            order = np.argsort(chars, kind="stable")
            chars, vals = chars[order], vals[order]
        n = chars.size
        flags, versions = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
        mr, mon = np.empty(n), np.empty((n, 4))
        with self._lock:
            k.update(
                chars, vals, evaluate, self._fstate, self._istate, self._rcfg, self._mcfg,
                self._baseline, self._ring, self._dring, flags, versions, mr, mon,
            )  # fmt: skip
            new_limits: dict[int, LimitSet] = {}
            positions: dict[int, int] = {}
            for i in np.flatnonzero(flags & k.FLAG_LIMITS_SET):
                frozen = self._limits_locked(int(chars[i]))
                assert frozen is not None  # the flag says the baseline just froze
                new_limits[int(chars[i])] = frozen
                positions[int(chars[i])] = int(i if order is None else order[i])
            table = decode(chars, vals, mr, mon, flags, versions, self._fstate, self._mcfg)
        table = table if order is None else table.reindexed(order)
        return BatchResult(table, new_limits, positions)

    def limits(self, row: int) -> LimitSet | None:
        """The frozen limits in force, or ``None`` while the baseline is incomplete."""
        self._check_row(row)
        with self._lock:
            return self._limits_locked(row)

    def _limits_locked(self, row: int) -> LimitSet | None:
        version = int(self._istate[row, k.I_LIMIT_VERSION])
        if version == 0:
            return None
        built = self._limit_views.get(row)
        if built is not None and built.version == version:
            return built
        f = self._fstate[row].tolist()
        built = self._limit_views[row] = LimitSet(
            version=version, center=f[k.F_CENTER], ucl=f[k.F_UCL], lcl=f[k.F_LCL],
            sigma=f[k.F_SIGMA], mr_center=f[k.F_MR_CENTER], mr_ucl=f[k.F_MR_UCL],
            baseline_n=int(self._istate[row, k.I_LIMIT_N]), dispersion_lcl=f[k.F_DISP_LCL],
        )  # fmt: skip
        return built

    def baseline_progress(self, row: int) -> tuple[int, int]:
        """(points collected, points needed) for the Phase I baseline."""
        self._check_row(row)
        return int(self._istate[row, k.I_BASELINE_N]), self.baseline_size

    def rolling_capability(self, row: int) -> RollingCapability | None:
        """Capability over the rolling window, or ``None`` with fewer than 2 points."""
        self._check_row(row)
        with self._lock:
            f = self._fstate[row].tolist()
            cfg = self._mcfg[row].tolist()
            n = int(self._istate[row, k.I_RING_COUNT])
            groups = int(self._istate[row, k.I_DRING_COUNT])
        subgrouped = cfg[k.M_SUBGROUP] > 1
        if n < 2 or (subgrouped and groups < 1):
            return None
        mean = f[k.F_REF] + f[k.F_SUM] / n
        var = max(f[k.F_SUMSQ] - f[k.F_SUM] ** 2 / n, 0.0) / (n - 1)
        s_overall = math.sqrt(var)
        if subgrouped:  # R-bar / d2(n) or s-bar / c4(n) over the subgroups in the window
            s_within = f[k.F_DISP_SUM] / groups / cfg[k.M_SIGMA_DIV]
        else:
            s_within = f[k.F_SUM_MR] / (n - 1) / D2_N2
        lsl = None if math.isnan(f[k.F_LSL]) else f[k.F_LSL]
        usl = None if math.isnan(f[k.F_USL]) else f[k.F_USL]
        cp, cpk = _indices(mean, s_within, lsl, usl)
        pp, ppk = _indices(mean, s_overall, lsl, usl)
        return RollingCapability(
            n=n, mean=mean, sigma_within=s_within, sigma_overall=s_overall,
            cp=cp, cpk=cpk, pp=pp, ppk=ppk,
        )  # fmt: skip

    def snapshot(self) -> dict[str, Any]:
        """The whole state as plain arrays and numbers (e.g. for ``numpy.savez``)."""
        with self._lock:
            state: dict[str, Any] = {
                name.lstrip("_"): getattr(self, name)[: self._count].copy() for name in _STATE
            }
        state.update(baseline_size=self.baseline_size, window=self.window, count=self._count)
        return state

    @classmethod
    def restore(cls, snapshot: dict[str, Any]) -> Engine:
        """An engine that continues exactly where ``snapshot()`` left off."""
        count = int(snapshot["count"])
        engine = cls(int(snapshot["baseline_size"]), int(snapshot["window"]), max(count, 1))
        for name in _STATE:
            array = np.asarray(snapshot[name.lstrip("_")])
            target = getattr(engine, name)
            if array.shape[1:] != target.shape[1:] or array.shape[0] != count:
                raise ValueError(f"snapshot field {name.lstrip('_')} has shape {array.shape}")
            target[:count] = array
        engine._count = count
        return engine

    def warm_up(self) -> None:
        """Compile the kernels now (or load them from numba's cache), not on live data."""
        scratch = Engine(baseline_size=2, window=2, capacity=1)
        row = scratch.add_characteristic(0.0, 1.0)
        scratch.process([row] * 4, [0.1, 0.2, 0.3, 0.9])


def _indices(
    mean: float, sigma: float, lsl: float | None, usl: float | None
) -> tuple[float | None, float | None]:
    """(spread, worst one-sided) index; None for a window without variation."""
    if sigma <= 0:
        return None, None
    spread, worst, _, _ = capability_indices(mean, sigma, lsl, usl)
    return spread, worst
