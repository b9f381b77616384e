"""The incremental attribute charts (``spc.attribute_engine``), held to published worked
examples and to the batch references ``control_limits`` and ``check_rules``."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from spc import RuleSet, check_rules, control_limits
from spc.attribute_engine import AttributeChart, AttributeLimits, AttributeSignal
from tests.spc.test_charts import CIRCUIT_BOARDS, COMPUTERS, DYED_CLOTH, DYED_CLOTH_UNITS

# Montgomery, *Introduction to SQC*, Example 7.1 (Table 7.1): nonconforming frozen orange
# juice cans in 30 samples of n = 50 (qcc ``orangejuice``, trial rows). Published:
# p-bar = 0.2313, UCL = 0.4102, LCL = 0.0524; samples 15 (a new batch of cardboard stock)
# and 23 (an inexperienced operator) are above the UCL. The NIST/SEMATECH e-Handbook,
# sec. 6.3.3.2, charts 30 wafers of 50 chips with the same p-bar, .2313.
ORANGE_JUICE = [
    12, 15, 8, 10, 4, 7, 16, 9, 14, 10, 5, 6, 17, 12, 22,
    8, 10, 5, 13, 11, 20, 18, 24, 15, 9, 12, 7, 13, 9, 6,
]  # fmt: skip


def _units(defectives: list[int], n: int) -> list[int]:
    """Each sample as n inspected units, its defectives first (the order within a
    subgroup does not change the subgroup)."""
    return [u for d in defectives for u in [1] * d + [0] * (n - d)]


def _signals(points: list) -> list[tuple[int, str]]:  # type: ignore[type-arg]
    return sorted((p.index, s.rule) for p in points for s in p.signals)


def test_montgomery_example_7_1_through_the_incremental_engine() -> None:
    chart = AttributeChart("p", subgroup_size=50, baseline_subgroups=30)

    batch = chart.add_units(_units(ORANGE_JUICE, 50))

    limits = batch.new_limits
    assert limits is not None
    assert chart.limits == limits
    assert (limits.version, limits.baseline_n, limits.size) == (1, 30, 50.0)
    assert round(limits.center, 4) == 0.2313
    assert round(limits.ucl, 4) == 0.4102
    assert round(limits.lcl, 4) == 0.0524
    assert limits.center == 347 / 1500
    assert [p.value for p in batch.points] == [d / 50 for d in ORANGE_JUICE]
    assert [p.position for p in batch.points] == [50 * i + 49 for i in range(30)]
    # baseline points are not judged; the limits froze on the 30th
    assert all(p.limit_version is None and not p.signals for p in batch.points)
    assert batch.limits_at == 29
    assert chart.baseline_progress() == (30, 30)


def test_the_limits_equal_the_batch_reference_exactly() -> None:
    chart = AttributeChart("p", subgroup_size=50, baseline_subgroups=30)
    chart.add_units(_units(ORANGE_JUICE, 50))
    ref = control_limits(ORANGE_JUICE, chart="p", sample_sizes=50)

    assert chart.limits is not None
    assert (chart.limits.center, chart.limits.ucl, chart.limits.lcl, chart.limits.sigma) == (
        ref.center,
        ref.ucl,
        ref.lcl,
        ref.sigma,
    )


def test_the_book_samples_15_and_23_break_rule_1_against_the_trial_limits() -> None:
    chart = AttributeChart("p", subgroup_size=50, baseline_subgroups=30)
    chart.add_subgroups(ORANGE_JUICE)

    phase_two = chart.add_subgroups(ORANGE_JUICE).points

    assert [(p.index - 30, p.signals) for p in phase_two if p.signals] == [
        (14, (AttributeSignal("1", "high"),)),
        (22, (AttributeSignal("1", "high"),)),
    ]
    ref = control_limits(ORANGE_JUICE, chart="p", sample_sizes=50)
    expected = check_rules([d / 50 for d in ORANGE_JUICE], ref.center, float(ref.sigma), ("1", "2"))
    assert [(p.index - 30, s.rule) for p in phase_two for s in p.signals] == [
        (v.index, v.rule) for v in expected
    ]
    assert {p.limit_version for p in phase_two} == {1}
    assert phase_two[0].ucl == ref.ucl
    assert phase_two[0].center == ref.center


def test_revised_limits_without_the_assignable_causes_are_the_next_version() -> None:
    """Montgomery drops samples 15 and 23 and recomputes: p-bar = 301/1400 = 0.2150,
    UCL 0.3893, LCL 0.0407 (recomputed here from the book's data)."""
    chart = AttributeChart("p", subgroup_size=50, baseline_subgroups=30)
    chart.add_subgroups(ORANGE_JUICE)

    revised = chart.compute_limits(ORANGE_JUICE, exclude=[14, 22])

    assert chart.limits is not None
    assert chart.limits.version == 1
    kept = [d for i, d in enumerate(ORANGE_JUICE) if i not in (14, 22)]
    ref = control_limits(kept, chart="p", sample_sizes=50)
    assert (revised.version, revised.baseline_n) == (2, 28)
    assert (revised.center, revised.ucl, revised.lcl) == (ref.center, ref.ucl, ref.lcl)
    assert (round(revised.center, 4), round(revised.ucl, 4), round(revised.lcl, 4)) == (
        0.215,
        0.3893,
        0.0407,
    )
    chart.restore_limits(revised)
    after = chart.add_subgroups([20, 21]).points
    assert [p.limit_version for p in after] == [2, 2]
    assert [s.rule for s in after[1].signals] == ["1"]  # 21/50 = 0.42 > 0.3893


def test_runs_of_rule_2_restart_with_new_limits() -> None:
    chart = AttributeChart("p", subgroup_size=50, baseline_subgroups=30)
    chart.add_subgroups(ORANGE_JUICE)
    assert chart.limits is not None
    above = chart.add_subgroups([15] * 8).points  # 0.30 > p-bar: 8 in a row
    assert not any(p.signals for p in above)

    chart.restore_limits(chart.compute_limits(ORANGE_JUICE))
    more = chart.add_subgroups([15] * 8).points

    assert not any(p.signals for p in more)  # 8 again, counted from the new version
    assert chart.add_subgroups([15]).points[0].signals == (AttributeSignal("2", "high"),)


def test_units_fed_in_any_chunks_make_the_same_subgroups() -> None:
    units = _units(ORANGE_JUICE, 50) * 2
    whole = AttributeChart("p", 50, 30).add_units(units).points
    chart = AttributeChart("p", 50, 30)
    pieces = []
    for start in range(0, len(units), 37):
        pieces += chart.add_units(units[start : start + 37]).points

    assert [(p.index, p.count, p.value, p.limit_version, p.signals) for p in pieces] == [
        (p.index, p.count, p.value, p.limit_version, p.signals) for p in whole
    ]
    assert chart.open_subgroup == (0, 0.0)
    chart.add_units([1, 0, 1])
    assert chart.open_subgroup == (3, 2.0)


def test_np_chart_matches_the_reference() -> None:
    chart = AttributeChart("np", subgroup_size=50, baseline_subgroups=30)
    chart.add_units(_units(ORANGE_JUICE, 50))
    ref = control_limits(ORANGE_JUICE, chart="np", sample_sizes=50)

    assert chart.limits is not None
    assert (chart.limits.center, chart.limits.ucl, chart.limits.lcl) == (
        ref.center,
        ref.ucl,
        ref.lcl,
    )
    point = chart.add_subgroups([22]).points[0]
    assert point.value == 22.0
    assert [s.rule for s in point.signals] == ["1"]


def test_montgomery_example_7_3_c_chart() -> None:
    """c-bar = 19.85, UCL = 33.22 (from the rounded c-bar; 33.21 unrounded), LCL = 6.48."""
    chart = AttributeChart("c", subgroup_size=1, baseline_subgroups=26)
    chart.add_subgroups(CIRCUIT_BOARDS)

    limits = chart.limits
    assert limits is not None
    assert round(limits.center, 2) == 19.85
    assert limits.ucl == pytest.approx(33.22, abs=0.01)
    assert round(limits.lcl, 2) == 6.48
    assert _signals(chart.add_subgroups(CIRCUIT_BOARDS).points) == [(26 + 5, "1"), (26 + 19, "1")]


def test_montgomery_example_7_4_u_chart_from_units() -> None:
    """u-bar = 1.93, UCL = 3.79, LCL = 0.07: nonconformities in samples of 5 computers,
    fed computer by computer (each sample's count spread over its 5 units)."""
    units = [c // 5 + (i < c % 5) for c in COMPUTERS for i in range(5)]
    chart = AttributeChart("u", subgroup_size=5, baseline_subgroups=20)
    batch = chart.add_units(units)

    assert [p.count for p in batch.points] == COMPUTERS
    limits = chart.limits
    assert limits is not None
    assert limits.center == pytest.approx(1.93, rel=1e-15)
    assert (round(limits.ucl, 2), round(limits.lcl, 2)) == (3.79, 0.07)


def test_u_chart_with_varying_units_judges_each_point_against_its_own_limits() -> None:
    """Montgomery sec. 7.3.1, dyed cloth: u-bar = 153/107.5; limits per inspection area."""
    chart = AttributeChart("u", subgroup_size=10, baseline_subgroups=10)
    chart.add_subgroups(DYED_CLOTH, DYED_CLOTH_UNITS)
    ref = control_limits(DYED_CLOTH, chart="u", sample_sizes=DYED_CLOTH_UNITS)
    assert chart.limits is not None
    assert chart.limits.center == ref.center
    assert round(chart.limits.center, 2) == 1.42

    points = chart.add_subgroups(DYED_CLOTH, DYED_CLOTH_UNITS).points

    assert [p.ucl for p in points] == list(ref.ucl)  # type: ignore[arg-type]
    assert [p.lcl for p in points] == list(ref.lcl)  # type: ignore[arg-type]
    assert chart.limits.at(10.0) == (chart.limits.lcl, chart.limits.ucl, chart.limits.sigma)
    assert chart.limits.ucl == ref.center + 3 * math.sqrt(ref.center / 10)


def test_a_baseline_without_nonconforming_units_signals_the_first_one() -> None:
    chart = AttributeChart("p", subgroup_size=10, baseline_subgroups=3)
    chart.add_units([0] * 30)
    assert chart.limits is not None
    assert (chart.limits.ucl, chart.limits.lcl) == (0.0, 0.0)

    point = chart.add_units([0] * 9 + [1]).points[0]

    assert point.signals == (AttributeSignal("1", "high"),)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"chart": "laney_p"}, ValueError, "not one of"),
        ({"subgroup_size": 0}, ValueError, "at least 1"),
        ({"subgroup_size": 2.5}, TypeError, "int"),
        ({"baseline_subgroups": 1}, ValueError, "at least 2"),
        ({"rules": RuleSet(enabled=frozenset({"1", "5"}))}, ValueError, "tests 5 assume"),
    ],
)
def test_bad_settings_are_refused_with_what_to_do(
    kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        AttributeChart(**kwargs)  # type: ignore[arg-type]


def test_bad_inputs_are_refused() -> None:
    chart = AttributeChart("p", subgroup_size=5, baseline_subgroups=2)
    with pytest.raises(ValueError, match="0 \\(conforming\\) or 1"):
        chart.add_units([0, 2])
    with pytest.raises(ValueError, match="non-negative"):
        chart.add_units([-1])
    with pytest.raises(ValueError, match="more nonconforming units than units"):
        chart.add_subgroups([6])
    chart.add_units([1])
    with pytest.raises(ValueError, match="complete it first"):
        chart.add_subgroups([1])
    with pytest.raises(ValueError, match="takes subgroups of 5"):
        AttributeChart("np", 5, 2).add_subgroups([1], sizes=[6])
    with pytest.raises(ValueError, match="do not fit"):
        chart.restore_limits(AttributeLimits(1, "p", 0.1, 0.5, 0.0, 0.13, 50.0, 25))


# --- held to the references on generated data ----------------------------------------


@st.composite
def _charts(draw: st.DrawFn) -> tuple[str, int, list[int], list[int], int]:
    chart = draw(st.sampled_from(["p", "np", "c", "u"]))
    n = draw(st.integers(1, 60))
    top = n if chart in ("p", "np") else 3 * n
    counts = st.integers(0, top)
    baseline = draw(st.lists(counts, min_size=2, max_size=30))
    later = draw(st.lists(counts, min_size=0, max_size=60))
    same_side = draw(st.integers(2, 12))
    return chart, n, baseline, later, same_side


@settings(max_examples=300, deadline=None, database=None)
@given(_charts())
def test_limits_and_signals_equal_control_limits_and_check_rules(
    case: tuple[str, int, list[int], list[int], int],
) -> None:
    name, n, baseline, later, same_side = case
    rules = RuleSet(enabled=frozenset({"1", "2"}), same_side=same_side)
    chart = AttributeChart(name, subgroup_size=n, baseline_subgroups=len(baseline), rules=rules)
    ref = (
        control_limits(baseline, chart="c")
        if name == "c"
        else control_limits(baseline, chart=name, sample_sizes=n)
    )
    assume(float(ref.sigma) > 0.0)  # check_rules needs sigma > 0

    units = [
        u
        for c in baseline + later
        for u in ([1] * c + [0] * (n - c) if name in ("p", "np") else [c] + [0] * (n - 1))
    ]
    points = chart.add_units(units).points[len(baseline) :]

    limits = chart.limits
    assert limits is not None
    assert (limits.center, limits.ucl, limits.lcl, limits.sigma) == (
        ref.center,
        ref.ucl,
        ref.lcl,
        ref.sigma,
    )
    values = [c / n if name in ("p", "u") else float(c) for c in later]
    assert [p.value for p in points] == values
    expected = check_rules(values, ref.center, float(ref.sigma), rules)
    assert [(p.index - len(baseline), s.rule) for p in points for s in p.signals] == [
        (v.index, v.rule) for v in expected
    ]


@settings(max_examples=100, deadline=None, database=None)
@given(
    st.lists(st.tuples(st.integers(0, 40), st.integers(1, 40)), min_size=2, max_size=25),
    st.lists(st.tuples(st.integers(0, 40), st.integers(1, 40)), max_size=25),
)
def test_p_chart_with_varying_sizes_uses_the_per_point_reference_limits(
    baseline: list[tuple[int, int]], later: list[tuple[int, int]]
) -> None:
    baseline = [(min(d, n), n) for d, n in baseline]
    later = [(min(d, n), n) for d, n in later]
    chart = AttributeChart("p", subgroup_size=20, baseline_subgroups=len(baseline))
    chart.add_subgroups([d for d, _ in baseline], [n for _, n in baseline])
    points = chart.add_subgroups([d for d, _ in later], [n for _, n in later]).points
    if not later:
        return
    center = control_limits([d for d, _ in baseline], "p", sample_sizes=[n for _, n in baseline])
    assert chart.limits is not None
    assert chart.limits.center == center.center
    # the per-point formula of spc.charts (p-bar +/- 3 sqrt(p-bar (1 - p-bar) / n_i))
    sigma = np.sqrt(center.center * (1.0 - center.center) / np.array([n for _, n in later]))
    ucl = np.minimum(center.center + 3.0 * sigma, 1.0)
    lcl = np.maximum(center.center - 3.0 * sigma, 0.0)
    assert [p.ucl for p in points] == ucl.tolist()
    assert [p.lcl for p in points] == lcl.tolist()
    beyond = [i for i, (d, n) in enumerate(later) if d / n > ucl[i] or d / n < lcl[i]]
    assert [p.index - len(baseline) for p in points if "1" in {s.rule for s in p.signals}] == beyond
