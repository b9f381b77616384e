"""Data health: quiet sources, frozen sensors and bad quality, raised once and cleared."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.early_warnings import (
    EarlyWarning,
    EarlyWarningEvaluator,
    RunState,
    check_quiet,
    usual_interval,
)

T0 = datetime(2025, 3, 14, 8, 0, tzinfo=UTC)
CHAR = "line1.turning.diameter"


def _times(n: int, every_s: float, start: float = 0.0) -> list[datetime]:
    return [T0 + timedelta(seconds=start + every_s * i) for i in range(n)]


def _kinds(warnings: list[EarlyWarning]) -> list[tuple[str, bool]]:
    return [(w.kind, w.cleared) for w in warnings]


def test_usual_interval_is_the_median_gap() -> None:
    assert usual_interval([0.0, 4.0, 8.0, 30.0, 34.0]) == 4.0  # one long pause ignored
    assert usual_interval([5.0]) is None


def test_quiet_threshold_is_n_times_the_interval_but_never_below_the_minimum() -> None:
    assert check_quiet(100.0, 120.0, interval=4.0, factor=5.0, min_seconds=10.0).threshold == 20
    assert not check_quiet(100.0, 120.0, interval=4.0).quiet  # 20 s is not more than 20 s
    assert check_quiet(100.0, 120.5, interval=4.0).quiet
    assert check_quiet(100.0, 109.0, interval=0.1).threshold == 10.0  # not 0.5 s


def test_source_is_quiet_after_five_intervals_once_and_clears_on_new_data() -> None:
    ev = EarlyWarningEvaluator()
    ev.observe(CHAR, _times(10, 4.0), [float(i % 3) for i in range(10)])  # last at 36 s
    assert ev.check_quiet(T0 + timedelta(seconds=56)) == []  # 20 s: not more than 5 × 4 s
    [quiet] = ev.check_quiet(T0 + timedelta(seconds=57))
    assert (quiet.kind, quiet.severity, quiet.cleared) == ("quiet_source", "warning", False)
    assert quiet.at == T0 + timedelta(seconds=57)
    assert quiet.details["silent_for_s"] == pytest.approx(21.0)
    assert (
        quiet.message
        == "No data for 21 s, more than 5 × the usual interval of 4 s (threshold 20 s)"
    )
    assert ev.check_quiet(T0 + timedelta(seconds=300)) == []  # raised once
    back = ev.observe(CHAR, _times(1, 1.0, start=301), [1.5])
    assert _kinds(back) == [("quiet_source", True)]
    assert back[0].details["raised_at"] == quiet.at.isoformat()


def test_a_source_with_a_single_point_is_never_called_quiet() -> None:
    ev = EarlyWarningEvaluator()
    ev.observe(CHAR, _times(1, 1.0), [1.0])
    assert ev.check_quiet(T0 + timedelta(hours=1)) == []


def test_sparkplug_death_raises_quiet_at_once_and_data_clear_it() -> None:
    ev = EarlyWarningEvaluator()
    [offline] = ev.source_offline(CHAR, T0, "Sparkplug NDEATH from edge node line1")
    assert offline.kind == "quiet_source"
    assert offline.message == "Source offline: Sparkplug NDEATH from edge node line1"
    assert ev.source_offline(CHAR, T0, "again") == []
    assert _kinds(ev.observe(CHAR, _times(1, 1.0), [1.0])) == [("quiet_source", True)]


def test_run_state_counts_repeats_and_changes_across_batches() -> None:
    state = RunState().extend([1.0, 2.0, 2.0]).extend([2.0, 2.0])
    assert (state.last, state.run, state.moving) == (2.0, 4, 0)
    state = state.extend([3.0, 4.0])
    assert (state.run, state.moving) == (1, 2)
    assert RunState().extend([5.0] * 10).frozen(10)


def test_sensor_frozen_after_k_repeats_clears_after_three_changing_values() -> None:
    ev = EarlyWarningEvaluator()
    t = iter(_times(100, 1.0))
    ev.observe(CHAR, [next(t) for _ in range(3)], [1.0, 2.0, 3.0])
    assert ev.observe(CHAR, [next(t) for _ in range(8)], [3.0] * 8) == []  # 9 in a row
    [frozen] = ev.observe(CHAR, [next(t)], [3.0])  # the 10th
    assert (frozen.kind, frozen.details["repeats"]) == ("frozen_sensor", 10)
    assert frozen.message == "The same value 3 came 10 times in a row: is the sensor frozen?"
    assert ev.observe(CHAR, [next(t) for _ in range(5)], [3.0] * 5) == []  # raised once
    assert ev.observe(CHAR, [next(t) for _ in range(2)], [3.1, 3.2]) == []  # hysteresis
    assert ev.observe(CHAR, [next(t)], [3.2]) == []  # a repeat restarts the count
    assert ev.observe(CHAR, [next(t) for _ in range(2)], [3.3, 3.4]) == []
    assert _kinds(ev.observe(CHAR, [next(t)], [3.5])) == [("frozen_sensor", True)]


def test_bad_quality_raises_once_and_clears_after_ten_good_values() -> None:
    ev = EarlyWarningEvaluator()
    t = iter(_times(100, 1.0))
    [bad] = ev.observe(CHAR, [next(t) for _ in range(3)], [1.0, 2.0, 1.5], quality_bad=2)
    assert (bad.kind, bad.severity, bad.details) == (
        "bad_quality",
        "warning",
        {"bad": 2, "good": 3},
    )
    assert bad.message.startswith("2 of 5 values in the last batch arrived with bad quality")
    assert ev.observe(CHAR, [next(t)], [1.2], quality_bad=1) == []  # still raised
    assert ev.observe(CHAR, [next(t) for _ in range(9)], [1.0, 2.0] * 4 + [1.1]) == []
    assert _kinds(ev.observe(CHAR, [next(t)], [1.3])) == [("bad_quality", True)]


def test_a_batch_of_only_bad_values_still_raises() -> None:
    [bad] = EarlyWarningEvaluator().observe(CHAR, [], [], quality_bad=4)
    assert bad.kind == "bad_quality"
    assert bad.details == {"bad": 4, "good": 0}
