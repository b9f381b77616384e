"""The live p chart of a process's first-pass verdicts, on the real service (SQLite store,
pipeline, HTTP push), held to ``spc.control_limits`` and ``spc.check_rules``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app import Settings, create_app
from spc import check_rules, control_limits
from tests.support.api import key_headers

START = datetime.now(UTC) - timedelta(hours=3)
N, K = 50, 25  # the service's defaults: subgroups of 50 first-pass verdicts, 25 in Phase I
# defectives per Phase I subgroup: p-bar = 60/1250 = 0.048, UCL = 0.1387, LCL = 0
BASELINE = [2, 3, 1, 2, 4, 2, 3, 2, 1, 3, 2, 2, 4, 1, 2, 3, 2, 2, 3, 1, 2, 4, 2, 3, 2]
BURST = 15  # NOK parts in one subgroup: p = 0.30
CHART = "/api/v1/processes/line2.vision/attribute-chart"

Published = list[tuple[str, dict[str, Any], dict[str, Any]]]


@pytest.fixture
def settings(tmp_path: Any, demo_config_path: Any) -> Settings:
    return Settings(config=demo_config_path, data_dir=tmp_path / "data")


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), headers=key_headers(settings)) as test_client:
        yield test_client


def _record_events(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> Published:
    """Every event the service publishes from now on: (kind, data, labels)."""
    bus = client.app.state.service.events  # type: ignore[attr-defined]
    published: Published = []
    original = bus.publish

    def record(kind: str, data: dict[str, Any], **labels: Any) -> Any:
        published.append((kind, dict(data), labels))
        return original(kind, data, **labels)

    monkeypatch.setattr(bus, "publish", record)
    return published


def _verdicts(defectives: list[int], first: int, **extra: Any) -> list[dict[str, Any]]:
    """Subgroups of N verdicts in a row from part ``first`` on, d of each NOK."""
    rows = []
    for j, d in enumerate(defectives):
        for i in range(N):
            part = first + j * N + i
            rows.append(
                {"process": "line2.vision", "part": f"P{part}", "ok": i >= d, "first_pass": True,
                 "time": (START + timedelta(seconds=part)).isoformat(),
                 "defects": [] if i >= d else ["gap"], **extra}
            )  # fmt: skip
    return rows


def _push(client: TestClient, verdicts: list[dict[str, Any]], **body: Any) -> None:
    response = client.post("/api/v1/measurements", json={"verdicts": verdicts, **body})
    assert response.status_code == 202, response.text


def test_phase_i_progress_then_frozen_limits_equal_the_reference(client: TestClient) -> None:
    _push(client, _verdicts(BASELINE[:10], 0))
    collecting = client.get(CHART).json()
    assert collecting["limits"] is None
    assert collecting["baseline"] == {"collected": 10, "needed": K, "frozen": False}
    assert [p["defectives"] for p in collecting["points"]] == BASELINE[:10]
    assert all(p["limit_version"] is None for p in collecting["points"])
    assert "Phase I: 10 of 25 subgroups" in collecting["notes"][0]

    _push(client, _verdicts(BASELINE[10:], 10 * N))
    body = client.get(CHART).json()

    ref = control_limits(BASELINE, chart="p", sample_sizes=N)
    limits = body["limits"]
    assert (limits["center"], limits["ucl"], limits["lcl"], limits["sigma"]) == (
        ref.center,
        ref.ucl,
        ref.lcl,
        ref.sigma,
    )
    assert (limits["version"], limits["baseline_subgroups"]) == (1, K)
    assert limits["in_force_after"] == (START + timedelta(seconds=K * N - 1)).isoformat().replace(
        "+00:00", "Z"
    )
    assert body["baseline"] == {"collected": K, "needed": K, "frozen": True}
    assert (body["subgroup_size"], body["rules"], body["chart"]) == (N, ["1", "2"], "p")
    assert [p["number"] for p in body["points"]] == list(range(K))


def test_a_burst_of_nok_parts_breaks_rule_1_and_publishes_a_live_violation(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _push(client, _verdicts(BASELINE, 0))
    published = _record_events(client, monkeypatch)

    _push(client, _verdicts([2, BURST], K * N))
    # a re-inspection after rework is not the process: not charted
    _push(client, [{**_verdicts([1], 0)[0], "part": "R1", "first_pass": False}])

    body = client.get(CHART).json()
    last = body["points"][-1]
    assert (last["number"], last["defectives"], last["n"], last["p"]) == (K + 1, BURST, N, 0.3)
    assert last["violations"] == [{"rule": "1", "side": "high"}]
    assert last["limit_version"] == 1
    assert last["time"].startswith((START + timedelta(seconds=(K + 2) * N - 1)).isoformat()[:19])
    assert body["open_subgroup"]["inspected"] == 0
    ref = control_limits(BASELINE, chart="p", sample_sizes=N)
    expected = check_rules([2 / N, BURST / N], ref.center, float(ref.sigma), ("1", "2"))
    assert [(v.index, v.rule) for v in expected] == [(1, "1")]
    [(kind, data, labels)] = published
    assert kind == "violation"
    assert (data["chart"], data["rule"], data["side"], data["value"]) == ("p", "1", "high", 0.3)
    assert data["limit"] == ref.ucl
    assert data["limit_version"] == 1
    assert labels == {"characteristic": "line2.vision#p", "line": "line2", "process": "vision"}
    assert "15 of 50 nonconforming" in data["message"]


def test_historical_verdicts_are_charted_but_publish_nothing(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _push(client, _verdicts(BASELINE, 0))
    published = _record_events(client, monkeypatch)

    _push(client, _verdicts([BURST], K * N), historical=True, idempotency_key="backfill-1")
    _push(client, _verdicts([BURST], K * N), historical=True, idempotency_key="backfill-1")

    points = client.get(CHART).json()["points"]
    assert len(points) == K + 1  # the resend was not charted twice
    assert points[-1]["violations"] == [{"rule": "1", "side": "high"}]
    assert published == []


def test_a_restart_rebuilds_the_same_chart_from_the_store(settings: Settings) -> None:
    with TestClient(create_app(settings), headers=key_headers(settings)) as first:
        _push(first, _verdicts(BASELINE, 0))
        _push(first, _verdicts([3, BURST, 1], K * N))
        _push(first, _verdicts([1], (K + 3) * N)[:20])  # an open subgroup of 20
        before = first.get(CHART).json()

    with TestClient(create_app(settings), headers=key_headers(settings)) as second:
        after = second.get(CHART).json()
        # completes the open subgroup (1 NOK so far) with 14 NOK parts more
        _push(second, _verdicts([34], (K + 3) * N)[20:])
        completed = second.get(CHART).json()["points"][-1]

    assert after["limits"] == before["limits"]
    assert after["points"] == before["points"]
    assert after["open_subgroup"] == before["open_subgroup"]
    assert after["open_subgroup"]["inspected"] == 20
    assert (completed["number"], completed["defectives"]) == (K + 3, BURST)
    assert completed["violations"] == [{"rule": "1", "side": "high"}]


def test_an_unknown_process_is_a_404_problem(client: TestClient) -> None:
    response = client.get("/api/v1/processes/line9.nowhere/attribute-chart")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "line9.nowhere" in response.json()["detail"]


def test_a_known_process_without_verdicts_is_collecting(client: TestClient) -> None:
    body = client.get("/api/v1/processes/line1.turning/attribute-chart").json()

    assert body["points"] == []
    assert body["baseline"] == {"collected": 0, "needed": K, "frozen": False}
    assert body["open_subgroup"] == {"inspected": 0, "defectives": 0, "since": None}


def test_older_points_are_paged_with_a_cursor(client: TestClient) -> None:
    _push(client, _verdicts(BASELINE, 0))

    page = client.get(CHART, params={"limit": 10}).json()
    older = client.get(CHART, params={"limit": 10, "cursor": page["next_cursor"]}).json()
    oldest = client.get(CHART, params={"limit": 10, "cursor": older["next_cursor"]}).json()

    assert [p["number"] for p in page["points"]] == list(range(15, 25))
    assert [p["number"] for p in older["points"]] == list(range(5, 15))
    assert [p["number"] for p in oldest["points"]] == list(range(5))
    assert oldest["next_cursor"] is None
    bad = client.get(CHART, params={"cursor": "nonsense"})
    assert bad.status_code == 422
    assert "cursor" in bad.json()["detail"]


def test_the_last_p_is_a_gauge_and_the_route_is_documented(client: TestClient) -> None:
    _push(client, _verdicts(BASELINE[:2], 0))

    metrics = client.get("/metrics").text
    schema = client.get("/openapi.json").json()

    assert 'spcmon_attribute_p{line="line2",process="vision"} 0.06' in metrics
    route = schema["paths"]["/api/v1/processes/{process_id}/attribute-chart"]["get"]
    assert route["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/AttributeChartPublic"
    )
    assert "404" in route["responses"]
