"""The incremental engine (``spc.engine`` over ``spc._kernels``), held to the batch references."""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spc import (
    CusumConfig,
    Engine,
    LimitSet,
    RollingCapability,
    RuleSet,
    RuleSignal,
    capability,
    check_rules,
    control_limits,
)
from tests.spc import naive


class RuleOneEngine(Engine):
    """The engine with rule 1 only and no EWMA/CUSUM: these tests hold its I-MR core to
    the references; tests/spc/test_engine_rules.py covers the other rules and charts."""

    def add_characteristic(self, *args: Any, **kwargs: Any) -> int:
        kwargs.setdefault("rules", RuleSet(enabled=frozenset({"1"})))
        kwargs.setdefault("ewma", None)
        kwargs.setdefault("cusum", None)
        return super().add_characteristic(*args, **kwargs)


MORTGAGE_COSTS = [
    310, 288, 297, 298, 307, 303, 294, 297, 308, 306,
    294, 299, 297, 299, 314, 295, 293, 306, 301, 304,
]  # fmt: skip

INDEX_FIELDS = ("cp", "cpk", "pp", "ppk")


def _feed(
    engine: Engine, row: int, values: npt.ArrayLike, evaluate: bool = True
) -> list[RuleSignal]:
    x = np.asarray(values, dtype=np.float64)
    return engine.process(np.full(x.size, row), x, evaluate=evaluate).signals


def _where(signals: list[RuleSignal]) -> list[tuple[int, int, str, str, str, int]]:
    """What a signal says happened, without the plotted value and the limit crossed."""
    return [
        (s.position, s.characteristic, s.rule, s.chart, s.side, s.limit_version) for s in signals
    ]


def _assert_limits_equal_batch_reference(limits: LimitSet | None, baseline: list[float]) -> None:
    assert limits is not None
    reference = control_limits(baseline)
    expected = naive.imr_limits(baseline)
    assert reference.dispersion is not None
    scale = max(abs(x) for x in baseline)
    tol = 1e-12 * scale
    for got, batch, slow in [
        (limits.center, reference.center, expected.center),
        (limits.sigma, reference.sigma, expected.sigma),
        (limits.ucl, reference.ucl, expected.ucl),
        (limits.lcl, reference.lcl, expected.lcl),
        (limits.mr_center, reference.dispersion.center, expected.mr_bar),
        (limits.mr_ucl, reference.dispersion.ucl, expected.mr_ucl),
    ]:
        assert got == pytest.approx(batch, rel=1e-12, abs=tol)
        assert got == pytest.approx(slow, rel=1e-12, abs=tol)


def _assert_rolling_equals_batch_reference(
    rolling: RollingCapability | None,
    window_values: list[float],
    lsl: float | None,
    usl: float | None,
    scale: float,
) -> None:
    if len(window_values) < 2:
        assert rolling is None
        return
    assert rolling is not None
    assert rolling.n == len(window_values)
    slow = naive.capability(window_values, lsl, usl)
    # the mean may sit near 0, so compare it on the scale of the data's spread
    assert rolling.mean == pytest.approx(slow.mean, rel=1e-9, abs=1e-9 * scale)
    assert rolling.sigma_within == pytest.approx(slow.sigma_within, rel=1e-9)
    assert rolling.sigma_overall == pytest.approx(slow.sigma_overall, rel=1e-9)
    for name in INDEX_FIELDS:
        want = getattr(slow, name)
        got = getattr(rolling, name)
        assert (got is None) == (want is None), name
        if want is not None:
            assert got == pytest.approx(want, rel=1e-9, abs=1e-9), name
    if lsl is None and usl is None:
        return
    batch = capability(window_values, lsl=lsl, usl=usl)
    assert rolling.mean == pytest.approx(batch.mean, rel=1e-9, abs=1e-9 * scale)
    assert rolling.sigma_within == pytest.approx(batch.sigma_within, rel=1e-9)
    assert rolling.sigma_overall == pytest.approx(batch.sigma_overall, rel=1e-9)
    for name in INDEX_FIELDS:
        want = getattr(batch, name)
        got = getattr(rolling, name)
        assert (got is None) == (want is None), name
        if want is not None:
            assert got == pytest.approx(want, rel=1e-9, abs=1e-9), name


# ---------------------------------------------------------------- limits from the baseline


def test_limits_after_a_25_point_baseline_equal_control_limits_on_those_points() -> None:
    engine = RuleOneEngine()
    row = engine.add_characteristic(lsl=70.0, usl=78.0)
    values = np.random.default_rng(25).normal(74.0, 0.8, size=40)
    assert engine.limits(row) is None
    _feed(engine, row, values[:24])
    assert engine.limits(row) is None
    assert engine.baseline_progress(row) == (24, 25)
    result = engine.process([row], [values[24]])
    limits = engine.limits(row)
    assert result.new_limits == {row: limits}
    assert limits is not None
    assert limits.version == 1
    assert limits.baseline_n == 25
    _assert_limits_equal_batch_reference(limits, list(values[:25]))
    _feed(engine, row, values[25:])
    assert engine.limits(row) == limits


def test_limits_on_montgomery_example_6_5_equal_the_naive_reference() -> None:
    """Montgomery, ISQC 6th ed., Example 6.5 (20 mortgage-loan costs) as the baseline."""
    engine = RuleOneEngine(baseline_size=20)
    row = engine.add_characteristic()
    _feed(engine, row, MORTGAGE_COSTS)
    limits = engine.limits(row)
    _assert_limits_equal_batch_reference(limits, [float(x) for x in MORTGAGE_COSTS])
    assert limits is not None
    assert limits.center == 300.5
    assert limits.mr_center == pytest.approx(148 / 19, rel=1e-15)


def test_no_signals_are_raised_while_the_baseline_is_collected() -> None:
    engine = RuleOneEngine(baseline_size=5)
    row = engine.add_characteristic()
    assert _feed(engine, row, [0.0, 100.0, -100.0, 1e6]) == []
    assert engine.limits(row) is None


# ---------------------------------------------------------------- rule 1 on the engine


def _restored(center: float = 10.0, sigma: float = 0.5, mr_ucl: float = 100.0) -> LimitSet:
    return LimitSet(
        version=1,
        center=center,
        ucl=center + 3.0 * sigma,
        lcl=center - 3.0 * sigma,
        sigma=sigma,
        mr_center=mr_ucl / naive.D4,
        mr_ucl=mr_ucl,
        baseline_n=25,
    )


@pytest.mark.parametrize(
    ("value", "side"),
    [
        (11.5, None),
        (8.5, None),
        (math.nextafter(11.5, math.inf), "high"),
        (math.nextafter(8.5, -math.inf), "low"),
        (10.0, None),
    ],
    ids=["on-ucl", "on-lcl", "one-ulp-above-ucl", "one-ulp-below-lcl", "centre"],
)
def test_engine_flags_only_points_strictly_beyond_the_individuals_limits(
    value: float, side: str | None
) -> None:
    engine = RuleOneEngine()
    row = engine.add_characteristic()
    engine.restore_limits(row, _restored())
    signals = _feed(engine, row, [value])
    expected = [] if side is None else [(0, row, "1", "i", side, 1)]
    assert _where(signals) == expected
    for signal in signals:
        assert signal.value == value
        assert signal.limit == (11.5 if side == "high" else 8.5)


def test_moving_range_exactly_on_its_ucl_is_in_control() -> None:
    engine = RuleOneEngine()
    row = engine.add_characteristic()
    engine.restore_limits(row, _restored(sigma=100.0, mr_ucl=2.0))
    # moving ranges: 2.0 (on the UCL), then 2.25 (beyond)
    signals = _feed(engine, row, [10.0, 12.0, 9.75])
    assert _where(signals) == [(2, row, "1", "mr", "high", 1)]
    assert (signals[0].value, signals[0].limit) == (2.25, 2.0)


def test_signal_positions_index_each_batch_and_carry_the_limit_version() -> None:
    engine = RuleOneEngine()
    first, second = engine.add_characteristic(), engine.add_characteristic()
    engine.restore_limits(first, _restored())
    engine.restore_limits(second, dataclasses.replace(_restored(), version=4))
    engine.process([first, second], [10.0, 10.0])
    result = engine.process([second, first, second], [10.0, 12.0, 7.0])
    assert _where(result.signals) == [
        (1, first, "1", "i", "high", 1),
        (2, second, "1", "i", "low", 4),
    ]
    assert result.new_limits == {}


# ---------------------------------------------------------------- Hypothesis: engine vs batch


@dataclass
class Scenario:
    baseline_size: int
    window: int
    scale: float
    series: list[list[float]]
    specs: list[tuple[float | None, float | None]]
    order: list[int]  # characteristic of each point of the interleaved stream
    cuts: list[int]  # batch boundaries in the stream


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    baseline_size = draw(st.integers(2, 30))
    window = draw(st.integers(2, 50))
    loc = draw(st.sampled_from([0.0, 74.001, -250.0, 1e4]))
    scale = draw(st.sampled_from([0.01, 1.0, 3.0]))
    n_chars = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    series, specs = [], []
    for _ in range(n_chars):
        length = draw(st.integers(0, baseline_size + 12 * window))
        x = rng.normal(loc, scale, size=length)
        # a sustained shift (in sigmas) from a random point after the baseline on
        start = draw(st.integers(baseline_size, max(baseline_size, length)))
        x[start:] += draw(st.floats(-6.0, 6.0)) * scale
        # and a few isolated spikes, which light up the moving-range chart
        for _ in range(draw(st.integers(0, 3))):
            if length:
                x[draw(st.integers(0, length - 1))] += draw(st.floats(-8.0, 8.0)) * scale
        series.append([float(v) for v in x])
        lsl = draw(st.none() | st.floats(-6.0, -0.5))
        usl = draw(st.none() | st.floats(0.5, 6.0))
        specs.append(
            (None if lsl is None else loc + lsl * scale, None if usl is None else loc + usl * scale)
        )
    order = [c for c, x in enumerate(series) for _ in x]
    rng.shuffle(order)
    n_cuts = draw(st.integers(0, 4))
    cuts = sorted(int(c) for c in rng.integers(0, len(order) + 1, size=n_cuts))
    return Scenario(baseline_size, window, scale, series, specs, [int(c) for c in order], cuts)


def _stream(scenario: Scenario) -> tuple[list[float], list[int]]:
    """Interleave the series in ``scenario.order``; return the values and per-char indices."""
    taken = [0] * len(scenario.series)
    values, local = [], []
    for c in scenario.order:
        values.append(scenario.series[c][taken[c]])
        local.append(taken[c])
        taken[c] += 1
    return values, local


@settings(max_examples=60, deadline=None, database=None)
@given(scenarios())
def test_engine_equals_the_batch_references_on_random_interleaved_series(
    scenario: Scenario,
) -> None:
    engine = RuleOneEngine(baseline_size=scenario.baseline_size, window=scenario.window, capacity=2)
    rows = [engine.add_characteristic(lsl, usl) for lsl, usl in scenario.specs]
    values, local = _stream(scenario)
    seen = [0] * len(rows)
    signals: list[tuple[int, int, str, str, float, float]] = []
    new_limits: dict[int, LimitSet] = {}
    bounds = [0, *scenario.cuts, len(values)]
    for lo, hi in itertools.pairwise(bounds):
        result = engine.process([rows[c] for c in scenario.order[lo:hi]], values[lo:hi])
        for s in result.signals:
            pos = lo + s.position
            assert s.characteristic == rows[scenario.order[pos]]
            assert s.limit_version == 1
            signals.append((scenario.order[pos], local[pos], s.chart, s.side, s.value, s.limit))
        assert not set(new_limits) & set(result.new_limits), "limits were set twice"
        new_limits.update(result.new_limits)
        for c in scenario.order[lo:hi]:
            seen[c] += 1
        for c, row in enumerate(rows):
            past = scenario.series[c][: seen[c]]
            lsl, usl = scenario.specs[c]
            rolling = engine.rolling_capability(row)
            _assert_rolling_equals_batch_reference(
                rolling, past[-scenario.window :], lsl, usl, scenario.scale
            )

    b = scenario.baseline_size
    expected: list[tuple[int, int, str, str, float, float]] = []
    for c, row in enumerate(rows):
        x = scenario.series[c]
        if len(x) < b:
            assert engine.limits(row) is None
            assert engine.baseline_progress(row) == (len(x), b)
            assert row not in new_limits
            continue
        limits = engine.limits(row)
        assert new_limits[row] == limits
        _assert_limits_equal_batch_reference(limits, x[:b])
        assert limits is not None
        after = x[b:]
        batch = [v.index for v in check_rules(after, limits.center, limits.sigma, ("1",))]
        assert batch == naive.rule1(after, limits.ucl, limits.lcl)
        for i in batch:
            if after[i] > limits.ucl:
                expected.append((c, b + i, "i", "high", after[i], limits.ucl))
            else:
                expected.append((c, b + i, "i", "low", after[i], limits.lcl))
        for i in naive.mr_rule1(x[b - 1], after, limits.mr_ucl):
            moving_range = abs(x[b + i] - x[b + i - 1])
            expected.append((c, b + i, "mr", "high", moving_range, limits.mr_ucl))
    assert sorted(signals) == sorted(expected)


@pytest.mark.parametrize("window", [2, 7, 50])
def test_rolling_capability_survives_many_ring_wraps(window: int) -> None:
    engine = RuleOneEngine(baseline_size=10, window=window)
    row = engine.add_characteristic(lsl=73.97, usl=74.03)
    values = np.random.default_rng(window).normal(74.001, 0.01, size=10 * window + 3)
    for start in range(0, values.size, 9):
        _feed(engine, row, values[start : start + 9])
        seen = list(values[: start + 9])
        _assert_rolling_equals_batch_reference(
            engine.rolling_capability(row), seen[-window:], 73.97, 74.03, 0.01
        )


@pytest.mark.parametrize(("loc", "sd"), [(74.001, 0.01), (5000.0, 0.001)], ids=["mm", "um"])
def test_rolling_capability_stays_accurate_when_the_first_value_is_far_from_the_rest(
    loc: float, sd: float
) -> None:
    # A gauge that reports 0.0 before its first real reading (a common OPC UA start-up
    # value), then loc +/- sd for good: once the 0.0 has left the window, the window is as
    # well conditioned as any other and must match the batch reference.
    engine = RuleOneEngine(baseline_size=10, window=50)
    lsl, usl = loc - 3.0 * sd, loc + 3.0 * sd
    row = engine.add_characteristic(lsl=lsl, usl=usl)
    values = np.random.default_rng(0).normal(loc, sd, size=500)
    values[0] = 0.0
    _feed(engine, row, values)
    _assert_rolling_equals_batch_reference(
        engine.rolling_capability(row), list(values[-50:]), lsl, usl, sd
    )


def test_rolling_capability_needs_two_points() -> None:
    engine = RuleOneEngine()
    row = engine.add_characteristic(usl=1.0)
    assert engine.rolling_capability(row) is None
    _feed(engine, row, [0.5])
    assert engine.rolling_capability(row) is None
    _feed(engine, row, [0.25])
    rolling = engine.rolling_capability(row)
    assert rolling is not None
    assert rolling.n == 2


def test_rolling_capability_of_a_constant_window_has_no_indices() -> None:
    engine = RuleOneEngine(window=3)
    row = engine.add_characteristic(lsl=0.0, usl=10.0)
    _feed(engine, row, [1.0, 9.0, 5.0, 5.0, 5.0])
    rolling = engine.rolling_capability(row)
    assert rolling is not None
    assert (rolling.mean, rolling.sigma_within, rolling.sigma_overall) == (5.0, 0.0, 0.0)
    assert (rolling.cp, rolling.cpk, rolling.pp, rolling.ppk) == (None, None, None, None)


# ---------------------------------------------------------------- restored limits


def test_restored_limits_give_the_same_signals_as_limits_built_by_the_engine() -> None:
    values = list(np.random.default_rng(3).normal(5.0, 1.0, size=200))
    values[120] += 6.0  # an individuals and two moving-range signals
    values[150:] = [v - 4.0 for v in values[150:]]
    builder = RuleOneEngine(baseline_size=25, window=30)
    built_row = builder.add_characteristic(lsl=1.0, usl=9.0)
    baseline_result = builder.process([built_row] * 25, values[:25])
    built = builder.process([built_row] * 175, values[25:])
    limits = baseline_result.new_limits[built_row]
    assert built.signals, "the scenario should produce signals"

    restorer = RuleOneEngine(baseline_size=25, window=30)
    row = restorer.add_characteristic(lsl=1.0, usl=9.0)
    restorer.restore_limits(row, limits)
    assert restorer.limits(row) == limits
    assert restorer.baseline_progress(row) == (25, 25)
    primed = restorer.process([row] * 25, values[:25], evaluate=False)
    assert primed.signals == []
    assert primed.new_limits == {}
    restored = restorer.process([row] * 175, values[25:])

    assert restored.signals == built.signals
    assert restorer.rolling_capability(row) == builder.rolling_capability(built_row)


def test_restored_limits_judge_the_first_point_on_the_individuals_chart() -> None:
    engine = RuleOneEngine()
    row = engine.add_characteristic()
    engine.restore_limits(row, dataclasses.replace(_restored(mr_ucl=0.1), version=2))
    # no point before it, so no moving range: only the individuals chart can signal
    assert _where(_feed(engine, row, [12.0])) == [(0, row, "1", "i", "high", 2)]


def test_restarting_the_statistics_puts_the_cusum_back_to_zero() -> None:
    # CUSUM k 0.5 h 4 around 10 with sigma 0.5: +2 sigma points add 1.5 sigma each, so
    # C+ passes 4 sigma at the third; after a restart one more +2 sigma point is only 1.5
    def engine_with_cusum() -> tuple[Engine, int]:
        engine = Engine(window=30)
        row = engine.add_characteristic(rules=RuleSet(enabled=frozenset({"1"})), ewma=None,
                                        cusum=CusumConfig(0.5, 4.0))  # fmt: skip
        engine.restore_limits(row, _restored())
        return engine, row

    cusum = {("cusum", "cusum")}
    kept, kept_row = engine_with_cusum()
    restarted, row = engine_with_cusum()
    for engine, r in ((kept, kept_row), (restarted, row)):
        signals = _feed(engine, r, [11.0, 11.0, 11.0])
        assert [(s.position, s.rule) for s in signals if (s.rule, s.chart) in cusum] == [
            (2, "cusum")
        ]
    restarted.restart_statistics(row)

    assert {(s.rule, s.chart) for s in _feed(kept, kept_row, [11.0])} >= cusum
    assert _feed(restarted, row, [11.0]) == []
    with pytest.raises(IndexError):
        restarted.restart_statistics(5)


# ---------------------------------------------------------------- priming, NaN, growth


def test_priming_without_evaluation_raises_no_signals_but_updates_capability() -> None:
    engine = RuleOneEngine(baseline_size=5, window=8)
    row = engine.add_characteristic(lsl=-3.0, usl=3.0)
    values = [0.1, -0.2, 0.3, 0.0, -0.1, 50.0, -50.0, 0.2, 0.4, -0.3, 80.0]
    result = engine.process([row] * len(values), values, evaluate=False)
    assert result.signals == []
    assert set(result.new_limits) == {row}
    _assert_rolling_equals_batch_reference(
        engine.rolling_capability(row), values[-8:], -3.0, 3.0, 1.0
    )
    # evaluation resumes against the moving range from the last primed point
    signals = _feed(engine, row, [0.0])
    assert _where(signals) == [(0, row, "1", "mr", "high", 1)]
    assert signals[0].value == 80.0


def test_nan_values_are_skipped_and_not_charted() -> None:
    engine = RuleOneEngine(baseline_size=4, window=10)
    row = engine.add_characteristic(lsl=0.0, usl=3.0)
    result = engine.process([row] * 5, [1.0, math.nan, 2.0, 1.0, 2.0])
    assert result.signals == []
    assert set(result.new_limits) == {row}
    assert engine.baseline_progress(row) == (4, 4)
    result = engine.process([row] * 4, [1.0, math.nan, math.nan, 1.5])
    assert result.signals == []
    _assert_limits_equal_batch_reference(engine.limits(row), [1.0, 2.0, 1.0, 2.0])
    _assert_rolling_equals_batch_reference(
        engine.rolling_capability(row), [1.0, 2.0, 1.0, 2.0, 1.0, 1.5], 0.0, 3.0, 1.0
    )


def test_nan_does_not_count_towards_the_baseline() -> None:
    engine = RuleOneEngine(baseline_size=3)
    row = engine.add_characteristic()
    result = engine.process([row] * 4, [1.0, math.nan, math.nan, 2.0])
    assert result.new_limits == {}
    assert engine.baseline_progress(row) == (2, 3)


def test_nan_after_the_baseline_raises_no_signal_and_the_next_range_spans_the_gap() -> None:
    engine = RuleOneEngine()
    row = engine.add_characteristic()
    engine.restore_limits(row, _restored(sigma=100.0, mr_ucl=2.0))
    signals = _feed(engine, row, [10.0, math.nan, 11.0, math.nan, 14.0])
    assert _where(signals) == [(4, row, "1", "mr", "high", 1)]
    assert signals[0].value == 3.0


def test_growing_beyond_the_initial_capacity_keeps_earlier_characteristics_intact() -> None:
    rng = np.random.default_rng(11)
    grown = RuleOneEngine(baseline_size=5, window=7, capacity=1)
    roomy = RuleOneEngine(baseline_size=5, window=7, capacity=64)
    for step in range(9):
        for engine in (grown, roomy):
            assert engine.add_characteristic(lsl=-4.0, usl=4.0) == step
        rows = rng.integers(0, step + 1, size=12)
        values = rng.normal(0.0, 1.0, size=12)
        values[rng.integers(0, 12)] += 9.0
        assert grown.process(rows, values) == roomy.process(rows, values)
    assert len(grown) == len(roomy) == 9
    for row in range(9):
        assert grown.limits(row) == roomy.limits(row)
        assert grown.baseline_progress(row) == roomy.baseline_progress(row)
        assert grown.rolling_capability(row) == roomy.rolling_capability(row)


def test_warm_up_leaves_the_engine_empty() -> None:
    engine = RuleOneEngine()
    engine.warm_up()
    assert len(engine) == 0


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"baseline_size": 1}, "baseline_size must be at least 2, got 1"),
        ({"window": 1}, "window must be at least 2, got 1"),
    ],
    ids=["baseline", "window"],
)
def test_engine_refuses_sizes_below_two(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RuleOneEngine(**kwargs)


@pytest.mark.parametrize(
    ("rows", "values"),
    [([0, 0], [1.0]), ([[0, 0]], [[1.0, 2.0]])],
    ids=["length-mismatch", "2-d"],
)
def test_process_refuses_rows_and_values_of_different_shapes(
    rows: list[Any], values: list[Any]
) -> None:
    engine = RuleOneEngine()
    engine.add_characteristic()
    with pytest.raises(ValueError, match="1-D arrays of the same length"):
        engine.process(rows, values)


@pytest.mark.parametrize("row", [-1, 1], ids=["negative", "unregistered"])
def test_process_refuses_unregistered_rows(row: int) -> None:
    engine = RuleOneEngine()
    engine.add_characteristic()
    with pytest.raises(IndexError, match="not a registered characteristic"):
        engine.process([0, row], [1.0, 2.0])


def test_empty_batch_is_a_no_op() -> None:
    engine = RuleOneEngine()
    result = engine.process([], [])
    assert result.signals == []
    assert result.new_limits == {}


@pytest.mark.parametrize(
    "call",
    [
        lambda e: e.limits(3),
        lambda e: e.rolling_capability(3),
        lambda e: e.baseline_progress(-1),
        lambda e: e.restore_limits(3, _restored()),
    ],
    ids=["limits", "rolling_capability", "baseline_progress", "restore_limits"],
)
def test_per_row_queries_refuse_unregistered_rows(call: object) -> None:
    engine = RuleOneEngine()
    engine.add_characteristic()
    with pytest.raises(IndexError, match="is not registered"):
        call(engine)  # type: ignore[operator]


def test_restoring_a_limit_set_with_version_zero_is_refused() -> None:
    # Version 0 means "baseline still being collected"; restoring it with a full baseline
    # count makes the kernel write past the end of the row's baseline buffer.
    engine = RuleOneEngine(baseline_size=3)
    engine.add_characteristic()
    with pytest.raises(ValueError, match="version"):
        engine.restore_limits(0, dataclasses.replace(_restored(), version=0))


def test_infinite_values_are_skipped_like_nan() -> None:
    engine = RuleOneEngine(baseline_size=3, window=5)
    row = engine.add_characteristic(lsl=0.0, usl=10.0)
    result = engine.process([row] * 6, [5.0, np.inf, 5.2, -np.inf, 4.9, 5.1])
    limits = engine.limits(row)
    assert limits is not None
    assert np.isfinite([limits.center, limits.ucl, limits.lcl]).all()
    assert limits.center == pytest.approx((5.0 + 5.2 + 4.9) / 3)
    assert result.signals == []


def test_a_stuck_sensor_does_not_re_centre_the_sums_on_every_point() -> None:
    # After the one re-centring that a constant run needs, the shift equals the data and
    # the check must stay quiet (it used to re-sum the whole window at every point).
    from spc import _kernels as k

    engine = RuleOneEngine(baseline_size=5, window=1000)
    row = engine.add_characteristic(lsl=73.9, usl=74.1)
    engine.process([row] * 1500, [74.001] * 1500)
    f, i = engine._fstate, engine._istate
    assert not k._poorly_shifted(f, i, row)
    rolling = engine.rolling_capability(row)
    assert rolling is not None
    assert rolling.sigma_overall == pytest.approx(0.0, abs=1e-12)


def test_the_batch_position_of_the_point_completing_a_baseline_is_reported() -> None:
    engine = RuleOneEngine()
    first = engine.add_characteristic()
    second = engine.add_characteristic()
    rng = np.random.default_rng(8)
    # interleaved and unsorted by row: positions must be the caller's, not the sorted ones
    rows = [second, first] * 30
    result = engine.process(rows, rng.normal(10.0, 1.0, size=60))
    assert set(result.new_limits) == {first, second}
    assert result.limit_positions == {second: 48, first: 49}  # each one's 25th point
