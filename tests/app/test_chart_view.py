"""The chart view and the capability report against hand-computed expectations (pure)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from scipy import stats

from app.capability_report import InsufficientData, bin_count, capability_report, histogram
from app.chart_view import ChartView, Mark, build_chart
from ingest import CharacteristicRecord, Measurement, Quality, StoredLimits
from spc import LimitSet, capability

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LOC1 = Mark("1", "location")
DISP1 = Mark("1", "dispersion")


def _record(
    chart: str = "imr",
    n: int = 1,
    rules: tuple[str, ...] = ("nelson",),
    ewma: tuple[float, float] | None = None,
    cusum: tuple[float, float] | None = None,
    lsl: float | None = 4.0,
    usl: float | None = 16.0,
) -> CharacteristicRecord:
    return CharacteristicRecord(
        id="c", name="c", unit="mm", line="l", process="p", lsl=lsl, usl=usl, target=10.0,
        chart=chart, subgroup_size=n, rules=rules, source_kind=None, source_address=None,
        ewma=ewma, cusum=cusum,
    )  # fmt: skip


def _series(values: list[float], quality: dict[int, Quality] | None = None) -> list[Measurement]:
    """One value a second from T0; ``quality`` overrides the quality of some positions."""
    quality = quality or {}
    return [
        Measurement(
            T0 + timedelta(seconds=i),
            "c",
            v,
            f"id{i}",
            "test",
            quality=quality.get(i, Quality.GOOD),
        )
        for i, v in enumerate(values)
    ]


def _limits(version: int, after_s: float, **fields: float) -> StoredLimits:
    """I-MR limits centre 10, sigma 1 (UCL 13, LCL 7), MR-bar 1.128, MR UCL 3.686."""
    base = {"center": 10.0, "ucl": 13.0, "lcl": 7.0, "sigma": 1.0, "mr_center": 1.128,
            "mr_ucl": 3.686, "dispersion_lcl": 0.0}  # fmt: skip
    limits = LimitSet(version=version, baseline_n=5, **{**base, **fields})
    return StoredLimits("c", limits, T0 + timedelta(seconds=after_s), f"v{version}", "alice")


def _marks(view: ChartView) -> dict[int, tuple[Mark, ...]]:
    return {i: p.violations for i, p in enumerate(view.points) if p.violations}


def test_points_before_the_first_limit_set_are_phase_one_without_marks() -> None:
    view = build_chart(_record(), _series([10, 10, 50, 10, 10, 10]), [_limits(1, 3.5)])
    assert [p.limit_version for p in view.points] == [None] * 4 + [1, 1]
    assert _marks(view) == {}  # 50 is far beyond 13, but in the baseline
    assert [(s.limit_version, s.first_index, s.last_index) for s in view.segments] == [
        (None, 0, 3),
        (1, 4, 5),
    ]


def test_a_point_beyond_the_ucl_and_its_jump_are_marked_on_both_charts() -> None:
    # limit set in force after 2 s: the point at 2 s completed the baseline, 3 s is judged
    view = build_chart(_record(), _series([10, 10, 10, 14, 10.5]), [_limits(1, 2.0)])
    assert [p.limit_version for p in view.points] == [None, None, None, 1, 1]
    # MR: 0, 0, 4 (> 3.686), 3.5 (in control)
    assert [p.dispersion for p in view.points] == [None, 0.0, 0.0, 4.0, 3.5]
    assert _marks(view) == {3: (LOC1, DISP1)}


def test_a_point_below_the_lcl_is_marked_and_one_on_the_limit_is_not() -> None:
    view = build_chart(_record(rules=("1",)), _series([10, 7.0, 6.9]), [_limits(1, -0.5)])
    assert _marks(view)[2] == (LOC1,)
    assert 1 not in _marks(view)


def test_nine_points_on_one_side_mark_rule_two_on_the_ninth() -> None:
    values = [10.0] + [10.5] * 9  # z = 0.5: no zone rule, no trend (ties)
    view = build_chart(_record(), _series(values), [_limits(1, -0.5)])
    assert _marks(view) == {9: (Mark("2", "location"),)}


def test_run_rules_restart_with_each_limit_version() -> None:
    values = [10.5] * 10
    one = build_chart(_record(), _series(values), [_limits(1, -0.5)])
    two = build_chart(_record(), _series(values), [_limits(1, -0.5), _limits(2, 4.5)])
    assert set(_marks(one)) == {8, 9}
    assert _marks(two) == {}  # runs of 5 under each version
    assert [v.valid_until for v in two.versions] == [T0 + timedelta(seconds=4.5), None]
    assert [(v.version, v.author, v.reason) for v in two.versions] == [
        (1, "alice", "v1"),
        (2, "alice", "v2"),
    ]


def test_only_rule_one_is_judged_on_the_dispersion_chart() -> None:
    # MR alternates 0.9 / 0.1 / ...: far below MR-bar for many points, which rule 2 would
    # flag on a location chart; dispersion charts take rule 1 only
    values = [10.0, 10.9, 11.0] * 6
    view = build_chart(_record(rules=("1", "2")), _series(values), [_limits(1, -0.5)])
    assert view.dispersion_rules == ("1",)
    assert all(m.chart == "location" for marks in _marks(view).values() for m in marks)


def test_limit_bands_hold_the_zone_boundaries() -> None:
    view = build_chart(_record(), _series([10]), [_limits(1, -0.5)])
    b = view.versions[0].limits
    assert (b.minus_2_sigma, b.minus_1_sigma, b.center, b.plus_1_sigma, b.plus_2_sigma) == (
        8.0, 9.0, 10.0, 11.0, 12.0,
    )  # fmt: skip
    assert (b.dispersion_center, b.dispersion_ucl, b.dispersion_lcl) == (1.128, 3.686, 0.0)


def test_measurements_that_are_not_good_are_not_charted() -> None:
    series = _series([10, 99, 11, -99, 12], {1: Quality.BAD, 3: Quality.UNCERTAIN})
    view = build_chart(_record(), series, [])
    assert [p.value for p in view.points] == [10, 11, 12]
    assert [p.dispersion for p in view.points] == [None, 1.0, 1.0]
    assert (view.charted, view.not_good) == (3, 2)


def test_xbar_r_plots_subgroup_means_and_ranges_and_leaves_an_incomplete_one_out() -> None:
    values = [1.0, 2.0, 6.0, 4.0, 4.0, 7.0, 9.0]  # subgroups of 3: (1, 2, 6), (4, 4, 7), [9]
    view = build_chart(_record("xbar_r", 3), _series(values), [])
    assert [p.value for p in view.points] == [3.0, 5.0]
    assert [p.dispersion for p in view.points] == [5.0, 3.0]
    assert [(p.first_time, p.last_time, p.time) for p in view.points] == [
        (T0, T0 + timedelta(seconds=2), T0 + timedelta(seconds=2)),
        (T0 + timedelta(seconds=3), T0 + timedelta(seconds=5), T0 + timedelta(seconds=5)),
    ]
    assert view.not_plotted == 1
    assert (view.location_chart, view.dispersion_chart) == ("xbar", "r")


def test_xbar_s_plots_the_sample_standard_deviation() -> None:
    view = build_chart(_record("xbar_s", 2), _series([1.0, 3.0, 5.0, 5.0]), [])
    assert [p.value for p in view.points] == [2.0, 5.0]
    assert view.points[0].dispersion == pytest.approx(math.sqrt(2.0))  # ((1-2)² + (3-2)²) / 1
    assert view.points[1].dispersion == 0.0


def test_a_subgroup_takes_the_limits_in_force_at_its_last_value() -> None:
    view = build_chart(_record("xbar_r", 2), _series([10, 10, 10, 10]), [_limits(1, 0.5)])
    assert [p.limit_version for p in view.points] == [1, 1]


def test_ewma_and_cusum_follow_the_textbook_recursions_from_each_version() -> None:
    # lam 0.5, L 3, centre 10, sigma 1: z = 11, 11.5; half-widths 3 sqrt(1/3 (1 - 0.5^(2i)))
    record = _record(ewma=(0.5, 3.0), cusum=(0.5, 4.0))
    view = build_chart(record, _series([10, 12, 12]), [_limits(1, 0.5)])
    assert view.ewma is not None
    assert view.cusum is not None
    assert [p.index for p in view.ewma] == [1, 2]
    assert [p.value for p in view.ewma] == pytest.approx([11.0, 11.5])
    assert [p.ucl for p in view.ewma] == pytest.approx(
        [10 + 3 * math.sqrt(0.75 / 3), 10 + 3 * math.sqrt(0.9375 / 3)]
    )
    # C+ = max(0, x - 10.5 + C+): 1.5, 3.0; H = 4 sigma
    assert [(p.upper, p.lower, p.limit, p.signal) for p in view.cusum] == [
        (1.5, 0.0, 4.0, False),
        (3.0, 0.0, 4.0, False),
    ]
    assert [p.signal for p in view.ewma] == [False, False]


def test_ewma_and_cusum_are_absent_when_not_configured() -> None:
    view = build_chart(_record(), _series([10, 11]), [_limits(1, -0.5)])
    assert view.ewma is None
    assert view.cusum is None


def test_no_measurements_give_an_empty_chart() -> None:
    view = build_chart(_record("xbar_r", 5), [], [_limits(1, -0.5)])
    assert view.points == ()
    assert view.segments == ()
    assert len(view.versions) == 1


# ------------------------------------------------------------------ capability report


def test_freedman_diaconis_gives_five_bins_for_0_to_99() -> None:
    # IQR = 74.25 - 24.75 = 49.5; h = 2 * 49.5 / 100^(1/3) = 21.33; 99 / 21.33 -> 5 bins
    assert bin_count(np.arange(100.0)) == (5, "freedman-diaconis")


def test_the_square_root_rule_takes_over_when_the_iqr_is_zero() -> None:
    assert bin_count(np.array([0.0] * 10 + [1.0])) == (4, "sqrt")


def test_histogram_counts_sum_to_n_and_expected_counts_to_the_normal_mass() -> None:
    x = np.random.default_rng(5).normal(10.0, 2.0, 500)
    hist = histogram(x, 10.0, 2.0)
    assert sum(hist.counts) == 500
    assert hist.edges[0] == x.min()
    assert hist.edges[-1] == x.max()
    mass = stats.norm.cdf(x.max(), 10.0, 2.0) - stats.norm.cdf(x.min(), 10.0, 2.0)
    assert sum(hist.expected) == pytest.approx(500 * mass, rel=1e-9)
    assert np.histogram(x, bins=np.array(hist.edges))[0].tolist() == list(hist.counts)


def test_the_report_equals_spc_capability_and_leaves_an_incomplete_subgroup_out() -> None:
    x = list(np.random.default_rng(6).normal(10.0, 1.0, 23))
    report = capability_report(_record("xbar_r", 5), x)
    assert report.values_unused == 3
    assert report.capability == capability(x[:20], 4.0, 16.0, 10.0, 5, "rbar")
    curve = report.normal
    width = (report.histogram.edges[-1] - report.histogram.edges[0]) / len(report.histogram.counts)
    assert curve.x[0] <= 4.0
    assert curve.x[-1] >= 16.0
    peak = int(np.argmax(curve.density))
    assert curve.count[peak] == pytest.approx(20 * width * curve.density[peak])


@pytest.mark.parametrize(
    ("record", "values", "reason"),
    [
        (_record(lsl=None, usl=None), [1.0, 2.0, 3.0], "no specification limit"),
        (_record(), [1.0], "at least 2 values"),
        (_record("xbar_r", 5), [1.0] * 9, "at least 2 whole subgroups of 5"),
        (_record(), [5.0] * 10, "no variation"),
    ],
)
def test_too_little_data_is_refused_with_the_reason(
    record: CharacteristicRecord, values: list[float], reason: str
) -> None:
    with pytest.raises(InsufficientData, match=reason):
        capability_report(record, values)
