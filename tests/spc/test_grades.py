"""The five quality grades (``spc.grades``) against docs/quality-grades.md.

Every expected number is written out by hand from the document's table:

    grade  Cpk     RTY    internal loss  external loss  DPMO (sigma)
    2      >=1.00  >=90%  tracked        tracked        <=66,807 (3)
    3      >=1.33  >=95%  <3.0%          <2.3%          <=6,210 (4)
    4      >=1.67  >=97%  <1.5%          <1.0%          <=233 (5)
    5      >=2.00  >=98%  <0.75%         <0.5%          <=3.4 (6)
"""

from __future__ import annotations

import math

import pytest

from spc.grades import (
    GRADES,
    Metric,
    MetricGrade,
    MetricValue,
    grade,
    grade_defect_rate,
    grade_entity,
    grade_metric,
    loss_rate,
    lowest_cpk,
    rolled_yield,
)


def _graded(metric: Metric, value: float, basis: int = 500) -> MetricGrade:
    return grade_metric(MetricValue(metric, value, basis))


def _at(metric: Metric, level: int | None) -> MetricGrade:
    """A metric already graded at ``level`` (None: insufficient data)."""
    return MetricGrade(metric, None, 0, level, None, "")


# --- single metrics at every threshold edge -----------------------------------------


@pytest.mark.parametrize(
    ("cpk", "level", "target"),
    [
        (0.5, 1, 1.00),
        (0.999, 1, 1.00),
        (1.00, 2, 1.33),
        (1.329, 2, 1.33),
        (1.33, 3, 1.67),
        (1.669, 3, 1.67),
        (1.67, 4, 2.00),
        (1.999, 4, 2.00),
        (2.00, 5, None),
        (3.5, 5, None),
    ],
)
def test_cpk_grade_and_next_target_at_each_threshold(
    cpk: float, level: int, target: float | None
) -> None:
    result = _graded(Metric.CPK, cpk, basis=30)
    assert (result.grade, result.next_target) == (level, target)
    assert (result.value, result.basis) == (cpk, 30)


@pytest.mark.parametrize(
    ("rty", "level", "target"),
    [
        (0.8999, 1, 0.90),
        (0.90, 2, 0.95),
        (0.9499, 2, 0.95),  # RTY 94.99 %
        (0.95, 3, 0.97),
        (0.9699, 3, 0.97),
        (0.97, 4, 0.98),
        (0.9799, 4, 0.98),
        (0.98, 5, None),
        (1.0, 5, None),
    ],
)
def test_rolled_yield_grade_and_next_target_at_each_threshold(
    rty: float, level: int, target: float | None
) -> None:
    result = _graded(Metric.ROLLED_FIRST_PASS_YIELD, rty)
    assert (result.grade, result.next_target) == (level, target)


@pytest.mark.parametrize(
    ("rate", "level", "target"),
    [
        (0.10, 2, 0.03),
        (0.03, 2, 0.03),  # exactly 3.0 %: not below 3.0 %
        (0.02999, 3, 0.015),
        (0.015, 3, 0.015),
        (0.01499, 4, 0.0075),
        (0.0075, 4, 0.0075),
        (0.00749, 5, None),
        (0.0, 5, None),
    ],
)
def test_internal_loss_rate_grade_and_next_target_at_each_threshold(
    rate: float, level: int, target: float | None
) -> None:
    result = _graded(Metric.INTERNAL_LOSS_RATE, rate, basis=12)
    assert (result.grade, result.next_target) == (level, target)


@pytest.mark.parametrize(
    ("rate", "level", "target"),
    [
        (0.023, 2, 0.023),  # exactly 2.3 %
        (0.02299, 3, 0.01),
        (0.01, 3, 0.01),
        (0.00999, 4, 0.005),
        (0.005, 4, 0.005),
        (0.00499, 5, None),
        (0.0, 5, None),
    ],
)
def test_external_loss_rate_grade_and_next_target_at_each_threshold(
    rate: float, level: int, target: float | None
) -> None:
    result = _graded(Metric.EXTERNAL_LOSS_RATE, rate, basis=3)
    assert (result.grade, result.next_target) == (level, target)


@pytest.mark.parametrize("metric", [Metric.INTERNAL_LOSS_RATE, Metric.EXTERNAL_LOSS_RATE])
def test_untracked_loss_rate_is_grade_one_not_tracked(metric: Metric) -> None:
    result = grade_metric(loss_rate(metric, 0.0, 0.0, 0))
    assert result == MetricGrade(metric, None, 0, 1, None, "not tracked")


@pytest.mark.parametrize(
    "metric", [Metric.CPK, Metric.ROLLED_FIRST_PASS_YIELD, Metric.INTERNAL_LOSS_RATE]
)
def test_insufficient_data_has_no_grade(metric: Metric) -> None:
    result = grade_metric(MetricValue(metric, None, 20))
    assert result == MetricGrade(metric, None, 20, None, None, "insufficient data")


def test_sigma_level_must_be_graded_on_its_defect_rate() -> None:
    with pytest.raises(ValueError, match="grade_defect_rate"):
        grade_metric(MetricValue(Metric.SIGMA_LEVEL, 4.5, 1000))


# --- notes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "value", "note"),
    [
        (Metric.CPK, 0.999, "at least 1 for Inspection"),
        (Metric.CPK, 1.00, "at least 1.33 for Assurance"),
        (Metric.ROLLED_FIRST_PASS_YIELD, 0.96, "at least 0.97 for Prevention"),
        (Metric.INTERNAL_LOSS_RATE, 0.03, "below 0.03 for Assurance"),
        (Metric.EXTERNAL_LOSS_RATE, 0.007, "below 0.005 for Excellence"),
        (Metric.CPK, 2.00, "at the highest grade"),
        (Metric.ROLLED_FIRST_PASS_YIELD, 1.0, "at the highest grade"),
        (Metric.INTERNAL_LOSS_RATE, 0.0, "at the highest grade"),
    ],
)
def test_note_names_the_next_grade_or_the_top(metric: Metric, value: float, note: str) -> None:
    assert _graded(metric, value).note == note


# --- sigma level, graded on DPMO -----------------------------------------------------


@pytest.mark.parametrize(
    ("defects", "units", "level", "sigma", "target"),
    [
        # DPMO = defects / units * 1e6, exactly the conventional bound for each level;
        # sigma = isf(DPMO / 1e6) + 1.5. The bounds are the rounded DPMO of whole levels,
        # so the level they give is only about whole: 5.99985, 4.99958, 3.99998, 3.0000016.
        (34, 10_000_000, 5, 6.0, None),  # 3.4 DPMO
        (233, 1_000_000, 4, 5.0, 6.0),  # 233 DPMO: 4.9996 sigma, still grade 4 (5 sigma)
        (6_210, 1_000_000, 3, 4.0, 5.0),
        (66_807, 1_000_000, 2, 3.0, 4.0),
    ],
)
def test_defect_rate_at_each_conventional_bound_reaches_its_grade(
    defects: int, units: int, level: int, sigma: float, target: float | None
) -> None:
    result = grade_defect_rate(defects, units)
    assert result.metric is Metric.SIGMA_LEVEL
    assert (result.grade, result.next_target, result.basis) == (level, target, units)
    assert result.value == pytest.approx(sigma, abs=1e-3)


@pytest.mark.parametrize(
    ("defects", "units", "level", "target"),
    [
        (35, 10_000_000, 4, 6.0),  # 3.5 DPMO
        (234, 1_000_000, 3, 5.0),
        (6_211, 1_000_000, 2, 4.0),
        (66_808, 1_000_000, 1, 3.0),
    ],
)
def test_one_more_defect_drops_a_grade(
    defects: int, units: int, level: int, target: float | None
) -> None:
    result = grade_defect_rate(defects, units)
    assert (result.grade, result.next_target) == (level, target)


def test_233_dpmo_is_graded_five_sigma_though_its_level_rounds_below_five() -> None:
    # the grade follows the DPMO bound, not the rounded level compared with 5.0
    result = grade_defect_rate(233, 1_000_000)
    assert result.value is not None
    assert 4.999 < result.value < 5.0
    assert result.grade == 4


def test_zero_defects_is_infinite_sigma_and_the_top_grade() -> None:
    result = grade_defect_rate(0, 100)
    assert (result.value, result.grade, result.next_target) == (math.inf, 5, None)


def test_fewer_than_100_units_is_insufficient() -> None:
    assert grade_defect_rate(0, 99) == MetricGrade(
        Metric.SIGMA_LEVEL, None, 99, None, None, "insufficient data"
    )


def test_defect_rate_note_gives_the_counts_dpmo_and_what_the_next_grade_needs() -> None:
    assert grade_defect_rate(233, 1_000_000).note == (
        "233 defective of 1000000 (233 DPMO); at most 3.4 DPMO (6σ) for Excellence"
    )
    assert grade_defect_rate(0, 1000).note.endswith("; at the highest grade")


# --- entities: the weakest link ------------------------------------------------------


def test_entity_grade_is_its_weakest_metric() -> None:
    metrics = [
        _graded(Metric.CPK, 1.70),  # 4
        _graded(Metric.ROLLED_FIRST_PASS_YIELD, 0.96),  # 3
        _graded(Metric.INTERNAL_LOSS_RATE, 0.005),  # 5
    ]
    result = grade_entity(metrics)
    assert (result.grade, result.ceiling, result.limiting) == (
        3,
        3,
        Metric.ROLLED_FIRST_PASS_YIELD,
    )
    assert result.metrics == tuple(metrics)
    assert result.insufficient == ()


@pytest.mark.parametrize(
    ("order", "limiting"),
    [
        ((Metric.CPK, Metric.EXTERNAL_LOSS_RATE), Metric.CPK),
        ((Metric.EXTERNAL_LOSS_RATE, Metric.CPK), Metric.EXTERNAL_LOSS_RATE),
    ],
)
def test_tied_weakest_metrics_limit_by_the_first_given(
    order: tuple[Metric, Metric], limiting: Metric
) -> None:
    result = grade_entity([_at(Metric.SIGMA_LEVEL, 4), *(_at(m, 2) for m in order)])
    assert (result.grade, result.limiting) == (2, limiting)


def test_an_insufficient_metric_withholds_the_grade_but_keeps_the_ceiling() -> None:
    result = grade_entity(
        [_at(Metric.CPK, 4), _at(Metric.SIGMA_LEVEL, None), _at(Metric.INTERNAL_LOSS_RATE, 3)]
    )
    assert (result.grade, result.ceiling, result.limiting) == (None, 3, Metric.INTERNAL_LOSS_RATE)
    assert result.insufficient == (Metric.SIGMA_LEVEL,)


def test_all_insufficient_has_no_ceiling_and_no_limiting_metric() -> None:
    result = grade_entity([_at(Metric.CPK, None), _at(Metric.ROLLED_FIRST_PASS_YIELD, None)])
    assert (result.grade, result.ceiling, result.limiting) == (None, None, None)
    assert result.insufficient == (Metric.CPK, Metric.ROLLED_FIRST_PASS_YIELD)


def test_an_untracked_loss_rate_limits_the_entity_to_grade_one() -> None:
    result = grade_entity(
        [
            _graded(Metric.CPK, 2.5),
            _graded(Metric.ROLLED_FIRST_PASS_YIELD, 0.99),
            grade_metric(loss_rate(Metric.EXTERNAL_LOSS_RATE, 0.0, 0.0, 0)),
        ]
    )
    assert (result.grade, result.limiting) == (1, Metric.EXTERNAL_LOSS_RATE)


# --- roll-ups ------------------------------------------------------------------------


def test_lowest_cpk_is_the_minimum_on_the_smallest_basis() -> None:
    result = lowest_cpk(
        {
            "bore": MetricValue(Metric.CPK, 1.80, 40),
            "depth": MetricValue(Metric.CPK, 1.40, 60),
            "flatness": MetricValue(Metric.CPK, 2.10, 30),
        }
    )
    assert result == MetricValue(Metric.CPK, 1.40, 30)


def test_lowest_cpk_with_one_insufficient_member_is_insufficient() -> None:
    result = lowest_cpk(
        {"bore": MetricValue(Metric.CPK, 1.80, 40), "depth": MetricValue(Metric.CPK, None, 10)}
    )
    assert result == MetricValue(Metric.CPK, None, 10)


def test_lowest_cpk_of_nothing_is_insufficient() -> None:
    assert lowest_cpk({}) == MetricValue(Metric.CPK, None, 0)


def test_rolled_yield_is_the_product_of_first_pass_yields() -> None:
    # 990/1000 * 980/1000 * 495/500 = 0.99 * 0.98 * 0.99 = 0.960498
    result = rolled_yield([(1000, 990), (1000, 980), (500, 495)])
    assert result.metric is Metric.ROLLED_FIRST_PASS_YIELD
    assert result.value == pytest.approx(0.960498, abs=1e-12)
    assert result.basis == 500
    graded = grade_metric(result)
    assert (graded.grade, graded.next_target) == (3, 0.97)


def test_rolled_yield_with_a_process_below_100_inspections_is_insufficient() -> None:
    result = rolled_yield([(1000, 990), (99, 99)])
    assert result == MetricValue(Metric.ROLLED_FIRST_PASS_YIELD, None, 99)


def test_rolled_yield_of_no_process_is_insufficient() -> None:
    assert rolled_yield([]) == MetricValue(Metric.ROLLED_FIRST_PASS_YIELD, None, 0)


@pytest.mark.parametrize("counts", [(100, 101), (100, -1)])
def test_rolled_yield_rejects_passed_outside_zero_to_inspected(counts: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="passed"):
        rolled_yield([(1000, 990), counts])


def test_rolled_yield_of_exactly_ninety_percent_over_two_processes_is_grade_two() -> None:
    # 99/100 * 100/110 = 9900/11000 = 0.9 exactly
    assert grade_metric(rolled_yield([(100, 99), (110, 100)])).grade == 2


def test_loss_rate_is_loss_over_output_value() -> None:
    # 30,000 / 1,000,000 = 3.0 %: grade 2, not below 3.0 %
    result = loss_rate(Metric.INTERNAL_LOSS_RATE, 30_000.0, 1_000_000.0, 12)
    assert result == MetricValue(Metric.INTERNAL_LOSS_RATE, 0.03, 12)
    assert grade_metric(result).grade == 2


def test_loss_rate_without_output_value_is_not_tracked() -> None:
    result = loss_rate(Metric.EXTERNAL_LOSS_RATE, 500.0, 0.0, 2)
    assert result == MetricValue(Metric.EXTERNAL_LOSS_RATE, None, 2, tracked=False)


# --- grade names ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "en", "zh"),
    [
        (1, "Experience", "经验级"),
        (2, "Inspection", "检验级"),
        (3, "Assurance", "保证级"),
        (4, "Prevention", "预防级"),
        (5, "Excellence", "卓越级"),
    ],
)
def test_grade_names_in_english_and_chinese(level: int, en: str, zh: str) -> None:
    g = grade(level)
    assert (g.level, g.en, g.zh) == (level, en, zh)
    assert GRADES[level - 1] is g


@pytest.mark.parametrize("level", [0, 6])
def test_grade_outside_one_to_five_is_rejected(level: int) -> None:
    with pytest.raises(ValueError, match=r"must be 1\.\.5"):
        grade(level)


def test_a_nan_or_a_negative_loss_rate_is_refused_not_graded() -> None:
    with pytest.raises(ValueError, match="NaN"):
        grade_metric(MetricValue(Metric.CPK, float("nan"), 100))
    with pytest.raises(ValueError, match="cannot be negative"):
        grade_metric(MetricValue(Metric.INTERNAL_LOSS_RATE, -0.01, 3))


def test_a_process_with_no_inspections_makes_the_rolled_yield_insufficient() -> None:
    assert rolled_yield([(0, 0), (500, 495)], min_units=0).value is None


def test_no_defect_at_all_is_the_top_grade_with_an_unbounded_level_said_so() -> None:
    graded = grade_defect_rate(0, 200, counted="out of specification")
    assert graded.grade == 5
    assert graded.value == math.inf
    assert graded.note.startswith("0 out of specification of 200 (0 DPMO: the sigma level is unb")
