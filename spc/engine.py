"""The incremental SPC engine: state for many characteristics, updated per batch.

Each characteristic owns one row of numpy state (limits, rolling sums, ring buffer);
``spc._kernels.imr_update`` walks a batch in order and updates it in O(1) per point.
The engine is held to the batch references (``control_limits``, ``capability``,
``check_rules``) by the tests.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from spc import _kernels as k
from spc.constants import D2_N2, D4_N2

DEFAULT_BASELINE_SIZE = 25
DEFAULT_WINDOW = 100


@dataclass(frozen=True)
class LimitSet:
    """A frozen, versioned set of I-MR limits (Phase II limits), in the data's unit."""

    version: int
    center: float
    ucl: float
    lcl: float
    sigma: float
    mr_center: float
    mr_ucl: float
    baseline_n: int


@dataclass(frozen=True)
class RollingCapability:
    """Capability over the last ``n`` points (at most the engine's window).

    sigma_within = MR-bar / d2 over the window's consecutive pairs; sigma_overall is the
    sample standard deviation (n - 1); Cpk/Ppk use whichever limits are defined.
    """

    n: int
    mean: float
    sigma_within: float
    sigma_overall: float
    cp: float | None
    cpk: float | None
    pp: float | None
    ppk: float | None


@dataclass(frozen=True)
class RuleSignal:
    """A rule violation found by the engine.

    ``position`` indexes the batch given to ``process``; ``chart`` is ``"i"`` for the
    individuals chart or ``"mr"`` for the moving-range chart; ``value`` is the plotted
    statistic (the individual value, or the moving range) and ``limit`` the control limit
    it crossed; ``limit_version`` is the limit set the point was judged against.
    """

    position: int
    characteristic: int
    rule: str
    chart: str
    side: str
    value: float
    limit: float
    limit_version: int


@dataclass(frozen=True)
class BatchResult:
    signals: list[RuleSignal]
    new_limits: dict[int, LimitSet]


def _indices(cpu: float | None, cpl: float | None) -> float | None:
    present = [v for v in (cpu, cpl) if v is not None]
    return min(present) if present else None


class Engine:
    """Rolling I-MR state for many characteristics (thread-safe; one lock)."""

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
        self._fstate: npt.NDArray[np.float64]
        self._istate: npt.NDArray[np.int64]
        self._baseline: npt.NDArray[np.float64]
        self._ring: npt.NDArray[np.float64]
        self._allocate(max(capacity, 1))

    def _allocate(self, capacity: int) -> None:
        fstate = np.full((capacity, k.N_FLOAT), np.nan)
        istate = np.zeros((capacity, k.N_INT), dtype=np.int64)
        baseline = np.zeros((capacity, self.baseline_size))
        ring = np.zeros((capacity, self.window))
        if self._count:
            fstate[: self._count] = self._fstate[: self._count]
            istate[: self._count] = self._istate[: self._count]
            baseline[: self._count] = self._baseline[: self._count]
            ring[: self._count] = self._ring[: self._count]
        self._fstate, self._istate, self._baseline, self._ring = fstate, istate, baseline, ring

    def __len__(self) -> int:
        return self._count

    def add_characteristic(self, lsl: float | None = None, usl: float | None = None) -> int:
        """Register a characteristic; returns its row index."""
        with self._lock:
            if self._count == self._fstate.shape[0]:
                self._allocate(2 * self._count)
            row = self._count
            self._count += 1
            self._set_spec(row, lsl, usl)
            for col in (k.F_SUM, k.F_SUMSQ, k.F_SUM_MR):
                self._fstate[row, col] = 0.0
            return row

    def _set_spec(self, row: int, lsl: float | None, usl: float | None) -> None:
        self._fstate[row, k.F_LSL] = np.nan if lsl is None else lsl
        self._fstate[row, k.F_USL] = np.nan if usl is None else usl

    def _check_row(self, row: int) -> None:
        if not 0 <= row < self._count:
            raise IndexError(f"characteristic row {row} is not registered (have {self._count})")

    def restore_limits(self, row: int, limits: LimitSet) -> None:
        """Install a frozen limit set (e.g. the active version loaded from the store)."""
        self._check_row(row)
        if limits.version < 1:
            raise ValueError(f"limit versions start at 1, got {limits.version}")
        with self._lock:
            f = self._fstate[row]
            f[k.F_CENTER], f[k.F_UCL], f[k.F_LCL] = limits.center, limits.ucl, limits.lcl
            f[k.F_SIGMA], f[k.F_MR_CENTER] = limits.sigma, limits.mr_center
            f[k.F_MR_UCL] = limits.mr_ucl
            self._istate[row, k.I_LIMIT_VERSION] = limits.version
            self._istate[row, k.I_BASELINE_N] = self.baseline_size

    def process(
        self, rows: npt.ArrayLike, values: npt.ArrayLike, evaluate: bool = True
    ) -> BatchResult:
        """Feed a batch of points (in time order per characteristic).

        Parameters
        ----------
        rows : characteristic row of each point (int).
        values : the measured values (float; NaN and +/-inf are skipped, not charted).
        evaluate : apply the rules; ``False`` primes state from history silently.
        """
        chars = np.ascontiguousarray(rows, dtype=np.int64)
        vals = np.ascontiguousarray(values, dtype=np.float64)
        if chars.shape != vals.shape or chars.ndim != 1:
            raise ValueError("rows and values must be 1-D arrays of the same length")
        if chars.size and (chars.min() < 0 or chars.max() >= self._count):
            raise IndexError("a row in the batch is not a registered characteristic")
        flags = np.zeros(chars.size, dtype=np.int64)
        versions = np.zeros(chars.size, dtype=np.int64)
        mr = np.empty(chars.size)
        with self._lock:
            k.imr_update(
                chars,
                vals,
                evaluate,
                self._fstate,
                self._istate,
                self._baseline,
                self._ring,
                D2_N2,
                D4_N2,
                flags,
                versions,
                mr,
            )
            new_limits: dict[int, LimitSet] = {}
            for i in np.flatnonzero(flags & k.FLAG_LIMITS_SET):
                frozen = self._limits_locked(int(chars[i]))
                assert frozen is not None  # the flag says the baseline just froze
                new_limits[int(chars[i])] = frozen
            signals = self._signals(chars, vals, mr, flags, versions)
        return BatchResult(signals, new_limits)

    def _signals(
        self,
        chars: npt.NDArray[np.int64],
        vals: npt.NDArray[np.float64],
        mr: npt.NDArray[np.float64],
        flags: npt.NDArray[np.int64],
        versions: npt.NDArray[np.int64],
    ) -> list[RuleSignal]:
        out: list[RuleSignal] = []
        rule_bits = k.FLAG_ABOVE_UCL | k.FLAG_BELOW_LCL | k.FLAG_MR_ABOVE_UCL
        mr_list = mr.tolist()
        for i in np.flatnonzero(flags & rule_bits):
            f, row, version = int(flags[i]), int(chars[i]), int(versions[i])
            lim = self._fstate[row].tolist()  # plain floats for the public dataclass
            x = float(vals[i])
            if f & k.FLAG_ABOVE_UCL:
                out.append(RuleSignal(int(i), row, "1", "i", "high", x, lim[k.F_UCL], version))
            if f & k.FLAG_BELOW_LCL:
                out.append(RuleSignal(int(i), row, "1", "i", "low", x, lim[k.F_LCL], version))
            if f & k.FLAG_MR_ABOVE_UCL:
                mr_ucl = lim[k.F_MR_UCL]
                out.append(RuleSignal(int(i), row, "1", "mr", "high", mr_list[i], mr_ucl, version))
        return out

    def limits(self, row: int) -> LimitSet | None:
        """The frozen limits in force, or ``None`` while the baseline is incomplete."""
        self._check_row(row)
        with self._lock:
            return self._limits_locked(row)

    def _limits_locked(self, row: int) -> LimitSet | None:
        version = int(self._istate[row, k.I_LIMIT_VERSION])
        if version == 0:
            return None
        f = self._fstate[row]
        return LimitSet(
            version=version,
            center=float(f[k.F_CENTER]),
            ucl=float(f[k.F_UCL]),
            lcl=float(f[k.F_LCL]),
            sigma=float(f[k.F_SIGMA]),
            mr_center=float(f[k.F_MR_CENTER]),
            mr_ucl=float(f[k.F_MR_UCL]),
            baseline_n=int(self._istate[row, k.I_BASELINE_N]),
        )

    def baseline_progress(self, row: int) -> tuple[int, int]:
        """(points collected, points needed) for the Phase I baseline."""
        self._check_row(row)
        return int(self._istate[row, k.I_BASELINE_N]), self.baseline_size

    def rolling_capability(self, row: int) -> RollingCapability | None:
        """Capability over the rolling window, or ``None`` with fewer than 2 points."""
        self._check_row(row)
        with self._lock:
            f = self._fstate[row].copy()
            n = int(self._istate[row, k.I_RING_COUNT])
        if n < 2:
            return None
        mean = float(f[k.F_REF] + f[k.F_SUM] / n)
        var = max(f[k.F_SUMSQ] - f[k.F_SUM] ** 2 / n, 0.0) / (n - 1)
        s_overall = math.sqrt(float(var))
        s_within = float(f[k.F_SUM_MR] / (n - 1) / D2_N2)
        lsl = None if math.isnan(f[k.F_LSL]) else float(f[k.F_LSL])
        usl = None if math.isnan(f[k.F_USL]) else float(f[k.F_USL])
        return RollingCapability(
            n=n,
            mean=mean,
            sigma_within=s_within,
            sigma_overall=s_overall,
            cp=_spread_index(lsl, usl, s_within),
            cpk=_location_index(mean, lsl, usl, s_within),
            pp=_spread_index(lsl, usl, s_overall),
            ppk=_location_index(mean, lsl, usl, s_overall),
        )

    def warm_up(self) -> None:
        """Compile the kernels now (or load them from numba's cache), not on live data."""
        scratch = Engine(baseline_size=2, window=2, capacity=1)
        row = scratch.add_characteristic(0.0, 1.0)
        scratch.process([row, row, row], [0.1, 0.2, 0.3])


def _spread_index(lsl: float | None, usl: float | None, sigma: float) -> float | None:
    if lsl is None or usl is None or sigma <= 0:
        return None
    return (usl - lsl) / (6.0 * sigma)


def _location_index(
    mean: float, lsl: float | None, usl: float | None, sigma: float
) -> float | None:
    if sigma <= 0:
        return None
    cpu = (usl - mean) / (3.0 * sigma) if usl is not None else None
    cpl = (mean - lsl) / (3.0 * sigma) if lsl is not None else None
    return _indices(cpu, cpl)
