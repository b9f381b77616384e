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

inline = njit(cache=True, nogil=True, inline="always")
"""The same for per-point helpers, inlined into their caller: a call that is not inlined
passes every array with reference counting, which cost more than the helpers' work."""

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
F_EWMA = 13  # EWMA statistic z_i (starts at the centre line when limits freeze)
F_CUSUM_HI = 14  # tabular CUSUM C+ (sigma units x sigma: in the data's unit)
F_CUSUM_LO = 15  # tabular CUSUM C-
F_EWMA_DECAY = 16  # (1 - lam)^(2 i): the EWMA limits' time-varying factor, kept to avoid pow
F_SG_SUM = 17  # current subgroup: sum of (x - ref)
F_SG_SUMSQ = 18  # ... sum of (x - ref)^2
F_SG_MIN = 19
F_SG_MAX = 20
F_DISP_LCL = 21  # lower limit of the dispersion chart (D3 R-bar, B3 s-bar; 0 for MR)
F_LAST_PLOT = 22  # last plotted point (the value, or the last subgroup mean)
F_DISP_SUM = 23  # rolling: sum of the dispersions (R or s) of the subgroups in the window
N_FLOAT = 24

# int state columns
I_N_SEEN = 0
I_LIMIT_VERSION = 1  # 0 while the Phase I baseline is still being collected
I_BASELINE_N = 2
I_RING_POS = 3  # where the next value goes
I_RING_COUNT = 4
I_PHASE2_N = 5  # points judged against the current limits (EWMA limits need i)
I_POS_RUN = 6  # rule 2: consecutive points above the centre line
I_NEG_RUN = 7  # rule 2: ... below
I_INC_RUN = 8  # rule 3: consecutive strictly increasing differences
I_DEC_RUN = 9  # rule 3: ... decreasing
I_ALT_RUN = 10  # rule 4: consecutive differences alternating in sign
I_LAST_SIGN = 11  # rule 4: sign of the last difference (-1, 0, 1)
I_HI2_BITS = 12  # rule 5: history bits, z > 2 (newest in bit 0)
I_LO2_BITS = 13  # rule 5: z < -2
I_HI1_BITS = 14  # rule 6: z > 1
I_LO1_BITS = 15  # rule 6: z < -1
I_IN1_RUN = 16  # rule 7: consecutive |z| < 1
I_OUT1_RUN = 17  # rule 8: consecutive |z| > 1
I_LIMIT_N = 18  # points (subgroups) the limits in force were computed from
I_SG_COUNT = 19  # values in the current subgroup
I_DRING_POS = 20  # rolling ring of subgroup dispersions: next slot
I_DRING_COUNT = 21
N_INT = 22

# rule configuration columns (int64, per characteristic)
R_ENABLED = 0  # bit r-1 set: rule r enabled
R_SAME_SIDE = 1
R_TREND = 2
R_ALTERNATING = 3
R_ZONE_A_K = 4
R_ZONE_A_M = 5
R_ZONE_B_K = 6
R_ZONE_B_M = 7
R_WITHIN_C = 8
R_OUTSIDE_C = 9
N_RULE_CFG = 10

# monitoring configuration columns (float64, per characteristic; NaN disables)
M_EWMA_LAMBDA = 0
M_EWMA_L = 1
M_CUSUM_K = 2  # reference value in sigma units
M_CUSUM_H = 3  # decision interval in sigma units
M_SUBGROUP = 4  # subgroup size n (1: individuals and moving range)
M_USE_S = 5  # 1: dispersion is the subgroup standard deviation (X-bar/S), 0: range
M_SIGMA_DIV = 6  # sigma = dispersion-bar / this: d2(n) (d2(2) for MR) or c4(n)
M_DISP_LOW = 7  # dispersion LCL factor: D3(n) or B3(n); 0 for MR
M_DISP_HIGH = 8  # dispersion UCL factor: D4(n) or B4(n); D4(2) for MR
N_MON_CFG = 9

RESHIFT_RATIO = 1e6
"""Re-centre the sums when n*(mean - ref)^2 exceeds this many times the sum of squares
about the mean: relative error of the variance then stays below ~1e6 * machine epsilon."""

# per-point output flags
FLAG_ABOVE_UCL = 1  # rule 1 on the individuals chart, high side
FLAG_BELOW_LCL = 2  # rule 1 on the individuals chart, low side
FLAG_MR_ABOVE_UCL = 4  # rule 1 on the moving-range chart
FLAG_LIMITS_SET = 8  # this point completed the baseline; limits version 1 now frozen
FLAG_SKIPPED = 16  # value was NaN or infinite: not charted
FLAG_RULE_2 = 1 << 5  # rules 2..8 on the individuals chart: bit 5 + (rule - 2)
FLAG_EWMA_HIGH = 1 << 12
FLAG_EWMA_LOW = 1 << 13
FLAG_CUSUM_HIGH = 1 << 14
FLAG_CUSUM_LOW = 1 << 15
FLAG_TREND_UP = 1 << 16  # with rule 3: the trend is increasing
FLAG_DISP_BELOW_LCL = 1 << 17  # rule 1 on the R or S chart, low side (n >= 7 for R)


@jit
def _freeze_baseline(fstate, istate, mcfg, baseline, c):
    """Phase I limits from the baseline buffer (values, or subgroup means + dispersions)."""
    b = istate[c, I_BASELINE_N]
    n = int(mcfg[c, M_SUBGROUP])
    width = baseline.shape[1] // 2
    total = 0.0
    for j in range(b):
        total += baseline[c, j]
    center = total / b
    disp_total = 0.0
    if n == 1:  # moving ranges of consecutive values
        for j in range(1, b):
            disp_total += abs(baseline[c, j] - baseline[c, j - 1])
        disp_bar = disp_total / (b - 1)
        sigma = disp_bar / mcfg[c, M_SIGMA_DIV]
    else:
        for j in range(b):
            disp_total += baseline[c, width + j]
        disp_bar = disp_total / b
        sigma = disp_bar / mcfg[c, M_SIGMA_DIV] / np.sqrt(n)  # sigma of a subgroup mean
    fstate[c, F_CENTER] = center
    fstate[c, F_SIGMA] = sigma
    fstate[c, F_UCL] = center + 3.0 * sigma
    fstate[c, F_LCL] = center - 3.0 * sigma
    fstate[c, F_MR_CENTER] = disp_bar
    fstate[c, F_MR_UCL] = mcfg[c, M_DISP_HIGH] * disp_bar
    fstate[c, F_DISP_LCL] = mcfg[c, M_DISP_LOW] * disp_bar
    istate[c, I_LIMIT_VERSION] = 1
    istate[c, I_LIMIT_N] = b


@jit
def _resum_window(fstate, istate, ring, c):
    """Recompute the rolling sums from the ring around a fresh shift (the window mean).

    Called once per wrap of the ring (amortised O(1)) and whenever the shift has drifted
    far from the data: it bounds both the drift of add/subtract and the cancellation in
    sum((x - ref)^2) - sum(x - ref)^2 / n.
    """
    w = ring.shape[1]
    count = istate[c, I_RING_COUNT]
    start = istate[c, I_RING_POS] - count
    if start < 0:
        start += w
    total = 0.0
    j = start
    for _ in range(count):  # walk the ring without integer division (slow per element)
        total += ring[c, j]
        j = j + 1 if j + 1 < w else 0
    ref = total / count if count > 0 else fstate[c, F_REF]
    # the open subgroup's sums are shifted by the same reference: move them along
    shift = fstate[c, F_REF] - ref
    held = istate[c, I_SG_COUNT]
    if held > 0:
        fstate[c, F_SG_SUMSQ] += 2.0 * shift * fstate[c, F_SG_SUM] + held * shift * shift
        fstate[c, F_SG_SUM] += held * shift
    fstate[c, F_REF] = ref
    s = 0.0
    s2 = 0.0
    smr = 0.0
    prev = 0.0
    j = start
    for k in range(count):
        x = ring[c, j]
        j = j + 1 if j + 1 < w else 0
        d = x - ref
        s += d
        s2 += d * d
        if k > 0:
            smr += abs(x - prev)
        prev = x
    fstate[c, F_SUM] = s
    fstate[c, F_SUMSQ] = s2
    fstate[c, F_SUM_MR] = smr


@inline
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


@inline
def _push_window(fstate, istate, ring, c, x):
    w = ring.shape[1]
    pos = istate[c, I_RING_POS]
    count = istate[c, I_RING_COUNT]
    ref = fstate[c, F_REF]
    if count == w:
        oldest = ring[c, pos]
        second = ring[c, pos + 1 if pos + 1 < w else 0]
        d = oldest - ref
        fstate[c, F_SUM] -= d
        fstate[c, F_SUMSQ] -= d * d
        fstate[c, F_SUM_MR] -= abs(second - oldest)
        count -= 1
    if count > 0:
        fstate[c, F_SUM_MR] += abs(x - ring[c, pos - 1 if pos > 0 else w - 1])
    d = x - ref
    fstate[c, F_SUM] += d
    fstate[c, F_SUMSQ] += d * d
    ring[c, pos] = x
    pos = pos + 1 if pos + 1 < w else 0
    istate[c, I_RING_POS] = pos
    istate[c, I_RING_COUNT] = count + 1
    if pos == 0 or _poorly_shifted(fstate, istate, c):
        _resum_window(fstate, istate, ring, c)


@inline
def _reset_runs(istate, fstate, c):
    """Phase II starts (or limits change): run state, EWMA and CUSUM start afresh."""
    for col in range(I_PHASE2_N, I_OUT1_RUN + 1):
        istate[c, col] = 0
    fstate[c, F_EWMA] = fstate[c, F_CENTER]
    fstate[c, F_EWMA_DECAY] = 1.0
    fstate[c, F_CUSUM_HI] = 0.0
    fstate[c, F_CUSUM_LO] = 0.0


@inline
def _count_bits(bits, m):
    total = 0
    for b in range(m):
        total += (bits >> b) & 1
    return total


@inline
def _run_rules(istate, rcfg, c, z, diff, has_diff):
    """Update the run state with one standardised point; return flags of rules 2..8.

    Semantics are those of ``spc.rules.check_rules`` (see its module docstring).
    """
    enabled = rcfg[c, R_ENABLED]
    f = 0
    # rule 2: same side of the centre line; a point on the line breaks the run
    istate[c, I_POS_RUN] = istate[c, I_POS_RUN] + 1 if z > 0 else 0
    istate[c, I_NEG_RUN] = istate[c, I_NEG_RUN] + 1 if z < 0 else 0
    n2 = rcfg[c, R_SAME_SIDE]
    if (enabled >> 1) & 1 and (istate[c, I_POS_RUN] >= n2 or istate[c, I_NEG_RUN] >= n2):
        f |= FLAG_RULE_2
    # rules 3 and 4 look at differences; a tie breaks both
    if has_diff:
        istate[c, I_INC_RUN] = istate[c, I_INC_RUN] + 1 if diff > 0 else 0
        istate[c, I_DEC_RUN] = istate[c, I_DEC_RUN] + 1 if diff < 0 else 0
        sign = 1 if diff > 0 else (-1 if diff < 0 else 0)
        if sign == 0:
            istate[c, I_ALT_RUN] = 0
        elif istate[c, I_LAST_SIGN] == -sign:
            istate[c, I_ALT_RUN] += 1
        else:
            istate[c, I_ALT_RUN] = 1
        istate[c, I_LAST_SIGN] = sign
    n3 = rcfg[c, R_TREND] - 1
    if (enabled >> 2) & 1 and istate[c, I_INC_RUN] >= n3:
        f |= (FLAG_RULE_2 << 1) | FLAG_TREND_UP
    elif (enabled >> 2) & 1 and istate[c, I_DEC_RUN] >= n3:
        f |= FLAG_RULE_2 << 1
    if (enabled >> 3) & 1 and istate[c, I_ALT_RUN] >= rcfg[c, R_ALTERNATING] - 1:
        f |= FLAG_RULE_2 << 2
    # rules 5 and 6: k of the last m points beyond 2 (1) sigma, this one included
    istate[c, I_HI2_BITS] = (istate[c, I_HI2_BITS] << 1 | (1 if z > 2.0 else 0)) & 0xFFFF
    istate[c, I_LO2_BITS] = (istate[c, I_LO2_BITS] << 1 | (1 if z < -2.0 else 0)) & 0xFFFF
    istate[c, I_HI1_BITS] = (istate[c, I_HI1_BITS] << 1 | (1 if z > 1.0 else 0)) & 0xFFFF
    istate[c, I_LO1_BITS] = (istate[c, I_LO1_BITS] << 1 | (1 if z < -1.0 else 0)) & 0xFFFF
    if (enabled >> 4) & 1:
        k, m = rcfg[c, R_ZONE_A_K], rcfg[c, R_ZONE_A_M]
        if (z > 2.0 and _count_bits(istate[c, I_HI2_BITS], m) >= k) or (
            z < -2.0 and _count_bits(istate[c, I_LO2_BITS], m) >= k
        ):
            f |= FLAG_RULE_2 << 3
    if (enabled >> 5) & 1:
        k, m = rcfg[c, R_ZONE_B_K], rcfg[c, R_ZONE_B_M]
        if (z > 1.0 and _count_bits(istate[c, I_HI1_BITS], m) >= k) or (
            z < -1.0 and _count_bits(istate[c, I_LO1_BITS], m) >= k
        ):
            f |= FLAG_RULE_2 << 4
    # rules 7 and 8: hugging the centre line / avoiding it
    istate[c, I_IN1_RUN] = istate[c, I_IN1_RUN] + 1 if abs(z) < 1.0 else 0
    istate[c, I_OUT1_RUN] = istate[c, I_OUT1_RUN] + 1 if abs(z) > 1.0 else 0
    if (enabled >> 6) & 1 and istate[c, I_IN1_RUN] >= rcfg[c, R_WITHIN_C]:
        f |= FLAG_RULE_2 << 5
    if (enabled >> 7) & 1 and istate[c, I_OUT1_RUN] >= rcfg[c, R_OUTSIDE_C]:
        f |= FLAG_RULE_2 << 6
    return f


@inline
def _monitor(fstate, istate, mcfg, c, x, mon_out, out_row):
    """EWMA (exact time-varying limits) and tabular CUSUM; return their flags."""
    f = 0
    center = fstate[c, F_CENTER]
    sigma = fstate[c, F_SIGMA]
    lam = mcfg[c, M_EWMA_LAMBDA]
    if not np.isnan(lam):
        z = lam * x + (1.0 - lam) * fstate[c, F_EWMA]
        fstate[c, F_EWMA] = z
        decay = fstate[c, F_EWMA_DECAY] * (1.0 - lam) * (1.0 - lam)
        if decay < 1e-20:  # 1 - decay == 1 already; stop before slow subnormal numbers
            decay = 0.0
        fstate[c, F_EWMA_DECAY] = decay
        # compare squares: the square root is only needed to report a signal
        width_sq = (mcfg[c, M_EWMA_L] * sigma) ** 2 * lam / (2.0 - lam) * (1.0 - decay)
        dz = z - center
        if dz * dz > width_sq:
            f |= FLAG_EWMA_HIGH if dz > 0 else FLAG_EWMA_LOW
            mon_out[out_row, 0] = z
            mon_out[out_row, 1] = np.sqrt(width_sq)
    k = mcfg[c, M_CUSUM_K]
    if not np.isnan(k):
        hi = max(0.0, x - (center + k * sigma) + fstate[c, F_CUSUM_HI])
        lo = max(0.0, (center - k * sigma) - x + fstate[c, F_CUSUM_LO])
        fstate[c, F_CUSUM_HI] = hi
        fstate[c, F_CUSUM_LO] = lo
        h = mcfg[c, M_CUSUM_H] * sigma
        if hi > h:
            f |= FLAG_CUSUM_HIGH
            mon_out[out_row, 2] = hi
        if lo > h:
            f |= FLAG_CUSUM_LOW
            mon_out[out_row, 3] = lo
    return f


@inline
def _judge(fstate, istate, rcfg, mcfg, c, x, disp, has_disp, mon_out, i):
    """Phase II: rules, EWMA and CUSUM on one plotted point; return its flags.

    ``x`` is the plotted value (individual or subgroup mean), ``disp`` its dispersion
    statistic (moving range, range or standard deviation) when ``has_disp``.
    """
    f = 0
    center = fstate[c, F_CENTER]
    sigma = fstate[c, F_SIGMA]
    istate[c, I_PHASE2_N] += 1
    if rcfg[c, R_ENABLED] & 1:
        if x > fstate[c, F_UCL]:
            f |= FLAG_ABOVE_UCL
        elif x < fstate[c, F_LCL]:
            f |= FLAG_BELOW_LCL
        if has_disp:
            if disp > fstate[c, F_MR_UCL]:
                f |= FLAG_MR_ABOVE_UCL
            elif disp < fstate[c, F_DISP_LCL]:
                f |= FLAG_DISP_BELOW_LCL
    z = (x - center) / sigma if sigma > 0 else 0.0
    has_diff = istate[c, I_PHASE2_N] > 1
    f |= _run_rules(istate, rcfg, c, z, x - fstate[c, F_LAST_PLOT], has_diff)
    f |= _monitor(fstate, istate, mcfg, c, x, mon_out, i)
    return f


@inline
def _close_subgroup(fstate, istate, mcfg, c):
    """Mean and dispersion (R or s) of the subgroup just completed; reset the accumulator."""
    n = istate[c, I_SG_COUNT]
    s = fstate[c, F_SG_SUM]
    mean = fstate[c, F_REF] + s / n
    if mcfg[c, M_USE_S] > 0:
        disp = np.sqrt(max(fstate[c, F_SG_SUMSQ] - s * s / n, 0.0) / (n - 1))
    else:
        disp = fstate[c, F_SG_MAX] - fstate[c, F_SG_MIN]
    istate[c, I_SG_COUNT] = 0
    fstate[c, F_SG_SUM] = 0.0
    fstate[c, F_SG_SUMSQ] = 0.0
    return mean, disp


@inline
def _push_dispersion(fstate, istate, dring, c, disp, m):
    """Rolling sum of the last ``m`` subgroup dispersions (re-summed at every wrap)."""
    pos = istate[c, I_DRING_POS]
    count = istate[c, I_DRING_COUNT]
    if count == m:
        fstate[c, F_DISP_SUM] -= dring[c, pos]
        count -= 1
    dring[c, pos] = disp
    fstate[c, F_DISP_SUM] += disp
    pos = pos + 1 if pos + 1 < m else 0
    istate[c, I_DRING_POS] = pos
    istate[c, I_DRING_COUNT] = count + 1
    if pos == 0:
        total = 0.0
        for j in range(count + 1):
            total += dring[c, j]
        fstate[c, F_DISP_SUM] = total


@inline
def _accumulate(fstate, istate, c, x):
    """Add one value to the current subgroup; return the subgroup's size so far."""
    d = x - fstate[c, F_REF]
    n = istate[c, I_SG_COUNT]
    if n == 0:
        fstate[c, F_SG_MIN] = x
        fstate[c, F_SG_MAX] = x
    else:
        fstate[c, F_SG_MIN] = min(fstate[c, F_SG_MIN], x)
        fstate[c, F_SG_MAX] = max(fstate[c, F_SG_MAX], x)
    fstate[c, F_SG_SUM] += d
    fstate[c, F_SG_SUMSQ] += d * d
    istate[c, I_SG_COUNT] = n + 1
    return n + 1


@inline
def _baseline_point(fstate, istate, mcfg, baseline, c, x, disp):
    """Collect one Phase I point; True when it completed the baseline (limits frozen)."""
    b = istate[c, I_BASELINE_N]
    width = baseline.shape[1] // 2
    baseline[c, b] = x
    baseline[c, width + b] = disp
    istate[c, I_BASELINE_N] = b + 1
    if b + 1 == width:
        _freeze_baseline(fstate, istate, mcfg, baseline, c)
        if fstate[c, F_SIGMA] > 0:
            _reset_runs(istate, fstate, c)
            return True
        # no variation at all (a stuck or coarse gauge): limits would be zero-width and
        # flag everything; drop the oldest point and keep collecting instead
        istate[c, I_LIMIT_VERSION] = 0
        for j in range(width - 1):
            baseline[c, j] = baseline[c, j + 1]
            baseline[c, width + j] = baseline[c, width + j + 1]
        istate[c, I_BASELINE_N] = width - 1
    return False


@jit
def update(
    chars, values, evaluate, fstate, istate, rcfg, mcfg, baseline, ring, dring,
    flags, versions, disp_out, mon_out,
):  # fmt: skip
    """Feed values in order; update state; write per-value flags and limit versions.

    chars: int64[n] characteristic rows; values: float64[n]; evaluate: report flags
    (False when priming state from history: state still advances). A characteristic with
    subgroup size n > 1 plots a point when its n-th value arrives; that value carries
    the point's flags. flags/versions: outputs, int64[n]; disp_out: output float64[n],
    the dispersion statistic plotted at each value (moving range, or the subgroup's R or
    s; NaN where none); mon_out: output float64[n, 4], the EWMA statistic and its
    control-limit half-width, CUSUM C+ and C-, each written only where it signals.
    baseline: float64[C, 2 * baseline size]; dring: float64[C, window // 2].
    """
    for i in range(chars.shape[0]):
        c = chars[i]
        x = values[i]
        flags[i] = 0
        versions[i] = istate[c, I_LIMIT_VERSION]
        disp_out[i] = np.nan
        if not np.isfinite(x):
            flags[i] = FLAG_SKIPPED
            continue
        n_seen = istate[c, I_N_SEEN]
        if n_seen == 0:
            fstate[c, F_REF] = x
        n = int(mcfg[c, M_SUBGROUP])
        plotted = True
        if n == 1:
            plot, disp, has_disp = x, abs(x - fstate[c, F_LAST]), n_seen > 0
        else:
            plotted = _accumulate(fstate, istate, c, x) == n
            if plotted:
                plot, disp = _close_subgroup(fstate, istate, mcfg, c)
                has_disp = True
                _push_dispersion(fstate, istate, dring, c, disp, ring.shape[1] // n)
        if plotted:
            if has_disp:
                disp_out[i] = disp
            if istate[c, I_LIMIT_VERSION] == 0:
                if _baseline_point(fstate, istate, mcfg, baseline, c, plot, disp):
                    flags[i] = FLAG_LIMITS_SET
                    versions[i] = 1
            else:
                f = _judge(fstate, istate, rcfg, mcfg, c, plot, disp, has_disp, mon_out, i)
                if evaluate:
                    flags[i] = f
            fstate[c, F_LAST_PLOT] = plot
        _push_window(fstate, istate, ring, c, x)
        fstate[c, F_LAST] = x
        istate[c, I_N_SEEN] = n_seen + 1


# Signal kinds in the order the signals of one point are listed: (flag bit) per kind.
KIND_BITS = np.array(
    [FLAG_ABOVE_UCL, FLAG_BELOW_LCL, FLAG_MR_ABOVE_UCL]
    + [FLAG_RULE_2 << r for r in range(7)]
    + [FLAG_EWMA_HIGH, FLAG_EWMA_LOW, FLAG_CUSUM_HIGH, FLAG_CUSUM_LOW, FLAG_DISP_BELOW_LCL],
    dtype=np.int64,
)
KIND_R_HIGH, KIND_R_LOW, KIND_S_HIGH, KIND_S_LOW = 14, 15, 16, 17  # subgrouped dispersion
SIDE_HIGH, SIDE_LOW, SIDE_UP, SIDE_DOWN, SIDE_NONE = 0, 1, 2, 3, 4


@inline
def _signal_fields(kind, f, c, x, mr, mon_row, fstate, mcfg):
    """(value, limit, side) of one signal of kind ``kind`` on a point with flags ``f``."""
    center = fstate[c, F_CENTER]
    if kind == 0:
        return x, fstate[c, F_UCL], SIDE_HIGH
    if kind == 1:
        return x, fstate[c, F_LCL], SIDE_LOW
    if kind == 2 or kind == KIND_R_HIGH or kind == KIND_S_HIGH:
        return mr, fstate[c, F_MR_UCL], SIDE_HIGH
    if kind == KIND_R_LOW or kind == KIND_S_LOW:
        return mr, fstate[c, F_DISP_LCL], SIDE_LOW
    if kind <= 9:  # run rules 2..8: no limit, a side for 2, 5, 6 and a direction for 3
        rule = kind - 1
        if rule == 2 or rule == 5 or rule == 6:
            return x, np.nan, SIDE_HIGH if x > center else SIDE_LOW
        if rule == 3:
            return x, np.nan, SIDE_UP if f & FLAG_TREND_UP else SIDE_DOWN
        return x, np.nan, SIDE_NONE
    if kind == 10:
        return mon_row[0], center + mon_row[1], SIDE_HIGH
    if kind == 11:
        return mon_row[0], center - mon_row[1], SIDE_LOW
    h = mcfg[c, M_CUSUM_H] * fstate[c, F_SIGMA]
    if kind == 12:
        return mon_row[2], h, SIDE_HIGH
    return mon_row[3], h, SIDE_LOW


@inline
def _dispersion_kind(b, mcfg, c):
    """Kind of a signal: the dispersion bits name R or S charts for subgroups."""
    if b != 2 and b != 14:
        return b
    if mcfg[c, M_SUBGROUP] == 1:
        return b  # the MR chart has no lower limit: bit 14 never fires for it
    use_s = mcfg[c, M_USE_S] > 0
    if b == 2:
        return KIND_S_HIGH if use_s else KIND_R_HIGH
    return KIND_S_LOW if use_s else KIND_R_LOW


@jit
def decode_signals(flags, chars, values, mr, mon, fstate, mcfg):
    """Columns of every signal in batch order: position, kind, side, value, limit."""
    total = 0
    for i in range(flags.shape[0]):
        f = flags[i]
        if f:
            for b in range(KIND_BITS.shape[0]):
                if f & KIND_BITS[b]:
                    total += 1
    position = np.empty(total, dtype=np.int64)
    kind = np.empty(total, dtype=np.int64)
    side = np.empty(total, dtype=np.int64)
    value = np.empty(total)
    limit = np.empty(total)
    j = 0
    for i in range(flags.shape[0]):
        f = flags[i]
        if not f:
            continue
        for b in range(KIND_BITS.shape[0]):
            if f & KIND_BITS[b]:
                c = chars[i]
                kd = _dispersion_kind(b, mcfg, c)
                v, lim, s = _signal_fields(kd, f, c, values[i], mr[i], mon[i], fstate, mcfg)
                position[j], kind[j], side[j], value[j], limit[j] = i, kd, s, v, lim
                j += 1
    return position, kind, side, value, limit
