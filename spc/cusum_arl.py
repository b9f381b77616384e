"""Average run length of the tabular CUSUM, with known and with estimated parameters.

Known parameters: the Markov-chain approximation of Brook and Evans (1972, *Biometrika*
59, 539–549). The one-sided statistic C = max(0, C + z - k) on [0, h] is cut into
``states`` cells of width w = 2h / (2 states - 1), cell 0 holding C = 0; the ARL from
C = 0 is the first entry of (I - R)⁻¹ 1, R the transitions between cells. The two sides
combine as 1 / ARL = 1 / ARL⁺ + 1 / ARL⁻ (the convention of Montgomery's Table 9.3, which
the tests reproduce: k = 0.5, h = 4 or 5 give 168 and 465 in control).

Estimated parameters: the service standardises z = (x - μ̂) / σ̂ with μ̂ the mean and
σ̂ = MR-bar / d2 of its Phase I individuals (``spc.engine``). A process that is really
N(μ + δσ, σ²) then gives z ~ N((μ + δσ - μ̂) / σ̂, (σ / σ̂)²), and the CUSUM's ARL
depends on the estimate drawn (Jones, Champ and Rigdon 2004, *J. Quality Technology* 36,
95–108). ``estimated_arl`` draws Phase I samples and reports the ARL over them: its
mean, its median, and the *pooled* ARL 1 / mean(1 / ARL) — the points per false alarm
of a plant of many characteristics, the figure a pager sees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from spc.constants import D2_N2

FloatArray = npt.NDArray[np.float64]
STATES = 150
"""Cells of the Markov chain: the ARL agrees with Montgomery's table to 3 significant digits."""


def _one_sided(k: float, h: float, shift: FloatArray, scale: FloatArray, states: int) -> FloatArray:
    """Upper CUSUM ARL from 0 for each (shift, scale): z ~ N(shift, scale²)."""
    w = 2.0 * h / (2 * states - 1)
    centre = np.arange(states) * w
    upper = (np.arange(states) + 0.5) * w
    lower = np.concatenate(([-np.inf], upper[:-1]))
    # from cell i (C = centre_i) the new C falls in cell j when lower_j < C + z - k <= upper_j
    span = (upper[None, :] - centre[:, None] + k)[None, :, :]
    floor = (lower[None, :] - centre[:, None] + k)[None, :, :]
    mu, sd = shift[:, None, None], scale[:, None, None]
    moves = stats.norm.cdf((span - mu) / sd) - stats.norm.cdf((floor - mu) / sd)
    system = np.eye(states)[None, :, :] - moves
    arl = np.linalg.solve(system, np.ones((len(shift), states, 1)))
    return np.asarray(arl[:, 0, 0], dtype=np.float64)


def cusum_arl(
    k: float,
    h: float,
    shift: float | FloatArray = 0.0,
    scale: float | FloatArray = 1.0,
    states: int = STATES,
) -> float | FloatArray:
    """Two-sided tabular CUSUM ARL (Brook–Evans chain), in points, from C⁺ = C⁻ = 0.

    ``k`` and ``h`` in units of the standardised variable z; z ~ N(``shift``,
    ``scale``²) (0 and 1: in control with known parameters). Arrays of shifts and scales
    give an array of ARLs. Raises ValueError for h <= 0, k < 0 or a scale <= 0.
    """
    if not h > 0 or not k >= 0:
        raise ValueError(f"need h > 0 and k >= 0, got k={k}, h={h}")
    mu, sd = np.broadcast_arrays(np.atleast_1d(shift), np.atleast_1d(scale))
    mu, sd = mu.astype(np.float64), sd.astype(np.float64)
    if np.any(sd <= 0):
        raise ValueError("scale must be positive")
    up = _one_sided(k, h, mu, sd, states)
    down = _one_sided(k, h, -mu, sd, states)
    both = 1.0 / (1.0 / up + 1.0 / down)
    return float(both[0]) if np.ndim(shift) == 0 and np.ndim(scale) == 0 else both


@dataclass(frozen=True)
class EstimatedArl:
    """The CUSUM's ARL over Phase I estimates (``draws`` samples of ``phase1`` points).

    ``pooled`` = 1 / mean(1 / ARL): points per alarm pooled over many characteristics;
    ``mean`` and ``median`` of the ARL a single characteristic gets.
    """

    pooled: float
    mean: float
    median: float
    draws: int


def estimated_arl(
    k: float,
    h: float,
    phase1: int,
    shift: float = 0.0,
    draws: int = 1000,
    seed: int = 0,
    states: int = 100,
) -> EstimatedArl:
    """ARL of the service's CUSUM when μ and σ are estimated from ``phase1`` individuals.

    μ̂ is their mean, σ̂ = MR-bar / d2(2) (as the engine freezes them); ``shift`` is the
    true mean's distance from the Phase I mean in true σ (0: in control). Monte Carlo
    over ``draws`` Phase I samples, reproducible from ``seed``; the ARL of each from
    ``cusum_arl``.
    """
    if phase1 < 2:
        raise ValueError(f"phase1 must be at least 2 points, got {phase1}")
    rng = np.random.default_rng(seed)
    arls = np.empty(draws)
    done = 0
    while done < draws:  # chunks: the chains of a chunk are solved in one batch
        n = min(200, draws - done)
        x = rng.standard_normal((n, phase1))
        mu_hat = x.mean(axis=1)
        sigma_hat = np.abs(np.diff(x, axis=1)).mean(axis=1) / D2_N2
        got = cusum_arl(k, h, (shift - mu_hat) / sigma_hat, 1.0 / sigma_hat, states)
        arls[done : done + n] = got
        done += n
    return EstimatedArl(
        float(1.0 / np.mean(1.0 / arls)), float(arls.mean()), float(np.median(arls)), draws
    )


def siegmund_arl(k: float, h: float, shift: float = 0.0) -> float:
    """Siegmund's closed-form approximation of the two-sided ARL (a cross-check).

    One side: (exp(-2Δb) + 2Δb - 1) / (2Δ²), Δ = shift - k, b = h + 1.166 (Montgomery
    eq. 9.8); the two sides combine as in ``cusum_arl``.
    """

    def side(delta: float) -> float:
        b = h + 1.166
        if delta == 0:
            return b * b
        return (math.exp(-2 * delta * b) + 2 * delta * b - 1) / (2 * delta * delta)

    return 1.0 / (1.0 / side(shift - k) + 1.0 / side(-shift - k))
