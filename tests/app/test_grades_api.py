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


def test_cpk_grades_a_characteristic_once_25_points_are_in(client: TestClient) -> None:
    char = "line1.turning.diameter"
    values = np.random.default_rng(5).normal(25.0, 0.01, 30)
    _push(
        client,
        measurements=[
            {"characteristic": char, "value": float(v), "time": _at(i)}
            for i, v in enumerate(values)
        ],
    )
    status = client.get(f"/api/v1/characteristics/{char}/status").json()
    graded = client.get(f"/api/v1/grades/characteristic/{char}").json()

    cpk = _metrics(graded)["cpk"]
    assert cpk["value"] == pytest.approx(status["capability"]["cpk"])
    assert cpk["basis"] == 30
    expected = 1 + sum(cpk["value"] >= bound for bound in (1.00, 1.33, 1.67, 2.00))
    assert graded["grade"] == cpk["grade"] == expected
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
    char = "line1.turning.diameter"  # individuals: 25 points are 25 subgroups
    client.portal.call(keeper.refresh)  # type: ignore[attr-defined]
    values = np.random.default_rng(9).normal(25.0, 0.01, 25)
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
