"""Live grades over the HTTP API, on a real service (SQLite store, engine, pipeline).

Expected grades are worked out by hand from the table in docs/quality-grades.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app import Settings, create_app
from spc import capability
from tests.support.api import key_headers

START = datetime.now(UTC) - timedelta(hours=2)


@pytest.fixture
def client(tmp_path: Path, demo_config_path: Path) -> Iterator[TestClient]:
    settings = Settings(config=demo_config_path, data_dir=tmp_path / "data")
    with TestClient(create_app(settings), headers=key_headers(settings)) as test_client:
        yield test_client


def _push(client: TestClient, **body: Any) -> None:
    response = client.post("/api/v1/measurements", json=body)
    assert response.status_code == 202, response.text


def _at(i: int) -> str:
    return (START + timedelta(seconds=i)).isoformat()


def _metrics(entity: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["metric"]: m for m in entity["metrics"]}


def _inspect_line2(client: TestClient) -> None:
    """100 first inspections at the vision station, 97 passed, plus 5 re-inspections."""
    verdicts = [
        {"process": "line2.vision", "part": f"P{i}", "ok": i >= 3, "first_pass": True,
         "time": _at(i), "defects": [] if i >= 3 else ["gap"]}
        for i in range(100)
    ] + [
        {"process": "line2.vision", "part": f"P{i}", "ok": True, "first_pass": False,
         "time": _at(200 + i), "defects": []}
        for i in range(5)
    ]  # fmt: skip
    costs = [
        {"scope": "line2", "category": "output_value", "amount": 100_000.0,
         "currency": "CNY", "time": _at(1)},
        {"scope": "line2", "category": "scrap", "amount": 1_500.0, "currency": "CNY",
         "time": _at(2)},
        {"scope": "line2", "category": "rework", "amount": 500.0, "currency": "CNY",
         "time": _at(3)},
        {"scope": "line2", "category": "claim", "amount": 500.0, "currency": "CNY",
         "time": _at(4)},
    ]  # fmt: skip
    _push(client, verdicts=verdicts, cost_events=costs)


def test_without_data_nothing_is_graded_and_losses_are_not_tracked(client: TestClient) -> None:
    body = client.get("/api/v1/grades").json()

    plant = body["plant"]
    assert (plant["level"], plant["id"]) == ("plant", "demo")
    assert plant["grade"] is None
    assert "cpk" in plant["insufficient"]
    metrics = _metrics(plant)
    assert metrics["internal_loss_rate"]["grade"] == 1
    assert metrics["internal_loss_rate"]["note"] == "not tracked"
    assert [line["id"] for line in body["lines"]] == ["line1", "line2"]
    assert body["period"]["label"] == "30d"
    assert "qualitative" in body["scope"]


def test_a_line_is_graded_by_its_weakest_metric_with_what_each_needs(client: TestClient) -> None:
    _inspect_line2(client)

    vision = client.get("/api/v1/grades/process/line2.vision").json()
    metrics = _metrics(vision)
    # first-pass yield 97/100 = 0.97: Prevention (4); the re-inspections do not count
    assert metrics["rolled_first_pass_yield"]["value"] == pytest.approx(0.97)
    assert metrics["rolled_first_pass_yield"]["grade"] == 4
    assert metrics["rolled_first_pass_yield"]["next_target"] == 0.98
    # 3 defective of 100 = 30,000 DPMO <= 66,807: 3 sigma, Inspection (2)
    assert metrics["sigma_level"]["grade"] == 2
    assert metrics["sigma_level"]["basis"] == 100
    assert metrics["sigma_level"]["next_target"] == 4.0
    assert vision["grade"] is None  # no Cpk yet: never graded silently
    assert (vision["ceiling"], vision["limiting_metric"]) == (2, "sigma_level")

    line2 = _metrics(client.get("/api/v1/grades/line/line2").json())
    # internal (1,500 + 500) / 100,000 = 2.0 % < 3.0 %: Assurance (3)
    assert line2["internal_loss_rate"]["value"] == pytest.approx(0.02)
    assert line2["internal_loss_rate"]["grade"] == 3
    # external 500 / 100,000 = exactly 0.5 %: not below 0.5 %, so Prevention (4)
    assert line2["external_loss_rate"]["value"] == pytest.approx(0.005)
    assert line2["external_loss_rate"]["grade"] == 4
    assert line2["external_loss_rate"]["grade_zh"] == "预防级"


def _push_values(client: TestClient, char: str, values: np.ndarray, first: int = 0) -> None:
    _push(
        client,
        measurements=[
            {"characteristic": char, "value": float(v), "time": _at(first + i)}
            for i, v in enumerate(values)
        ],
    )


def test_cpk_over_the_period_is_the_reference_capability_of_every_value(
    client: TestClient,
) -> None:
    char = "line1.turning.diameter"
    spec = client.get(f"/api/v1/characteristics/{char}").json()
    values = np.random.default_rng(5).normal(25.0, 0.01, 130)
    _push_values(client, char, values[:60])
    _push_values(client, char, values[60:], first=60)  # two batches, one chain of MRs

    graded = client.get(f"/api/v1/grades/characteristic/{char}").json()

    # every value of the period, not the engine's rolling window of 100
    ref = capability(values, spec["lsl"], spec["usl"], sigma_within="mr")
    cpk = _metrics(graded)["cpk"]
    assert cpk["basis"] == 130
    assert cpk["value"] == pytest.approx(ref.cpk, rel=1e-9)
    assert cpk["interval"] == pytest.approx(ref.cpk_ci, rel=1e-9)
    expected = 1 + sum(ref.cpk >= bound for bound in (1.00, 1.33, 1.67, 2.00))
    assert cpk["grade"] == expected
    # the sigma level counts the values beyond a specification limit (here none)
    outside = int(((values < spec["lsl"]) | (values > spec["usl"])).sum())
    sigma = _metrics(graded)["sigma_level"]
    assert (sigma["basis"], outside) == (130, 0)
    assert sigma["grade"] == 5
    assert sigma["note"].startswith("0 out of specification of 130")
    assert graded["grade"] == min(expected, 5)
    assert graded["capability_sigma_level"] == pytest.approx(3 * ref.cpk)
    assert graded["period"]["cpk_from"] is not None


def test_values_beyond_a_specification_limit_set_a_characteristics_sigma_level(
    client: TestClient,
) -> None:
    char = "line1.turning.diameter"
    spec = client.get(f"/api/v1/characteristics/{char}").json()
    values = np.random.default_rng(8).normal(25.0, 0.01, 200)
    values[[10, 50]] = spec["usl"] + 0.001  # 2 of 200: 10,000 DPMO, 3.83 sigma
    _push_values(client, char, values)

    sigma = _metrics(client.get(f"/api/v1/grades/characteristic/{char}").json())["sigma_level"]

    assert sigma["basis"] == 200
    assert sigma["grade"] == 2  # 10,000 DPMO <= 66,807 but > 6,210
    assert sigma["value"] == pytest.approx(3.8263, abs=1e-4)
    assert sigma["note"].startswith("2 out of specification of 200 (1e+04 DPMO)")
    # the process does not inspect: its sigma level is its characteristics' values
    turning = _metrics(client.get("/api/v1/grades/process/line1.turning").json())
    assert turning["sigma_level"]["basis"] == 200
    assert "rolled_first_pass_yield" not in turning


def test_a_characteristic_with_25_points_has_a_cpk_but_no_grade_yet(client: TestClient) -> None:
    char = "line1.turning.diameter"
    _push_values(client, char, np.random.default_rng(5).normal(25.0, 0.01, 30))

    graded = client.get(f"/api/v1/grades/characteristic/{char}").json()

    metrics = _metrics(graded)
    assert metrics["cpk"]["basis"] == 30
    assert metrics["cpk"]["grade"] is not None
    # 30 values are too few for a defect rate: never graded silently
    assert (metrics["sigma_level"]["grade"], metrics["sigma_level"]["basis"]) == (None, 30)
    assert graded["grade"] is None
    assert graded["insufficient"] == ["sigma_level"]
    assert graded["ceiling"] == metrics["cpk"]["grade"]
    line1 = client.get("/api/v1/grades/line/line1").json()
    assert line1["children"]["line1.turning"] is None  # length has no data yet


def test_a_bad_period_and_an_unknown_entity_are_named(client: TestClient) -> None:
    bad = client.get("/api/v1/grades?period=last-week")
    assert bad.status_code == 422
    assert "period: expected e.g. 7d" in bad.json()["detail"]
    missing = client.get("/api/v1/grades/line/line9")
    assert missing.status_code == 404
    assert "'line9'" in missing.json()["detail"]
    period = client.get("/api/v1/grades?period=2026-01-01/2026-03-31").json()["period"]
    assert period["start"].startswith("2026-01-01T00:00:00")
    assert period["end"].startswith("2026-04-01T00:00:00")


def test_snapshots_make_the_history_and_grade_changes_are_events(client: TestClient) -> None:
    keeper = client.app.state.service.grades  # type: ignore[attr-defined]
    portal = client.portal  # type: ignore[attr-defined]
    before = portal.call(keeper.refresh)
    assert before.get("process", "line2.vision").result.ceiling is None
    _inspect_line2(client)
    after = portal.call(keeper.refresh)
    assert portal.call(keeper.snapshot, after) == len(after.entities)

    history = client.get("/api/v1/grades/process/line2.vision/history").json()
    [snap] = history
    assert snap["grade"] is None  # no Cpk yet
    assert snap["metrics"]["rolled_first_pass_yield"] == pytest.approx(0.97)
    assert snap["limiting_metric"] == "sigma_level"
    changed = {(level, entity) for _, level, entity, _, _ in keeper.changes}
    assert ("process", "line2.vision") not in changed  # None -> None: no change event


def test_prometheus_exposes_the_grade_metrics(client: TestClient) -> None:
    _inspect_line2(client)
    client.portal.call(client.app.state.service.grades.refresh)  # type: ignore[attr-defined]

    text = client.get("/metrics").text

    fpy = 'entity="line2.vision",level="process",metric="rolled_first_pass_yield"'
    assert f"spc_grade_metric{{{fpy}}} 0.97" in text
    assert 'spc_grade_metric{entity="line2",level="line",metric="internal_loss_rate"} 0.02' in text


def test_a_characteristic_reaching_its_first_grade_is_a_grade_change(client: TestClient) -> None:
    keeper = client.app.state.service.grades  # type: ignore[attr-defined]
    char = "line1.turning.diameter"  # individuals: 100 values for Cpk and the sigma level
    client.portal.call(keeper.refresh)  # type: ignore[attr-defined]
    values = np.random.default_rng(9).normal(25.0, 0.01, 100)
    _push(
        client,
        measurements=[
            {"characteristic": char, "value": float(v), "time": _at(i)}
            for i, v in enumerate(values)
        ],
    )

    grades = client.portal.call(keeper.refresh)  # type: ignore[attr-defined]

    new = grades.get("characteristic", char).result.grade
    assert new is not None
    assert [(lvl, ent, old, now) for _, lvl, ent, old, now in keeper.changes] == [
        ("characteristic", char, None, new)
    ]
    assert f'spc_grade{{entity="{char}",level="characteristic"}} {new}.0' in (
        client.get("/metrics").text
    )


def test_a_subgrouped_characteristic_needs_25_subgroups_not_25_points(client: TestClient) -> None:
    char = "line1.turning.length"  # X-bar/R with subgroups of 5
    values = np.random.default_rng(2).normal(120.0, 0.02, 25)
    _push(
        client,
        measurements=[
            {"characteristic": char, "value": float(v), "time": _at(i)}
            for i, v in enumerate(values)
        ],
    )

    cpk = _metrics(client.get(f"/api/v1/grades/characteristic/{char}").json())["cpk"]

    assert (cpk["grade"], cpk["basis"], cpk["note"]) == (None, 5, "insufficient data")


def test_costs_and_verdicts_of_unknown_lines_and_processes_are_rejected_and_kept(
    client: TestClient,
) -> None:
    costs = [
        {"scope": "linea", "category": "claim", "amount": 400.0, "currency": "CNY",
         "time": _at(1)},
        {"scope": "demo", "category": "output_value", "amount": 10_000.0, "currency": "CNY",
         "time": _at(2)},
    ]  # fmt: skip
    verdicts = [
        {"process": "line2.vison", "part": "P1", "ok": False, "first_pass": True, "time": _at(3)}
    ]

    response = client.post(
        "/api/v1/measurements", json={"cost_events": costs, "verdicts": verdicts}
    )

    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 1  # the plant-wide output value
    rejected = {(r["row"], r["field"]): r["reason"] for r in body["rejected"]}
    assert rejected[("cost_events[0]", "scope")].startswith("unknown scope 'linea'; known: demo")
    assert "line1, line2" in rejected[("cost_events[0]", "scope")]
    assert rejected[("verdicts[0]", "process")].startswith("unknown process 'line2.vison'")
    store = client.app.state.service.store  # type: ignore[attr-defined]
    letters = client.portal.call(store.list_dead_letters)  # type: ignore[attr-defined]
    reasons = {letter.reason.split(":")[0] for letter in letters}
    assert {"cost_events[0].scope", "verdicts[0].process"} <= reasons


def test_an_inspection_only_station_of_the_plant_file_takes_verdicts(
    tmp_path: Path, demo_config_path: Path
) -> None:
    import yaml

    doc = yaml.safe_load(demo_config_path.read_text(encoding="utf-8"))
    doc["lines"][0]["processes"].append({"id": "final", "name": "Final inspection"})
    plant = tmp_path / "plant.yaml"
    plant.write_text(yaml.safe_dump(doc), encoding="utf-8")
    settings = Settings(config=plant, data_dir=tmp_path / "data")
    verdict = {"process": "line1.final", "part": "P1", "ok": False, "first_pass": True,
               "time": _at(1)}  # fmt: skip
    with TestClient(create_app(settings), headers=key_headers(settings)) as client:
        response = client.post("/api/v1/measurements", json={"verdicts": [verdict]})
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 1, "rejected": []}
