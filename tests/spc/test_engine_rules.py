"""The engine's incremental run rules, EWMA and CUSUM equal the batch references.

For random series, rule sets, limits and shifts, every signal the O(1)-per-point kernel
raises after the baseline is exactly what ``check_rules``, ``ewma`` and ``cusum`` find
on the same Phase II points with the same frozen limits.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spc import CusumConfig, Engine, EwmaConfig, RuleSet, check_rules
from spc.ewma_cusum import cusum, ewma

RULE_IDS = ("1", "2", "3", "4", "5", "6", "7", "8")


@st.composite
def rule_sets(draw: st.DrawFn) -> RuleSet:
    enabled = frozenset(draw(st.sets(st.sampled_from(RULE_IDS), min_size=1)))
    za_m = draw(st.integers(2, 6))
    zb_m = draw(st.integers(2, 8))
    return RuleSet(
        enabled=enabled,
        same_side=draw(st.integers(2, 12)),
        trend=draw(st.integers(2, 8)),
        alternating=draw(st.integers(2, 16)),
        zone_a=(draw(st.integers(2, za_m)), za_m),
        zone_b=(draw(st.integers(2, zb_m)), zb_m),
        within_c=draw(st.integers(2, 20)),
        outside_c=draw(st.integers(2, 10)),
    )


@st.composite
def series(draw: st.DrawFn) -> np.ndarray:
    n = draw(st.integers(30, 250))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    x = rng.normal(50.0, 2.0, n)
    kind = draw(st.sampled_from(["shift", "trend", "alternate", "quantised", "none"]))
    tail = np.arange(n - 25)
    if kind == "shift":
        x[25:] += draw(st.floats(-3, 3)) * 2.0
    elif kind == "trend":
        x[25:] += tail * draw(st.floats(-0.5, 0.5))
    elif kind == "alternate":
        x[25:] += np.where(tail % 2 == 0, 3.0, -3.0)
    elif kind == "quantised":  # ties and points exactly on the centre line
        x = np.round(x)
    return x


def _phase2_signals(engine_signals: list, baseline: int, chart: str) -> set[tuple[int, str]]:
    return {(s.position - baseline, s.rule) for s in engine_signals if s.chart == chart}


@settings(max_examples=150, deadline=None)
@given(x=series(), rules=rule_sets(), lam=st.floats(0.05, 1.0), L=st.floats(1.0, 3.5),
       k=st.floats(0.0, 1.5), h=st.floats(0.5, 6.0))  # fmt: skip
def test_engine_signals_equal_the_batch_references(
    x: np.ndarray, rules: RuleSet, lam: float, L: float, k: float, h: float
) -> None:
    baseline = 25
    engine = Engine(baseline_size=baseline, window=40)
    row = engine.add_characteristic(
        lsl=40.0, usl=60.0, rules=rules, ewma=EwmaConfig(lam, L), cusum=CusumConfig(k, h)
    )
    # feed in uneven batches: state must carry across batch boundaries
    signals = []
    cuts = [0, 7, 31, 32, 90, len(x)]
    for a, b in itertools.pairwise(cuts):
        if a < min(b, len(x)):
            result = engine.process([row] * (min(b, len(x)) - a), x[a : min(b, len(x))])
            signals.extend(
                s.__class__(**{**s.__dict__, "position": s.position + a}) for s in result.signals
            )
    limits = engine.limits(row)
    assert limits is not None
    phase2 = x[baseline:]

    expected = {(v.index, v.rule) for v in check_rules(phase2, limits.center, limits.sigma, rules)}
    assert _phase2_signals(signals, baseline, "i") == expected

    e = ewma(phase2, lam, L, limits.center, limits.sigma)
    assert {i for i, _ in _phase2_signals(signals, baseline, "ewma")} == set(e.signals.tolist())
    c = cusum(phase2, k, h, limits.center, limits.sigma)
    assert {i for i, _ in _phase2_signals(signals, baseline, "cusum")} == set(c.signals.tolist())


def test_ewma_and_cusum_signals_report_the_statistic_and_the_limit_crossed() -> None:
    engine = Engine(baseline_size=25, window=40)
    row = engine.add_characteristic(rules=RuleSet(enabled=frozenset({"1"})))
    x = np.concatenate([np.random.default_rng(4).normal(0, 1, 25), np.full(30, 1.5)])
    result = engine.process([row] * len(x), x)
    limits = engine.limits(row)
    assert limits is not None
    phase2 = x[25:]
    e = ewma(phase2, 0.2, 3.0, limits.center, limits.sigma)
    c = cusum(phase2, 0.5, 4.0, limits.center, limits.sigma)
    first_ewma = next(s for s in result.signals if s.rule == "ewma")
    i = first_ewma.position - 25
    assert first_ewma.value == pytest.approx(e.statistic[i], rel=1e-12)
    assert first_ewma.limit == pytest.approx(e.ucl[i], rel=1e-12)
    assert first_ewma.side == "high"
    first_cusum = next(s for s in result.signals if s.rule == "cusum")
    j = first_cusum.position - 25
    assert first_cusum.value == pytest.approx(c.upper[j], rel=1e-12)
    assert first_cusum.limit == pytest.approx(4.0 * limits.sigma, rel=1e-12)


def test_trend_signals_say_which_way() -> None:
    engine = Engine(baseline_size=5, window=10)
    row = engine.add_characteristic(rules=RuleSet(enabled=frozenset({"3"})), ewma=None, cusum=None)
    x = [0.0, 1.0, 0.5, -0.5, 0.2, *range(10), *range(10, 0, -1)]
    sides = {s.side for s in engine.process([row] * len(x), x).signals}
    assert sides == {"up", "down"}


def test_a_snapshot_restored_engine_continues_exactly_like_the_original() -> None:
    rng = np.random.default_rng(11)
    first = Engine(baseline_size=10, window=20)
    rows = [first.add_characteristic(lsl=-4.0, usl=4.0) for _ in range(3)]
    history = rng.normal(0, 1, 90)
    first.process(np.tile(rows, 30), history)
    twin = Engine.restore(first.snapshot())
    future_rows, future = np.tile(rows, 40), rng.normal(0.8, 1, 120)
    a, b = first.process(future_rows, future), twin.process(future_rows, future)
    assert a.signals == b.signals
    assert a.signals  # the shifted future does signal: the comparison is not vacuous
    for row in rows:
        assert first.rolling_capability(row) == twin.rolling_capability(row)
        assert first.limits(row) == twin.limits(row)


def test_a_snapshot_with_a_wrong_shape_is_refused() -> None:
    snap = Engine(baseline_size=5, window=10).snapshot()
    snap["ring"] = np.zeros((0, 11))
    with pytest.raises(ValueError, match="ring"):
        Engine.restore(snap)


def test_restored_limits_restart_the_run_rules() -> None:
    engine = Engine(baseline_size=5, window=10)
    row = engine.add_characteristic(rules=RuleSet(enabled=frozenset({"2"}), same_side=3))
    engine.process([row] * 7, [0.0, 1.0, -1.0, 0.5, -0.5, 2.0, 2.0])  # 2 above the centre
    limits = engine.limits(row)
    assert limits is not None
    engine.restore_limits(row, limits)
    assert engine.process([row], [2.0]).signals == []  # the run restarted: 1 of 3


def test_recalculated_limits_leave_out_excluded_points_and_take_the_next_version() -> None:
    """Montgomery Example 6.5 data; point 15 (314) marked as an assignable cause."""
    from spc import control_limits

    data = [310, 288, 297, 298, 307, 303, 294, 297, 308, 306,
            294, 299, 297, 299, 314, 295, 293, 306, 301, 304]  # fmt: skip
    engine = Engine(baseline_size=5, window=10)
    row = engine.add_characteristic()
    engine.process([row] * 6, data[:6])  # version 1 from the first 5 points
    limits = engine.recalculate(row, data, exclude=[14])
    expected = control_limits(data[:14] + data[15:], "imr")
    assert limits.version == 2
    assert limits.baseline_n == 19
    assert limits.center == pytest.approx(expected.center, rel=1e-12)
    assert limits.ucl == pytest.approx(expected.ucl, rel=1e-12)
    assert engine.limits(row) == limits
    signal = engine.process([row], [400.0]).signals[0]
    assert signal.limit_version == 2


def test_recalculation_refuses_bad_exclusions() -> None:
    engine = Engine(baseline_size=5, window=10)
    row = engine.add_characteristic()
    with pytest.raises(IndexError, match="outside the baseline"):
        engine.recalculate(row, [1.0, 2.0, 3.0], exclude=[3])
    with pytest.raises(ValueError, match="at least 2 points"):
        engine.recalculate(row, [1.0, 2.0, 3.0], exclude=[0, 1])
