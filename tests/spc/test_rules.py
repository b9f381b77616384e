"""Run rules on a control chart (``spc.rules``)."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spc import Violation, check_rules
from spc.rules import (
    AIAG,
    ALL_RULES,
    DEFAULT,
    DISPERSION_RULES,
    NELSON,
    RULE_IDS,
    WESTERN_ELECTRIC,
    RuleSet,
    rule_set,
    rules_for_chart,
)
from tests.spc import naive_rules

# centre 10, sigma 0.5: UCL 11.5 and LCL 8.5 are exact in binary floating point, and so
# is every z = (x - 10) / 0.5 for the x = 10 + 0.5 * z used in the tables below
CENTER, SIGMA = 10.0, 0.5
UCL, LCL = 11.5, 8.5
ABOVE_UCL = math.nextafter(UCL, math.inf)
BELOW_LCL = math.nextafter(LCL, -math.inf)


def points(*z: float) -> list[float]:
    """Chart points at the given distances from the centre, in sigmas."""
    return [CENTER + SIGMA * v for v in z]


def flagged(values: list[float], rules: RuleSet) -> list[int]:
    return [v.index for v in check_rules(values, CENTER, SIGMA, rules)]


def only(rule: str, **lengths: object) -> RuleSet:
    return RuleSet(enabled=frozenset({rule}), **lengths)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- rule 1


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([UCL], []),
        ([LCL], []),
        ([ABOVE_UCL], [0]),
        ([BELOW_LCL], [0]),
        ([CENTER], []),
        ([math.nextafter(UCL, -math.inf)], []),
        ([12.0, 10.0, 7.0], [0, 2]),
        ([10.0, 11.5, 11.6, 8.5, 8.4, 10.2], [2, 4]),
        ([math.inf, -math.inf], [0, 1]),
        ([], []),
    ],
    ids=[
        "on-ucl",
        "on-lcl",
        "one-ulp-above-ucl",
        "one-ulp-below-lcl",
        "on-centre",
        "one-ulp-inside-ucl",
        "both-sides",
        "mixed-series",
        "infinities",
        "empty",
    ],
)
def test_rule_1_flags_only_points_strictly_beyond_a_limit(
    values: list[float], expected: list[int]
) -> None:
    assert check_rules(values, CENTER, SIGMA, ("1",)) == [Violation(i, "1") for i in expected]


def test_point_exactly_on_ucl_is_in_control() -> None:
    """NIST/SEMATECH e-Handbook sec. 6.3.2: rule 1 is a point *beyond* the 3-sigma limits."""
    assert check_rules([UCL], CENTER, SIGMA) == []


def test_point_just_beyond_ucl_is_a_violation() -> None:
    assert check_rules([ABOVE_UCL], CENTER, SIGMA) == [Violation(0, "1")]


# ------------------------------------------------------------------------ rules 2 - 8

RULE_TABLE = [
    # rule 2: 9 points in a row on one side (Nelson)
    ("2", points(*[0.5] * 8), []),
    ("2", points(*[0.5] * 9), [8]),
    ("2", points(*[-0.5] * 11), [8, 9, 10]),
    ("2", points(*[0.5] * 5, 0.0, *[0.5] * 8), []),
    ("2", points(*[0.5] * 5, 0.0, *[0.5] * 9), [14]),
    ("2", points(*[0.5] * 5, *[-0.5] * 9), [13]),
    # rule 3: 6 points in a row steadily increasing or decreasing (5 steps)
    ("3", [1.0, 2.0, 3.0, 4.0, 5.0], []),
    ("3", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [5]),
    ("3", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], [5, 6]),
    ("3", [6.0, 5.0, 4.0, 3.0, 2.0, 1.0], [5]),
    ("3", [1.0, 2.0, 3.0, 3.0, 4.0, 5.0, 6.0], []),
    ("3", [1.0, 2.0, 3.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], [8]),
    ("3", [1.0, 2.0, 3.0, 4.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.0], [9]),
    # rule 4: 14 points in a row alternating up and down (13 steps)
    ("4", [0.0, 1.0] * 6 + [0.0], []),
    ("4", [0.0, 1.0] * 7, [13]),
    ("4", [0.0, 1.0] * 8, [13, 14, 15]),
    ("4", [0.0, 1.0] * 3 + [1.0] + [0.0, 1.0] * 6, []),
    ("4", [0.0, 1.0] * 3 + [1.0] + [0.0, 1.0] * 6 + [0.0], [19]),
    ("4", [0.0, 1.0] * 3 + [2.0] + [1.0, 2.0] * 4, []),
    # rule 5: 2 of 3 beyond 2 sigma, same side, the last point among them
    ("5", points(2.5, 0.0, 2.5), [2]),
    ("5", points(2.5, 2.5), [1]),
    ("5", points(2.5, 2.5, 2.5), [1, 2]),
    ("5", points(2.5, 2.5, 0.0), [1]),
    ("5", points(2.5, 0.0, 0.0, 2.5), []),
    ("5", points(2.5, -2.5, 2.5), [2]),
    ("5", points(2.5, -2.5, 0.0), []),
    ("5", points(2.5, -2.5), []),
    ("5", points(-2.5, 0.0, -2.5), [2]),
    ("5", points(2.0, 2.5, 2.0), []),
    # rule 6: 4 of 5 beyond 1 sigma, same side, the last point among them
    ("6", points(1.5, 1.5, 1.5), []),
    ("6", points(1.5, 1.5, 1.5, 1.5), [3]),
    ("6", points(1.5, 1.5, 0.0, 1.5, 1.5), [4]),
    ("6", points(1.5, 1.5, 0.0, 0.0, 1.5, 1.5), []),
    ("6", points(-1.5, -1.5, 0.0, -1.5, -1.5), [4]),
    ("6", points(1.0, 1.5, 1.5, 1.5, 1.0), []),
    ("6", points(1.5, -1.5, 1.5, -1.5, 1.5), []),
    # rule 7: 15 points in a row within 1 sigma, either side
    ("7", points(*[0.5, -0.5] * 7), []),
    ("7", points(*[0.5] * 15), [14]),
    ("7", points(*[0.5, -0.5] * 8), [14, 15]),
    ("7", points(*[0.5] * 7, 1.0, *[0.5] * 7), []),
    ("7", points(*[0.0] * 15), [14]),
    # rule 8: 8 points in a row beyond 1 sigma, either side, mixed sides allowed
    ("8", points(*[1.5, -1.5] * 3, 1.5), []),
    ("8", points(*[1.5, -1.5] * 4), [7]),
    ("8", points(*[2.5] * 9), [7, 8]),
    ("8", points(*[1.5] * 4, 1.0, *[1.5] * 4), []),
    ("8", points(*[1.5] * 4, -1.0, *[-1.5] * 8), [12]),
]


@pytest.mark.parametrize(
    ("rule", "values", "expected"), RULE_TABLE, ids=[f"rule-{r[0]}" for r in RULE_TABLE]
)
def test_each_rule_flags_the_point_completing_its_pattern_and_every_point_continuing_it(
    rule: str, values: list[float], expected: list[int]
) -> None:
    assert flagged(values, only(rule)) == expected


def test_a_point_on_the_centre_line_breaks_a_run_on_one_side() -> None:
    broken = points(*[0.5] * 8, 0.0, *[0.5] * 8)
    assert flagged(broken, only("2")) == []
    assert flagged(points(*[0.5] * 17), only("2")) == list(range(8, 17))


def test_a_tie_breaks_a_trend_and_an_alternation() -> None:
    assert flagged([1.0, 2.0, 3.0, 3.0, 4.0, 5.0], only("3", trend=3)) == [2, 5]
    assert flagged([0.0, 1.0, 0.0, 0.0, 1.0, 0.0], only("4", alternating=3)) == [2, 5]
    assert flagged([0.0, 1.0, 1.0, 0.0], only("4", alternating=2)) == [1, 3]


def test_one_point_can_break_several_rules_and_each_is_reported_once_in_order() -> None:
    values = points(1.5, 1.5, 2.5, 3.5)
    assert check_rules(values, CENTER, SIGMA) == [
        Violation(3, "1"),
        Violation(3, "5"),
        Violation(3, "6"),
    ]
    assert check_rules(values, CENTER, SIGMA, ("6", "1", "5", "1")) == check_rules(
        values, CENTER, SIGMA
    )


# ------------------------------------------------------------- configuration, presets


def test_nine_points_on_one_side_signal_under_nelson_and_eight_under_western_electric() -> None:
    eight, nine = points(*[0.5] * 8), points(*[0.5] * 9)
    assert flagged(eight, NELSON) == []
    assert flagged(nine, NELSON) == [8]
    assert flagged(eight, WESTERN_ELECTRIC) == [7]
    assert flagged(eight, only("2", same_side=8)) == [7]


def test_run_lengths_and_zone_counts_are_configurable() -> None:
    assert flagged([1.0, 2.0, 3.0, 4.0], only("3", trend=4)) == [3]
    assert flagged([0.0, 1.0, 0.0, 1.0], only("4", alternating=4)) == [3]
    assert flagged(points(2.5, 0.0, 0.0, 2.5), only("5", zone_a=(2, 4))) == [3]
    assert flagged(points(1.5, 1.5, 1.5), only("6", zone_b=(3, 3))) == [2]
    assert flagged(points(*[0.5] * 3), only("7", within_c=3)) == [2]
    assert flagged(points(1.5, -1.5), only("8", outside_c=2)) == [1]


def test_nelson_preset_runs_all_eight_tests_with_nelson_1984_lengths() -> None:
    """Nelson, J. Quality Technology 16(4), 1984: 9 / 6 / 14 / 2 of 3 / 4 of 5 / 15 / 8."""
    assert NELSON.enabled == ALL_RULES == frozenset(RULE_IDS)
    lengths = dataclasses.asdict(NELSON)
    del lengths["enabled"]
    assert lengths == {
        "same_side": 9,
        "trend": 6,
        "alternating": 14,
        "zone_a": (2, 3),
        "zone_b": (4, 5),
        "within_c": 15,
        "outside_c": 8,
    }
    assert DEFAULT is NELSON
    assert RuleSet() == NELSON


def test_western_electric_preset_has_its_four_tests_with_eight_points_on_one_side() -> None:
    """Western Electric Statistical Quality Control Handbook (1956): tests 1, 5, 6 and 2."""
    assert WESTERN_ELECTRIC.enabled == {"1", "2", "5", "6"}
    assert WESTERN_ELECTRIC.same_side == 8
    assert (WESTERN_ELECTRIC.zone_a, WESTERN_ELECTRIC.zone_b) == ((2, 3), (4, 5))


def test_aiag_preset_has_a_limit_test_a_run_of_seven_and_a_trend_of_seven() -> None:
    """The reading of the AIAG SPC manual (2nd ed.) most widely cited; see spc.rules."""
    assert AIAG.enabled == {"1", "2", "3"}
    assert (AIAG.same_side, AIAG.trend) == (7, 7)


@pytest.mark.parametrize(
    ("name", "preset"),
    [
        ("nelson", NELSON),
        ("western_electric", WESTERN_ELECTRIC),
        ("aiag", AIAG),
        ("AIAG", AIAG),
        (" Nelson ", NELSON),
    ],
)
def test_presets_are_found_by_name_in_any_case(name: str, preset: RuleSet) -> None:
    assert rule_set(name) is preset
    values = points(*[0.5] * 8, 3.5, *range(5))
    assert check_rules(values, CENTER, SIGMA, name) == check_rules(values, CENTER, SIGMA, preset)


def test_unknown_preset_name_is_refused_with_the_known_names() -> None:
    with pytest.raises(ValueError, match="unknown rule preset 'weco'; presets: nelson, "):
        rule_set("weco")


def test_a_single_rule_id_as_a_string_is_refused_with_a_hint_to_pass_a_sequence() -> None:
    with pytest.raises(ValueError, match=r"unknown rule preset '1'.*sequence such as"):
        check_rules([10.0], CENTER, SIGMA, "1")


def test_rule_ids_given_as_a_sequence_use_nelson_run_lengths() -> None:
    nine = points(*[0.5] * 9)
    assert check_rules(nine, CENTER, SIGMA, ["2"]) == [Violation(8, "2")]
    assert check_rules(points(*[0.5] * 8), CENTER, SIGMA, ("2",)) == []


def test_asking_for_no_rules_finds_no_violations() -> None:
    assert check_rules([12.0, 7.0], CENTER, SIGMA, rules=()) == []


def test_rule_set_stores_any_collection_of_ids_as_a_frozenset_and_is_hashable() -> None:
    from_list = RuleSet(enabled=["2", "1", "2"])  # type: ignore[arg-type]
    assert from_list.enabled == frozenset({"1", "2"})
    assert RuleSet(zone_a=[2, 3]) == RuleSet()  # type: ignore[arg-type]
    assert len({NELSON, RuleSet(), AIAG}) == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        NELSON.same_side = 8  # type: ignore[misc]


# ------------------------------------------------------------------- charts


@pytest.mark.parametrize("chart", ["r", "s", "mr"])
def test_dispersion_charts_get_only_rule_1(chart: str) -> None:
    assert {"1"} == DISPERSION_RULES
    assert rules_for_chart(chart, NELSON) == dataclasses.replace(NELSON, enabled=frozenset("1"))
    assert rules_for_chart(chart, "western_electric").same_side == 8
    assert rules_for_chart(chart, ("2", "3")).enabled == frozenset()


@pytest.mark.parametrize("chart", ["i", "imr", "x", "xbar"])
def test_location_charts_get_every_requested_rule(chart: str) -> None:
    assert rules_for_chart(chart, AIAG) is AIAG
    assert rules_for_chart(chart) is DEFAULT
    assert rules_for_chart(chart, ("2", "7")).enabled == {"2", "7"}


def test_unknown_chart_is_refused_with_the_known_charts() -> None:
    with pytest.raises(ValueError, match="unknown chart 'p'; known charts: i, imr, mr, r, s"):
        rules_for_chart("p", NELSON)


# ------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("rule", "shown"),
    [("9", "'9'"), ("", "''"), ("rule1", "'rule1'"), (1, "1")],
    ids=["9", "empty", "rule1", "int-1"],
)
def test_unknown_rule_ids_are_refused_by_name(rule: object, shown: str) -> None:
    message = rf"unknown rule ids \[{shown}\]; use the strings 1, 2, 3, 4, 5, 6, 7, 8"
    with pytest.raises(ValueError, match=message):
        check_rules([10.0], CENTER, SIGMA, rules=("1", rule))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=message):
        RuleSet(enabled=frozenset({rule}))  # type: ignore[arg-type]


def test_a_string_of_rule_ids_is_refused_with_the_set_to_write_instead() -> None:
    with pytest.raises(TypeError, match=r"got the string '12'; write frozenset\(\{'1', '2'\}\)"):
        RuleSet(enabled="12")  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["same_side", "trend", "alternating", "within_c", "outside_c"])
@pytest.mark.parametrize("value", [1, 0, -3, 2.5, True, "9"])
def test_run_lengths_that_are_not_ints_of_at_least_2_are_refused(field: str, value: object) -> None:
    message = f"{field} must be an int of at least 2 points, got {value!r}"
    with pytest.raises(ValueError, match=message):
        RuleSet(**{field: value})  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["zone_a", "zone_b"])
@pytest.mark.parametrize(
    "value",
    [(4, 3), (1, 3), (0, 0), (2,), (2, 3, 4), (2.0, 3), 3, "23", (True, 3)],
    ids=["k>m", "k=1", "zeros", "one", "three", "float", "int", "str", "bool"],
)
def test_zone_counts_that_are_not_k_of_m_are_refused(field: str, value: object) -> None:
    message = rf"{field} must be a pair \(k, m\) of ints with 2 <= k <= m"
    with pytest.raises(ValueError, match=message):
        RuleSet(**{field: value})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "sigma", [0.0, -0.5, math.nan, math.inf], ids=["zero", "negative", "nan", "inf"]
)
def test_sigma_that_is_not_positive_and_finite_is_refused(sigma: float) -> None:
    with pytest.raises(ValueError, match="sigma must be a positive finite number"):
        check_rules([10.0], CENTER, sigma)


@pytest.mark.parametrize("center", [math.nan, math.inf, -math.inf])
def test_center_that_is_not_finite_is_refused(center: float) -> None:
    with pytest.raises(ValueError, match="center must be a finite number"):
        check_rules([10.0], center, SIGMA)


def test_nan_point_is_refused_with_its_index() -> None:
    with pytest.raises(ValueError, match=r"NaN at index \[1, 3\]; drop missing points"):
        check_rules([10.0, math.nan, 20.0, math.nan], CENTER, SIGMA)


def test_values_that_are_not_one_dimensional_are_refused() -> None:
    with pytest.raises(ValueError, match=r"1-D sequence of points, got shape \(2, 2\)"):
        check_rules([[10.0, 11.0], [12.0, 13.0]], CENTER, SIGMA)


def test_violations_are_frozen_and_ordered_by_index_then_rule() -> None:
    first, second, third = Violation(3, "1"), Violation(3, "5"), Violation(7, "1")
    assert sorted([third, second, first]) == [first, second, third]
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.index = 0  # type: ignore[misc]


# ------------------------------------------------------------- against the reference

LEVELS = (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0)


@st.composite
def charts(draw: st.DrawFn) -> tuple[list[float], float, float]:
    """A centre, a sigma and points that sit on the zone boundaries, tie, trend and zigzag."""
    center = draw(st.sampled_from([0.0, 10.0, -3.7]) | st.floats(-1e3, 1e3))
    sigma = draw(st.sampled_from([0.5, 1.0, 0.1]) | st.floats(1e-3, 1e3))
    on_boundary = st.sampled_from(LEVELS).map(lambda k: center + k * sigma)
    near = st.floats(-4.0, 4.0).map(lambda u: center + u * sigma)
    quiet = st.sampled_from([-1.0, -0.75, -0.5, 0.0, 0.0, 0.5, 0.75, 1.0]) | st.floats(-1.05, 1.05)
    point = on_boundary | near | st.sampled_from([math.inf, -math.inf])
    kind = draw(st.sampled_from(["points", "quiet", "walk", "zigzag"]))
    if kind == "points":
        return draw(st.lists(point, max_size=40)), center, sigma
    if kind == "quiet":
        return (
            [center + u * sigma for u in draw(st.lists(quiet, min_size=4, max_size=40))],
            center,
            sigma,
        )
    moves = [-1, 0, 1, 1, 2] if kind == "walk" else [0, 1, 1, 1, 2]
    level, values = draw(st.sampled_from(LEVELS)), []
    for n, move in enumerate(draw(st.lists(st.sampled_from(moves), max_size=40))):
        level += (-move if kind == "zigzag" and n % 2 else move) * 0.5
        values.append(center + level * sigma)
    return values, center, sigma


def k_of_m() -> st.SearchStrategy[tuple[int, int]]:
    return st.integers(2, 6).flatmap(lambda m: st.tuples(st.integers(2, m), st.just(m)))


rule_sets = st.builds(
    RuleSet,
    enabled=st.frozensets(st.sampled_from(RULE_IDS)) | st.just(ALL_RULES),
    same_side=st.integers(2, 10),
    trend=st.integers(2, 8),
    alternating=st.integers(2, 14),
    zone_a=k_of_m(),
    zone_b=k_of_m(),
    within_c=st.integers(2, 12),
    outside_c=st.integers(2, 9),
)


@settings(max_examples=200, deadline=None, database=None)
@given(chart=charts(), rules=rule_sets | st.sampled_from([NELSON, WESTERN_ELECTRIC, AIAG]))
def test_check_rules_equals_the_naive_reference(
    chart: tuple[list[float], float, float], rules: RuleSet
) -> None:
    values, center, sigma = chart
    expected = naive_rules.violations(values, center, sigma, **dataclasses.asdict(rules))
    got = check_rules(values, center, sigma, rules)
    assert [(v.index, v.rule) for v in got] == expected


finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None, database=None)
@given(
    values=st.lists(finite, max_size=50),
    center=finite,
    sigma=st.floats(1e-6, 1e5, allow_nan=False, allow_infinity=False),
)
def test_rule_1_equals_the_naive_reference_over_wide_ranges(
    values: list[float], center: float, sigma: float
) -> None:
    expected = naive_rules.violations(values, center, sigma, **dataclasses.asdict(only("1")))
    assert [(v.index, v.rule) for v in check_rules(values, center, sigma, ("1",))] == expected
