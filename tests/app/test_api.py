"""The HTTP API over a real service (SQLite store, engine, pipeline), no collectors."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app import Settings, create_app
from ingest import ConfigError
from spc import control_limits
from tests.support.api import key_headers

CHAR = "line1.turning.diameter"


def _rows(values: list[float], start: datetime, char: str = CHAR) -> list[dict[str, Any]]:
    return [
        {"characteristic": char, "value": v, "time": (start + timedelta(seconds=i)).isoformat()}
        for i, v in enumerate(values)
    ]


def _in_control(n: int, seed: int = 7) -> list[float]:
    return list(np.random.default_rng(seed).normal(25.0, 0.01, n))


def _push(client: TestClient, rows: list[dict[str, Any]], **extra: Any) -> Any:
    return client.post("/api/v1/measurements", json={"measurements": rows, **extra})


def _db(settings: Settings) -> sqlite3.Connection:
    return sqlite3.connect(settings.sqlite_path)


def test_healthz_reports_the_store_and_no_collectors(client: TestClient) -> None:
    body = client.get("/healthz").json()
    assert body == {
        "status": "ok",
        "store": "sqlite",
        "spooled_rows": 0,
        "characteristics": 5,
        "collectors": {},
    }


def test_characteristics_are_listed_and_filtered_by_line(client: TestClient) -> None:
    all_ids = [c["id"] for c in client.get("/api/v1/characteristics").json()]
    line2 = [c["id"] for c in client.get("/api/v1/characteristics?line=line2").json()]
    assert len(all_ids) == 5
    assert line2 == ["line2.vision.gap", "line2.vision.offset"]
    one = client.get(f"/api/v1/characteristics/{CHAR}").json()
    assert one["origin"] == "config"
    assert one["source_kind"] == "opcua"


def test_unknown_characteristic_is_a_404_problem(client: TestClient) -> None:
    response = client.get("/api/v1/characteristics/nope/status")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "'nope'" in response.json()["detail"]


def test_status_before_baseline_shows_progress_and_no_limits(client: TestClient) -> None:
    start = datetime.now(UTC) - timedelta(hours=1)
    assert _push(client, _rows(_in_control(10), start)).status_code == 202
    status = client.get(f"/api/v1/characteristics/{CHAR}/status").json()
    assert status["baseline"] == {"collected": 10, "needed": 25}
    assert status["limits"] is None
    assert status["in_control"] is None
    assert status["capability"]["n"] == 10


def test_pushed_measurements_freeze_limits_then_flag_a_shift(
    client: TestClient, settings: Settings
) -> None:
    start = datetime.now(UTC) - timedelta(hours=1)
    baseline = _in_control(25)
    assert _push(client, _rows(baseline, start)).json() == {"accepted": 25, "rejected": []}
    status = client.get(f"/api/v1/characteristics/{CHAR}/status").json()
    limits = status["limits"]
    assert limits["version"] == 1
    assert limits["center"] == pytest.approx(float(np.mean(baseline)), rel=1e-12)
    assert status["in_control"] is True
    assert status["capability"]["cpk"] > 1.0

    shifted = _rows([25.2], start + timedelta(minutes=5))
    assert _push(client, shifted).status_code == 202
    status = client.get(f"/api/v1/characteristics/{CHAR}/status").json()
    assert status["in_control"] is False
    [alarm] = status["open_alarms"]  # one incident, opened by the CUSUM (the default pager)
    assert (alarm["rule"], alarm["chart"], alarm["severity"]) == ("cusum", "cusum", "critical")
    assert alarm["limit_version"] == 1
    assert alarm["last_value"] == 25.2
    evidence = client.get(f"/api/v1/alarms/{alarm['id']}").json()["evidence"]
    assert any(
        "above UCL" in e["message"] for e in evidence if (e["rule"], e["chart"]) == ("1", "i")
    )
    with _db(settings) as db:
        stored = db.execute("SELECT count(*) FROM measurements WHERE characteristic=?", (CHAR,))
        assert stored.fetchone()[0] == 26


def test_malformed_push_names_the_field_and_keeps_the_body(
    client: TestClient, settings: Settings
) -> None:
    body = {"measurements": [{"characteristic": CHAR, "value": "abc", "time": "2026-01-01"}]}
    response = client.post("/api/v1/measurements", json=body)
    assert response.status_code == 422
    problem = response.json()
    fields = {e["field"] for e in problem["errors"]}
    assert "body.measurements.0.value" in fields
    assert "body.measurements.0.time" in fields  # no UTC offset
    with _db(settings) as db:
        payload, reason = db.execute("SELECT payload, reason FROM dead_letters").fetchone()
    assert '"abc"' in payload
    assert "measurements.0.value" in reason


def test_body_that_is_not_json_is_refused_and_kept(client: TestClient, settings: Settings) -> None:
    response = client.post(
        "/api/v1/measurements", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    with _db(settings) as db:
        assert db.execute("SELECT payload FROM dead_letters").fetchone()[0] == "{not json"


def test_a_body_that_is_not_utf8_is_a_400_and_kept(client: TestClient, settings: Settings) -> None:
    response = client.post(
        "/api/v1/measurements",
        content=b'{"x": "\xff"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "the body is not valid JSON in UTF-8"
    with _db(settings) as db:
        payload, reason = db.execute("SELECT payload, reason FROM dead_letters").fetchone()
    assert payload == '{"x": "\\xff"}'
    assert "not valid JSON in UTF-8" in reason


def test_good_rows_are_accepted_while_bad_rows_are_listed(
    client: TestClient, settings: Settings
) -> None:
    start = datetime.now(UTC) - timedelta(minutes=10)
    rows = _rows([25.0, 25.01], start)
    rows.insert(1, _rows([1.0], start, char="no.such.char")[0])
    result = _push(client, rows).json()
    assert result["accepted"] == 2
    assert result["rejected"] == [
        {
            "row": "measurements[1]",
            "field": "characteristic",
            "reason": "unknown characteristic 'no.such.char'",
        }
    ]
    with _db(settings) as db:
        assert db.execute("SELECT count(*) FROM dead_letters").fetchone()[0] == 1


def test_batch_with_every_row_rejected_is_a_422(client: TestClient) -> None:
    future = datetime.now(UTC) + timedelta(days=1)
    response = _push(client, _rows([25.0], future))
    assert response.status_code == 422
    assert "in the future" in response.json()["detail"]


def test_resent_batch_with_the_same_idempotency_key_is_stored_once(
    client: TestClient, settings: Settings
) -> None:
    rows = _rows(_in_control(5), datetime.now(UTC) - timedelta(minutes=10))
    for _ in range(2):
        assert _push(client, rows, idempotency_key="mes-batch-42").status_code == 202
    with _db(settings) as db:
        assert db.execute("SELECT count(*) FROM measurements").fetchone()[0] == 5
    status = client.get(f"/api/v1/characteristics/{CHAR}/status").json()
    assert status["baseline"]["collected"] == 5  # evaluated once, too


def test_metrics_expose_capability_and_ingest_counters(client: TestClient) -> None:
    _push(client, _rows(_in_control(30), datetime.now(UTC) - timedelta(hours=1)))
    text = client.get("/metrics").text
    assert 'spcmon_records_stored_total{kind="measurement"} 30.0' in text
    assert f'spcmon_cpk{{characteristic="{CHAR}",line="line1",process="turning"}}' in text


def test_restart_restores_limits_window_and_open_alarms(settings: Settings) -> None:
    start = datetime.now(UTC) - timedelta(hours=1)
    with TestClient(create_app(settings), headers=key_headers(settings)) as first:
        _push(first, _rows([*_in_control(40), 25.3], start))
        before = first.get(f"/api/v1/characteristics/{CHAR}/status").json()
    with TestClient(create_app(settings), headers=key_headers(settings)) as second:
        after = second.get(f"/api/v1/characteristics/{CHAR}/status").json()
    assert after["limits"] == before["limits"]
    cpk_ci = after["capability"].pop("cpk_ci")
    assert cpk_ci == pytest.approx(before["capability"].pop("cpk_ci"))
    assert after["capability"] == pytest.approx(before["capability"])
    assert [a["id"] for a in after["open_alarms"]] == [a["id"] for a in before["open_alarms"]]
    assert after["last"]["value"] == 25.3


def test_dashboard_page_is_served(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert "live SPC status" in response.text


def _xbar_config(tmp_path: Path, demo_config_path: Path, subgroup: int) -> Path:
    text = demo_config_path.read_text().replace("subgroup_size: 5", f"subgroup_size: {subgroup}")
    path = tmp_path / "plant.yaml"
    path.write_text(text)
    return path


def test_an_xbar_r_characteristic_charts_subgroup_means_and_ranges(
    tmp_path: Path, demo_config_path: Path
) -> None:
    settings = Settings(config=_xbar_config(tmp_path, demo_config_path, 5), data_dir=tmp_path)
    char = "line1.turning.length"
    values = list(np.random.default_rng(3).normal(120.0, 0.03, 25 * 5))
    with TestClient(create_app(settings), headers=key_headers(settings)) as client:
        assert _push(client, _rows(values, datetime.now(UTC) - timedelta(hours=1), char))
        status = client.get(f"/api/v1/characteristics/{char}/status").json()
        assert status["characteristic"]["chart"] == "xbar_r"
        assert status["baseline"] == {"collected": 25, "needed": 25}
        limits = status["limits"]
        assert limits["baseline_n"] == 25
        assert limits["center"] == pytest.approx(float(np.mean(values)), rel=1e-12)
        shifted = _rows([120.2] * 5, datetime.now(UTC) - timedelta(minutes=5), char)
        _push(client, shifted)
        alarms = client.get(f"/api/v1/characteristics/{char}/status").json()["open_alarms"]
        # the subgroup mean beyond the UCL made the CUSUM's incident critical
        assert [a["severity"] for a in alarms] == ["critical"]


def test_a_subgroup_size_that_does_not_divide_the_window_is_refused_at_start(
    tmp_path: Path, demo_config_path: Path
) -> None:
    settings = Settings(config=_xbar_config(tmp_path, demo_config_path, 3), data_dir=tmp_path)
    app = create_app(settings)
    with (
        pytest.raises(ConfigError, match=r"'line1\.turning\.length' > subgroup_size: 3 does not"),
        TestClient(app),
    ):
        pass


def test_a_restart_during_phase_one_keeps_every_subgroup_aligned(
    tmp_path: Path, demo_config_path: Path
) -> None:
    # 24 subgroups of 5 and 3 values stored (more than the 100-value window), restart,
    # then the 2 values that complete subgroup 25: the limits must be those of all 125.
    settings = Settings(config=_xbar_config(tmp_path, demo_config_path, 5), data_dir=tmp_path)
    char = "line1.turning.length"
    values = list(np.random.default_rng(8).normal(120.0, 0.03, 125))
    rows = _rows(values, datetime.now(UTC) - timedelta(hours=1), char)
    with TestClient(create_app(settings), headers=key_headers(settings)) as first:
        _push(first, rows[:123])
    with TestClient(create_app(settings), headers=key_headers(settings)) as second:
        before = second.get(f"/api/v1/characteristics/{char}/status").json()
        assert before["baseline"]["collected"] == 24
        _push(second, rows[123:])
        limits = second.get(f"/api/v1/characteristics/{char}/status").json()["limits"]
    expected = control_limits(values, "xbar_r", subgroup_size=5)
    assert limits is not None
    assert limits["center"] == pytest.approx(expected.center, rel=1e-12)
    assert limits["ucl"] == pytest.approx(expected.ucl, rel=1e-12)
