"""The engine's X-bar/R and X-bar/S charts equal the batch references.

Subgroups are formed from consecutive values of one characteristic; the value that
completes a subgroup carries the plotted point's signals.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spc import CusumConfig, Engine, EwmaConfig, RuleSet, capability, check_rules, control_limits
from spc import _kernels as k
from spc.ewma_cusum import cusum, ewma
from tests.spc.test_charts import PISTON_RINGS
from tests.spc.test_engine_rules import rule_sets


def test_piston_ring_limits_match_montgomery_example_6_1() -> None:
    """Montgomery, Introduction to SQC, Example 6.1: x-double-bar 74.001, R-bar 0.023,
    X-bar chart 73.988 .. 74.014, R chart UCL 0.0481 (the book prints 0.049 from the
    rounded R-bar)."""
    engine = Engine(baseline_size=25, window=100)
    row = engine.add_characteristic(subgroup_size=5)
    engine.process([row] * 125, np.asarray(PISTON_RINGS).ravel())
    limits = engine.limits(row)
    assert limits is not None
    assert limits.center == pytest.approx(74.001, abs=5e-4)
    assert limits.mr_center == pytest.approx(0.023, abs=5e-4)
    assert (round(limits.lcl, 3), round(limits.ucl, 3)) == (73.988, 74.014)
    assert limits.mr_ucl == pytest.approx(0.0481, abs=5e-5)
    assert limits.dispersion_lcl == 0.0
    assert limits.baseline_n == 25


@pytest.mark.parametrize(("dispersion", "chart"), [("r", "xbar_r"), ("s", "xbar_s")])
@pytest.mark.parametrize("n", [2, 5, 8, 10])
def test_frozen_limits_equal_control_limits_on_the_baseline(
    n: int, dispersion: str, chart: str
) -> None:
    x = np.random.default_rng(n).normal(10.0, 0.5, 25 * n)
    engine = Engine(baseline_size=25, window=10 * n)
    row = engine.add_characteristic(subgroup_size=n, dispersion=dispersion)
    engine.process([row] * x.size, x)
    limits = engine.limits(row)
    ref = control_limits(x, chart, subgroup_size=n)
    assert limits is not None
    assert ref.dispersion is not None
    assert limits.center == pytest.approx(ref.center, rel=1e-12)
    assert limits.ucl == pytest.approx(ref.ucl, rel=1e-12)
    assert limits.lcl == pytest.approx(ref.lcl, rel=1e-12)
    assert limits.sigma == pytest.approx(ref.sigma / np.sqrt(n), rel=1e-12)
    assert limits.mr_center == pytest.approx(ref.dispersion.center, rel=1e-12)
    assert limits.mr_ucl == pytest.approx(ref.dispersion.ucl, rel=1e-12)
    assert limits.dispersion_lcl == pytest.approx(ref.dispersion.lcl, rel=1e-12, abs=1e-15)


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(2, 8),
    dispersion=st.sampled_from(["r", "s"]),
    groups=st.integers(26, 90),
    seed=st.integers(0, 2**32 - 1),
    shift=st.floats(-2.0, 2.0),
    rules=rule_sets(),
)
def test_subgroup_signals_equal_the_batch_references(
    n: int, dispersion: str, groups: int, seed: int, shift: float, rules: RuleSet
) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, (groups, n))
    x[25:] += shift
    x[25 + groups // 3 :, 0] *= 3.0  # more spread later: dispersion signals too
    values = x.ravel()
    engine = Engine(baseline_size=25, window=4 * n)
    row = engine.add_characteristic(
        subgroup_size=n, dispersion=dispersion, rules=rules,
        ewma=EwmaConfig(0.3, 2.5), cusum=CusumConfig(0.5, 3.0),
    )  # fmt: skip
    signals = []
    for a in range(0, values.size, 37):  # batches that split subgroups
        result = engine.process([row] * len(values[a : a + 37]), values[a : a + 37])
        signals += [(s.position + a, s.rule, s.chart, s.side) for s in result.signals]
    limits = engine.limits(row)
    assert limits is not None
    means = x.mean(axis=1)[25:]
    disp = (x.std(axis=1, ddof=1) if dispersion == "s" else np.ptp(x, axis=1))[25:]

    def completing(i: int) -> int:  # position of the value that completes subgroup 25 + i
        return (25 + i) * n + n - 1

    got = {(p, r) for p, r, chart, _ in signals if chart == "i"}
    want = {(completing(v.index), v.rule) for v in
            check_rules(means, limits.center, limits.sigma, rules)}  # fmt: skip
    assert got == want
    got_disp = {(p, side) for p, _, chart, side in signals if chart == dispersion}
    want_disp = {(completing(i), "high") for i in np.flatnonzero(disp > limits.mr_ucl)} | {
        (completing(i), "low") for i in np.flatnonzero(disp < limits.dispersion_lcl)
    }
    if "1" not in rules.enabled:
        want_disp = set()
    assert got_disp == want_disp
    e = ewma(means, 0.3, 2.5, limits.center, limits.sigma)
    assert {p for p, r, *_ in signals if r == "ewma"} == {completing(i) for i in e.signals}
    c = cusum(means, 0.5, 3.0, limits.center, limits.sigma)
    assert {p for p, r, *_ in signals if r == "cusum"} == {completing(i) for i in c.signals}


@pytest.mark.parametrize(("dispersion", "method"), [("r", "rbar"), ("s", "sbar")])
def test_rolling_capability_at_each_subgroup_equals_capability_of_the_window(
    dispersion: str, method: str
) -> None:
    n, window = 4, 40
    x = np.random.default_rng(9).normal(74.001, 0.01, 60 * n)
    engine = Engine(baseline_size=25, window=window)
    row = engine.add_characteristic(lsl=73.95, usl=74.05, subgroup_size=n, dispersion=dispersion)
    for g in range(60):
        engine.process([row] * n, x[g * n : (g + 1) * n])
        rolling = engine.rolling_capability(row)
        assert rolling is not None
        seen = x[: (g + 1) * n][-window:]
        if seen.size < 2 * n:
            continue
        ref = capability(seen, 73.95, 74.05, subgroup_size=n, sigma_within=method)
        for name in ("mean", "sigma_within", "sigma_overall", "cp", "cpk", "pp", "ppk"):
            assert getattr(rolling, name) == pytest.approx(getattr(ref, name), rel=1e-9), name


def test_a_snapshot_taken_mid_subgroup_continues_exactly() -> None:
    rng = np.random.default_rng(5)
    first = Engine(baseline_size=5, window=20)
    row = first.add_characteristic(subgroup_size=4, dispersion="s")
    first.process([row] * 23, rng.normal(0, 1, 23))  # 5 subgroups + 3 values
    twin = Engine.restore(first.snapshot())
    later = rng.normal(1.5, 1, 40)
    a, b = first.process([row] * 40, later), twin.process([row] * 40, later)
    assert a.signals == b.signals
    assert a.signals


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"subgroup_size": 3}, "multiple of subgroup_size 3"),
        ({"subgroup_size": 26}, "1 \\(individuals\\) or 2..25"),
        ({"subgroup_size": 4, "dispersion": "x"}, "'r' \\(range\\) or 's'"),
    ],
)
def test_subgroup_configuration_errors_say_how_to_fix_them(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Engine(window=100).add_characteristic(**kwargs)


@pytest.mark.parametrize("dispersion", ["r", "s"])
def test_spread_collapsing_below_the_lower_dispersion_limit_signals_low(dispersion: str) -> None:
    # n = 10: D3 = 0.223 and B3 = 0.284, so R and S charts have a lower limit
    rng = np.random.default_rng(2)
    engine = Engine(baseline_size=25, window=100)
    row = engine.add_characteristic(subgroup_size=10, dispersion=dispersion, ewma=None, cusum=None)
    engine.process([row] * 250, rng.normal(0, 1, 250))
    limits = engine.limits(row)
    assert limits is not None
    assert limits.dispersion_lcl > 0
    quiet = rng.normal(0, 0.05, 10)  # a stuck gauge or a changed measurement system
    signals = engine.process([row] * 10, quiet).signals
    low = [s for s in signals if s.chart == dispersion]
    assert [(s.position, s.side, s.limit) for s in low] == [(9, "low", limits.dispersion_lcl)]
    stat = np.ptp(quiet) if dispersion == "r" else quiet.std(ddof=1)
    assert low[0].value == pytest.approx(stat, rel=1e-12)


def test_subgroup_means_stay_exact_when_the_sums_are_re_centred_mid_subgroup() -> None:
    """Review finding: a one-step change on a 0.01 mm gauge re-centred the rolling sums
    while a subgroup was open, and its mean came out 10.0115 instead of 10.01."""
    engine = Engine()  # baseline 25 subgroups, window 100
    row = engine.add_characteristic(subgroup_size=5, ewma=None, cusum=None)
    values = [10.00] * 137 + [10.01] * 200
    for i, v in enumerate(values):
        engine.process([row], [v])
        if (i + 1) % 5 == 0:
            expected = float(np.mean(values[i - 4 : i + 1]))
            assert engine._fstate[row, k.F_LAST_PLOT] == pytest.approx(expected, abs=1e-12), i


def test_a_baseline_without_any_variation_keeps_collecting_instead_of_freezing() -> None:
    """Review finding: a stuck gauge froze sigma = 0 and then every point signalled."""
    engine = Engine(baseline_size=25, window=100)
    row = engine.add_characteristic()
    assert engine.process([row] * 40, [10.0] * 40).count == 0
    assert engine.limits(row) is None
    assert engine.baseline_progress(row) == (24, 25)
    engine.process([row] * 2, [10.01, 10.0])
    limits = engine.limits(row)
    assert limits is not None
    assert limits.sigma > 0


def test_recalculated_xbar_r_limits_equal_the_aiag_formulas_and_skip_excluded_subgroups() -> None:
    engine = Engine(baseline_size=5, window=20)
    row = engine.add_characteristic(subgroup_size=5)
    rng = np.random.default_rng(3)
    values = rng.normal(10.0, 0.5, size=30)
    values[10:15] += 4.0  # subgroup 2: an assignable cause, left out
    limits = engine.recalculate(row, values, exclude=[2])
    kept = np.delete(values.reshape(6, 5), 2, axis=0)
    xbarbar, rbar = kept.mean(axis=1).mean(), np.ptp(kept, axis=1).mean()
    # AIAG SPC manual table, n = 5: A2 = 0.577, D4 = 2.114, D3 = 0 (3-digit constants)
    assert limits.version == 1
    assert limits.baseline_n == 5
    assert limits.center == pytest.approx(xbarbar, rel=1e-12)
    assert limits.ucl == pytest.approx(xbarbar + 0.577 * rbar, rel=1e-3)
    assert limits.lcl == pytest.approx(xbarbar - 0.577 * rbar, rel=1e-3)
    assert limits.mr_center == pytest.approx(rbar, rel=1e-12)
    assert limits.mr_ucl == pytest.approx(2.114 * rbar, rel=1e-3)
    assert limits.dispersion_lcl == 0.0
    assert (limits.ucl - limits.center) == pytest.approx(3 * limits.sigma, rel=1e-12)
    assert engine.limits(row) == limits


def test_recalculated_xbar_s_limits_use_s_bar_and_b_constants() -> None:
    engine = Engine(baseline_size=5, window=20)
    row = engine.add_characteristic(subgroup_size=10, dispersion="s")
    values = np.random.default_rng(4).normal(0.0, 1.0, size=100)
    limits = engine.recalculate(row, values)
    sbar = values.reshape(10, 10).std(axis=1, ddof=1).mean()
    # AIAG SPC manual table, n = 10: A3 = 0.975, B3 = 0.284, B4 = 1.716
    assert limits.ucl - limits.center == pytest.approx(0.975 * sbar, rel=1e-3)
    assert limits.dispersion_lcl == pytest.approx(0.284 * sbar, rel=2e-3)
    assert limits.mr_ucl == pytest.approx(1.716 * sbar, rel=1e-3)


def test_recalculate_refuses_a_baseline_of_partial_subgroups() -> None:
    engine = Engine(baseline_size=5, window=20)
    row = engine.add_characteristic(subgroup_size=5)
    with pytest.raises(ValueError, match="whole subgroups of 5"):
        engine.recalculate(row, np.arange(23.0))
