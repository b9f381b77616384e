"""numba kernels of the incremental SPC engine.

Pure functions over contiguous arrays: no I/O, no objects, no raising. The public,
validated wrappers live in ``spc.engine``. Column layouts of the state arrays are the
module-level constants below, shared with the wrapper.
"""

from __future__ import annotations

import numpy as np
from numba import njit

jit = njit(cache=True, nogil=True)
"""The one JIT configuration of every kernel: cached, GIL released, no fastmath (NaN-safe)."""

# float state columns
F_CENTER = 0
F_UCL = 1
F_LCL = 2
F_SIGMA = 3
F_MR_CENTER = 4
F_MR_UCL = 5
F_LAST = 6
F_REF = 7  # shift of the rolling sums: the window mean at the last re-centring
F_SUM = 8  # sum of (x - ref) over the rolling window
F_SUMSQ = 9  # sum of (x - ref)^2 over the rolling window
F_SUM_MR = 10  # sum of moving ranges between consecutive points of the window
F_LSL = 11
F_USL = 12
N_FLOAT = 13

# int state columns
I_N_SEEN = 0
I_LIMIT_VERSION = 1  # 0 while the Phase I baseline is still being collected
I_BASELINE_N = 2
I_RING_POS = 3  # where the next value goes
I_RING_COUNT = 4
N_INT = 5

RESHIFT_RATIO = 1e6
"""Re-centre the sums when n*(mean - ref)^2 exceeds this many times the sum of squares
about the mean: relative error of the variance then stays below ~1e6 * machine epsilon."""

# per-point output flags
FLAG_ABOVE_UCL = 1  # rule 1 on the individuals chart, high side
FLAG_BELOW_LCL = 2  # rule 1 on the individuals chart, low side
FLAG_MR_ABOVE_UCL = 4  # rule 1 on the moving-range chart
FLAG_LIMITS_SET = 8  # this point completed the baseline; limits version 1 now frozen
FLAG_SKIPPED = 16  # value was NaN or infinite: not charted


@jit
def _freeze_baseline(fstate, istate, baseline, c, d2, d4):
    n = istate[c, I_BASELINE_N]
    total = 0.0
    for j in range(n):
        total += baseline[c, j]
    center = total / n
    mr_total = 0.0
    for j in range(1, n):
        mr_total += abs(baseline[c, j] - baseline[c, j - 1])
    mr_bar = mr_total / (n - 1)
    sigma = mr_bar / d2
    fstate[c, F_CENTER] = center
    fstate[c, F_SIGMA] = sigma
    fstate[c, F_UCL] = center + 3.0 * sigma
    fstate[c, F_LCL] = center - 3.0 * sigma
    fstate[c, F_MR_CENTER] = mr_bar
    fstate[c, F_MR_UCL] = d4 * mr_bar
    istate[c, I_LIMIT_VERSION] = 1


@jit
def _resum_window(fstate, istate, ring, c):
    """Recompute the rolling sums from the ring around a fresh shift (the window mean).

    Called once per wrap of the ring (amortised O(1)) and whenever the shift has drifted
    far from the data: it bounds both the drift of add/subtract and the cancellation in
    sum((x - ref)^2) - sum(x - ref)^2 / n.
    """
    w = ring.shape[1]
    count = istate[c, I_RING_COUNT]
    start = (istate[c, I_RING_POS] - count + w) % w
    total = 0.0
    for k in range(count):
        total += ring[c, (start + k) % w]
    ref = total / count if count > 0 else fstate[c, F_REF]
    fstate[c, F_REF] = ref
    s = 0.0
    s2 = 0.0
    smr = 0.0
    prev = 0.0
    for k in range(count):
        x = ring[c, (start + k) % w]
        d = x - ref
        s += d
        s2 += d * d
        if k > 0:
            smr += abs(x - prev)
        prev = x
    fstate[c, F_SUM] = s
    fstate[c, F_SUMSQ] = s2
    fstate[c, F_SUM_MR] = smr


@jit
def _poorly_shifted(fstate, istate, c):
    """True when the mean offset from the shift dwarfs the spread (cancellation risk)."""
    n = istate[c, I_RING_COUNT]
    if n < 2:
        return False
    s = fstate[c, F_SUM]
    offset = s / n
    # an offset at rounding level of the data (a stuck sensor) is no offset at all
    if abs(offset) <= 1e-12 * abs(fstate[c, F_REF]):
        return False
    spread = fstate[c, F_SUMSQ] - s * offset
    return s * offset > RESHIFT_RATIO * spread


@jit
def _push_window(fstate, istate, ring, c, x):
    w = ring.shape[1]
    pos = istate[c, I_RING_POS]
    count = istate[c, I_RING_COUNT]
    ref = fstate[c, F_REF]
    if count == w:
        oldest = ring[c, pos]
        second = ring[c, (pos + 1) % w]
        d = oldest - ref
        fstate[c, F_SUM] -= d
        fstate[c, F_SUMSQ] -= d * d
        fstate[c, F_SUM_MR] -= abs(second - oldest)
        count -= 1
    if count > 0:
        fstate[c, F_SUM_MR] += abs(x - ring[c, (pos - 1 + w) % w])
    d = x - ref
    fstate[c, F_SUM] += d
    fstate[c, F_SUMSQ] += d * d
    ring[c, pos] = x
    istate[c, I_RING_POS] = (pos + 1) % w
    istate[c, I_RING_COUNT] = count + 1
    if istate[c, I_RING_POS] == 0 or _poorly_shifted(fstate, istate, c):
        _resum_window(fstate, istate, ring, c)


@jit
def imr_update(
    chars, values, evaluate, fstate, istate, baseline, ring, d2, d4, flags, versions, mr_out
):
    """Feed points in order; update state; write per-point flags and limit versions.

    chars: int64[n] characteristic rows; values: float64[n]; evaluate: apply rule 1
    (False when priming state from history). flags/versions: outputs, int64[n];
    mr_out: output float64[n], the moving range at each point (NaN for a first point).
    """
    for i in range(chars.shape[0]):
        c = chars[i]
        x = values[i]
        flags[i] = 0
        versions[i] = istate[c, I_LIMIT_VERSION]
        mr_out[i] = np.nan
        if not np.isfinite(x):
            flags[i] = FLAG_SKIPPED
            continue
        n_seen = istate[c, I_N_SEEN]
        if n_seen == 0:
            fstate[c, F_REF] = x
        else:
            mr_out[i] = abs(x - fstate[c, F_LAST])
        version = istate[c, I_LIMIT_VERSION]
        if version == 0:
            b = istate[c, I_BASELINE_N]
            baseline[c, b] = x
            istate[c, I_BASELINE_N] = b + 1
            if b + 1 == baseline.shape[1]:
                _freeze_baseline(fstate, istate, baseline, c, d2, d4)
                flags[i] = FLAG_LIMITS_SET
                versions[i] = 1
        elif evaluate:
            f = 0
            if x > fstate[c, F_UCL]:
                f |= FLAG_ABOVE_UCL
            elif x < fstate[c, F_LCL]:
                f |= FLAG_BELOW_LCL
            if n_seen > 0 and mr_out[i] > fstate[c, F_MR_UCL]:
                f |= FLAG_MR_ABOVE_UCL
            flags[i] = f
        _push_window(fstate, istate, ring, c, x)
        fstate[c, F_LAST] = x
        istate[c, I_N_SEEN] = n_seen + 1
