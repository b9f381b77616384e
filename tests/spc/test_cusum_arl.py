"""CUSUM ARLs against Montgomery's published table and against direct simulation."""

from __future__ import annotations

import numpy as np
import pytest

from spc.constants import D2_N2
from spc.cusum_arl import cusum_arl, estimated_arl, siegmund_arl

# Montgomery, Introduction to Statistical Quality Control, Table 9.3: ARL of the
# two-sided tabular CUSUM with k = 1/2, shift in sigma
TABLE_9_3 = {
    4.0: [(0.0, 168), (0.25, 74.2), (0.5, 26.6), (0.75, 13.3), (1.0, 8.38), (1.5, 4.75),
          (2.0, 3.34), (2.5, 2.62), (3.0, 2.19), (4.0, 1.71)],
    5.0: [(0.0, 465), (0.25, 139), (0.5, 38.0), (0.75, 17.0), (1.0, 10.4), (1.5, 5.75),
          (2.0, 4.01), (2.5, 3.11), (3.0, 2.57), (4.0, 2.01)],
}  # fmt: skip


@pytest.mark.parametrize("h", sorted(TABLE_9_3))
def test_known_parameter_arls_match_montgomerys_table(h: float) -> None:
    shifts = np.array([s for s, _ in TABLE_9_3[h]])
    arls = cusum_arl(0.5, h, shifts, 1.0)
    for (shift, published), ours in zip(TABLE_9_3[h], np.atleast_1d(arls), strict=True):
        assert ours == pytest.approx(published, rel=0.005), shift


def test_siegmunds_approximation_agrees_within_a_few_percent() -> None:
    for k, h, shift in ((0.5, 5.0, 0.0), (0.4, 6.0, 0.0), (0.5, 5.0, 1.0), (0.4, 6.0, 0.5)):
        assert siegmund_arl(k, h, shift) == pytest.approx(cusum_arl(k, h, shift), rel=0.03)


def test_a_wider_spread_or_an_offset_shortens_the_run() -> None:
    known = cusum_arl(0.4, 6.0)
    assert isinstance(known, float)
    assert cusum_arl(0.4, 6.0, 0.0, 1.1) < known  # sigma underestimated by 10 %
    assert cusum_arl(0.4, 6.0, 0.1, 1.0) < known  # centre off by 0.1 sigma


def test_huge_phase_one_estimates_behave_like_known_parameters() -> None:
    got = estimated_arl(0.4, 6.0, phase1=200_000, draws=8, seed=2, states=100)
    known = cusum_arl(0.4, 6.0, states=100)
    assert got.mean == pytest.approx(known, rel=0.02)
    assert got.pooled == pytest.approx(known, rel=0.02)


def test_the_estimated_parameter_arl_matches_a_direct_simulation() -> None:
    """Simulate the CUSUM itself: Phase I of 50, then points until it signals."""
    k, h, m, reps = 0.5, 3.0, 50, 20_000
    rng = np.random.default_rng(3)
    phase1 = rng.standard_normal((reps, m))
    mu = phase1.mean(axis=1)
    sigma = np.abs(np.diff(phase1, axis=1)).mean(axis=1) / D2_N2
    upper, lower = np.zeros(reps), np.zeros(reps)
    run = np.zeros(reps, dtype=int)
    alive = np.ones(reps, dtype=bool)
    t = 0
    while alive.any():
        t += 1
        z = (rng.standard_normal(reps) - mu) / sigma
        upper, lower = np.maximum(0, upper + z - k), np.maximum(0, lower - z - k)
        signal = alive & ((upper > h) | (lower > h))
        run[signal] = t
        alive &= ~signal
    chain = estimated_arl(k, h, m, draws=1_000, seed=5, states=80)
    # the run lengths' mean carries the heavy tail of wide sigma estimates: a few % noise
    assert chain.mean == pytest.approx(run.mean(), rel=0.08)
    assert chain.pooled < cusum_arl(k, h) < chain.mean  # estimation hurts the pooled rate


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="h > 0"):
        cusum_arl(0.5, 0.0)
    with pytest.raises(ValueError, match="scale"):
        cusum_arl(0.5, 4.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="phase1"):
        estimated_arl(0.5, 4.0, phase1=1)
