"""The scorer on hand-made charts: every expected delay and count is worked out in a comment.

Unless said otherwise a chart has 40 points, one a second from T0 (point i at T0 + i s),
points 0..9 in Phase I and 10..39 in Phase II, and faults start at point 20 (T0 + 20 s).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from simulators.score_report import render_markdown
from simulators.scorer import (
    ALL_SOURCES,
    AlarmSeen,
    ChartPoint,
    Observed,
    delay_stats,
    detector,
    parse_ground_truth,
    score,
)

T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
A, B = "line1.turning.diameter", "line1.turning.length"


def _at(i: float) -> datetime:
    return T0 + timedelta(seconds=i)


def _iso(i: float) -> str:
    return _at(i).isoformat().replace("+00:00", "Z")


def _chart(
    signals: Mapping[int, set[str]] | None = None,
    n: int = 40,
    phase_one: int = 10,
    page_size: int = 1000,
) -> Observed:
    marks = signals or {}
    phase = [None if i < phase_one else 1 for i in range(n)]
    return Observed(
        tuple(
            ChartPoint(_at(i), phase[i], frozenset(marks.get(i, ())), i // page_size)
            for i in range(n)
        )
    )


def _fault(
    char: str = A,
    start: int | None = 20,
    end: int | None = None,
    kind: str = "mean-shift",
    size: float = 1.0,
    name: str = "f",
) -> dict[str, Any]:
    return {
        "id": f"{kind}:{char}:{name}", "kind": kind, "characteristic": char,
        "start_part": start if start is not None else 100, "end_part": end,
        "started_at": None if start is None else _iso(start),
        "ended_at": None if end is None else _iso(end),
        "params": {"size_sigma": size}, "description": "",
    }  # fmt: skip


def _truth(faults: Sequence[dict[str, Any]], chars: Sequence[str] = (A, B)) -> dict[str, Any]:
    return {
        "format": "spcmon-ground-truth/1", "scenario": "mean-shift", "seed": 7,
        "plant": "demo", "takt_s": 1.0, "started_at": _iso(0), "parts_generated": 40,
        "characteristics": {c: {"nominal": 25.0, "sigma": 0.005} for c in chars},
        "faults": list(faults),
    }  # fmt: skip


def _alarm(rule: str, chart: str, opened: int, last: int | None = None, id_: int = 1) -> AlarmSeen:
    return AlarmSeen(
        id_, rule, chart, _at(opened), _at(opened if last is None else last), 1, "open"
    )


def test_delay_counts_points_inclusively_and_seconds_from_the_fault_start() -> None:
    truth = parse_ground_truth(_truth([_fault()]))
    # first faulty Phase II point 20, signal at 23: points 20, 21, 22, 23 -> 4; 23 s - 20 s
    report = score(truth, {A: _chart({23: {"location"}}), B: _chart()})
    (s,) = report.faults
    assert (s.chart.status, s.chart.delay_points, s.chart.delay_s) == ("detected", 4, 3.0)
    assert s.chart.by == ("location",)
    assert s.faulty_points == 20  # points 20..39
    assert not s.started_in_phase_one


def test_a_signal_on_the_first_faulty_point_is_a_delay_of_one() -> None:
    truth = parse_ground_truth(_truth([_fault()]))
    (s,) = score(truth, {A: _chart({20: {"ewma"}})}).faults
    assert (s.chart.delay_points, s.chart.delay_s) == (1, 0.0)


def test_only_the_chosen_sources_count() -> None:
    truth = parse_ground_truth(_truth([_fault()]))
    chart = _chart({21: {"location"}, 24: {"dispersion"}, 27: {"cusum", "ewma"}})
    # cusum only: point 27 -> 27 - 20 + 1 = 8 points, 7 s
    (s,) = score(truth, {A: chart}, {"cusum"}).faults
    assert (s.chart.delay_points, s.chart.delay_s, s.chart.by) == (8, 7.0, ("cusum",))
    # rules switched off: ewma and cusum at 27 -> also 8
    (s,) = score(truth, {A: chart}, {"rules": False}).faults
    assert (s.chart.delay_points, s.chart.by) == (8, ("cusum", "ewma"))
    # dispersion rules only: point 24 -> 5 points
    (s,) = score(truth, {A: chart}, ["dispersion"]).faults
    assert s.chart.delay_points == 5


def test_a_signal_after_the_fault_ended_is_a_miss() -> None:
    # fault over points 20..24 (ended at point 25, exclusive); the signal comes at 25
    truth = parse_ground_truth(_truth([_fault(end=25)]))
    (s,) = score(truth, {A: _chart({25: {"location"}})}).faults
    assert (s.chart.status, s.chart.delay_points, s.faulty_points) == ("missed", None, 5)


def test_a_fault_starting_in_phase_one_is_counted_from_the_first_phase_two_point() -> None:
    truth = parse_ground_truth(_truth([_fault(start=5)]))
    # Phase II starts at point 10; signal at 12: points 10, 11, 12 -> 3; seconds 12 - 5 = 7
    report = score(truth, {A: _chart({12: {"location"}})})
    (s,) = report.faults
    assert (s.chart.delay_points, s.chart.delay_s, s.started_in_phase_one) == (3, 7.0, True)
    assert any("started during Phase I" in note for note in report.notes)


def test_faults_never_reached_or_over_within_phase_one_are_unjudged() -> None:
    faults = [_fault(start=None, name="late"), _fault(start=2, end=8, name="early")]
    report = score(parse_ground_truth(_truth(faults)), {A: _chart({30: {"location"}})})
    assert [s.chart.status for s in report.faults] == ["unjudged", "unjudged"]
    (kind,) = report.kinds
    assert (kind.faults, kind.detected, kind.missed, kind.unjudged) == (2, 0, 0, 2)


def test_false_alarms_count_phase_two_points_before_the_fault_and_on_unfaulted_charts() -> None:
    truth = parse_ground_truth(_truth([_fault()]))
    # A: in control = Phase II points before 20 -> 10..19 = 10, one signal (15);
    #    the Phase I signal at 3 and the faulty-stretch signal at 22 do not count
    # B: unfaulted -> 10..39 = 30 points, signals at 12 and 30 -> 2
    # all: 40 points, 3 signals -> 3000 / 40 = 75 per 1,000, ARL 40 / 3
    observed = {
        A: _chart({3: {"location"}, 15: {"ewma"}, 22: {"location"}}),
        B: _chart({12: {"cusum"}, 30: {"dispersion", "location"}}),
    }
    report = score(truth, observed)
    a, b = report.by_characteristic[A], report.by_characteristic[B]
    assert (a.in_control_points, a.signal_points, a.per_1000, a.arl) == (10, 1, 100.0, 10.0)
    assert (b.in_control_points, b.signal_points, b.arl) == (30, 2, 15.0)
    total = report.false_alarms
    assert (total.in_control_points, total.signal_points, total.per_1000) == (40, 3, 75.0)
    assert total.arl == pytest.approx(40 / 3)  # each signal point is its own episode here


def test_a_signal_that_persists_is_one_episode_for_the_arl() -> None:
    truth = parse_ground_truth(_truth([]))
    # A: Phase II 10..39 = 30 points; signals 12,13,14 (one episode), 20, 30,31 -> 3 episodes
    observed = {A: _chart({12: {"cusum"}, 13: {"cusum"}, 14: {"cusum", "location"},
                           20: {"location"}, 30: {"ewma"}, 31: {"ewma"}})}  # fmt: skip
    a = score(truth, observed).by_characteristic[A]
    assert (a.in_control_points, a.signal_points, a.episodes) == (30, 6, 3)
    assert (a.per_1000, a.episodes_per_1000, a.arl) == (200.0, 100.0, 10.0)


def test_without_false_signals_the_in_control_arl_is_none() -> None:
    report = score(parse_ground_truth(_truth([], chars=[B])), {B: _chart()})
    assert (report.false_alarms.in_control_points, report.false_alarms.per_1000) == (30, 0.0)
    assert report.false_alarms.arl is None


def test_alarms_detect_from_their_opening_and_earlier_ones_are_false() -> None:
    truth = parse_ground_truth(_truth([_fault()]))
    alarms = (_alarm("6", "i", 15, last=16, id_=1), _alarm("1", "i", 24, id_=2))
    (s,) = (report := score(truth, {A: Observed(_chart().points, alarms)})).faults
    # opened at point 24: 24 - 20 + 1 = 5 points, 4 s
    assert (s.alarm.status, s.alarm.delay_points, s.alarm.delay_s) == ("detected", 5, 4.0)
    assert s.alarm.by == ("1@i",)
    # the rule 6 alarm at 15 is in the in-control stretch 10..19: 1 per 10 points
    assert report.by_characteristic[A].alarms == 1
    assert report.by_characteristic[A].alarms_per_1000 == 100.0


def test_an_earlier_alarm_still_open_during_the_fault_masks_it() -> None:
    truth = parse_ground_truth(_truth([_fault()]))
    alarms = (_alarm("1", "i", 15, last=30),)  # opened at 15, updated at 30 (in the fault)
    (s,) = score(truth, {A: Observed(_chart({30: {"location"}}).points, alarms)}).faults
    assert (s.chart.status, s.alarm.status) == ("detected", "masked")


def test_alarm_sources_follow_the_chosen_detector() -> None:
    truth = parse_ground_truth(_truth([_fault()]))
    alarms = (_alarm("1", "mr", 21, id_=1), _alarm("cusum", "cusum", 26, id_=2))
    (s,) = score(truth, {A: Observed(_chart().points, alarms)}, {"cusum"}).faults
    assert (s.alarm.delay_s, s.alarm.by) == (6.0, ("cusum@cusum",))


def test_delays_are_summarised_per_kind_and_size() -> None:
    chars = ["c1", "c2", "c3", "c4", "c5", "c6"]
    faults = [_fault(c, name=c) for c in chars[:5]] + [_fault("c6", size=2.0)]
    # delays 1, 4, 2, 10 points (signals at 20, 23, 21, 29); c5 never signals; c6: 2 sigma
    hits = {"c1": 20, "c2": 23, "c3": 21, "c4": 29, "c6": 20}
    observed = {c: _chart({i: {"location"}}) for c, i in hits.items()} | {"c5": _chart()}
    one, two = score(parse_ground_truth(_truth(faults, chars)), observed).kinds
    assert (one.params, one.faults, one.detected, one.missed) == ("size_sigma=1.0", 5, 4, 1)
    # sorted 1, 2, 4, 10: median (2 + 4) / 2 = 3; mean 17 / 4 = 4.25;
    # p90 at rank 0.9 x 3 = 2.7: 4 + 0.7 x (10 - 4) = 8.2
    assert (one.delay_points.median, one.delay_points.mean) == (3.0, 4.25)
    assert one.delay_points.p90 == pytest.approx(8.2)
    assert (one.delay_s.median, one.delay_s.mean) == (2.0, 3.25)  # seconds = points - 1
    assert (two.params, two.detected, two.delay_points.median) == ("size_sigma=2.0", 1, 1.0)


def test_delay_stats_of_nothing_are_none() -> None:
    assert delay_stats([]).median is None
    assert delay_stats([5]).p90 == 5.0


def test_a_detection_after_a_page_boundary_is_noted() -> None:
    truth = parse_ground_truth(_truth([_fault()]))
    # pages of 25 points: the fault starts on page 0 (point 20), the signal is on page 1
    report = score(truth, {A: _chart({27: {"location"}}, page_size=25)})
    assert report.faults[0].crosses_page
    assert any("restarted" in note for note in report.notes)


def test_detector_reads_names_or_switches() -> None:
    assert detector(None) == ALL_SOURCES
    assert detector(["rules"]) == {"location", "dispersion"}
    assert detector({"rules": True, "ewma": True, "cusum": False}) == ALL_SOURCES - {"cusum"}
    assert detector({"location": False}) == {"dispersion", "ewma", "cusum"}
    with pytest.raises(ValueError, match="unknown signal sources"):
        detector({"shewhart"})


def test_ground_truth_of_another_format_or_with_stray_faults_is_refused() -> None:
    with pytest.raises(ValueError, match="format"):
        parse_ground_truth(_truth([]) | {"format": "spcmon-ground-truth/2"})
    with pytest.raises(ValueError, match="not listed"):
        parse_ground_truth(_truth([_fault("line9.x")]))
    with pytest.raises(ValueError, match="malformed"):
        parse_ground_truth({k: v for k, v in _truth([]).items() if k != "seed"})
    with pytest.raises(ValueError, match="no part"):
        parse_ground_truth(_truth([]) | {"started_at": None})


def test_ground_truth_may_leave_plant_and_takt_out() -> None:
    truth = parse_ground_truth(_truth([]) | {"plant": None, "takt_s": None})
    assert (truth.plant, truth.takt_s) == (None, None)


def test_ground_truth_is_parsed_with_aware_times() -> None:
    truth = parse_ground_truth(_truth([_fault(end=30)]))
    (f,) = truth.faults
    assert (truth.started_at, f.started_at, f.ended_at) == (T0, _at(20), _at(30))
    assert (f.start_part, f.end_part, f.params_label) == (20, 30, "size_sigma=1.0")


def test_the_markdown_report_has_a_row_per_kind_characteristic_and_fault() -> None:
    truth = parse_ground_truth(_truth([_fault()]))
    text = render_markdown(score(truth, {A: _chart({23: {"location"}}), B: _chart()}))
    assert "| mean-shift | size_sigma=1.0 | 1 | 1 | 0 | 0 | 4 / 4 / 4 | 3 / 3 / 3 |" in text
    assert f"| {B} | 30 | 0 | 0 | 0 | – | 0 | 0 |" in text
    assert "| all | 40 | 0 | 0 | 0 | – | 0 | 0 |" in text
    assert f"| mean-shift:{A}:f | detected | 4 | 3 | location | missed |" in text
