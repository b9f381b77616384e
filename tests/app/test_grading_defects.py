"""How defects and opportunities add up in the grades (no HTTP: the grading itself)."""

from __future__ import annotations

from datetime import UTC, datetime

from app.grading import _grade_all
from app.periods import parse_period
from spc.capability_sums import CapabilitySums
from tests.ingest.records import characteristic

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def test_a_characteristic_without_limits_does_not_dilute_its_process_defect_rate() -> None:
    diameter = characteristic("l1.p1.a", line="l1", process="p1")
    temperature = characteristic("l1.p1.t", line="l1", process="p1", lsl=None, usl=None,
                                 target=None)  # fmt: skip
    sums = {
        "l1.p1.a": CapabilitySums(1000, 25.0, 0.0, 0.1, 10.0, 999, out_of_spec=8),
        "l1.p1.t": CapabilitySums(1000, 40.0, 0.0, 1.0, 30.0, 999),
    }
    grades = _grade_all(
        [diameter, temperature], sums, {}, [], "plant", parse_period("30d", NOW), NOW
    )

    process = grades.get("process", "l1.p1")
    assert process is not None
    sigma = next(m for m in process.result.metrics if m.metric.value == "sigma_level")
    # 8 of the 1,000 values that could be out of specification: 8,000 DPMO, not 4,000
    assert sigma.basis == 1000
    assert sigma.grade == 2
    spec_less = grades.get("characteristic", "l1.p1.t")
    assert spec_less is not None
    metrics = {m.metric.value: m for m in spec_less.result.metrics}
    assert metrics["sigma_level"].grade is None  # no opportunities: not graded
