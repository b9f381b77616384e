"""Chart and capability reads over the HTTP API, on a real service (SQLite store, engine).

Limits are frozen by the engine when the 25th point arrives, with ``created_at`` the
wall-clock time of the freeze: the baseline is pushed in the past and Phase II points
after that instant (at most 5 minutes ahead, as the push allows).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from scipy import stats

from app import Settings
from app.api.routes import charts
from app.auth import Role
from spc import capability
from tests.support.api import key_headers

DIAMETER = "line1.turning.diameter"  # I-MR, western_electric rules, EWMA and CUSUM
GAP = "line2.vision.gap"  # I-MR, Nelson rules
LENGTH = "line1.turning.length"  # X-bar R, subgroups of 5
D2_2 = 2.0 / math.sqrt(math.pi)  # d2 for moving ranges of 2 (exact)
D2_5 = 2.325929  # d2 for subgroups of 5 (AIAG table, 2.326)


def _push(client: TestClient, char: str, values: list[float], start: datetime) -> None:
    rows = [
        {"characteristic": char, "value": v, "time": (start + timedelta(seconds=i)).isoformat()}
        for i, v in enumerate(values)
    ]
    response = client.post("/api/v1/measurements", json={"measurements": rows})
    assert response.status_code == 202, response.text


def _baseline(client: TestClient, char: str, values: list[float]) -> datetime:
    """Push a Phase I baseline an hour ago; return the instant just after the freeze."""
    _push(client, char, values, datetime.now(UTC) - timedelta(hours=1))
    return datetime.now(UTC) + timedelta(milliseconds=10)


def test_history_pushed_late_is_charted_against_the_limits_that_judged_it(
    client: TestClient,
) -> None:
    yesterday = datetime.now(UTC) - timedelta(days=1)
    values = [*_normal(30, 25.0, 0.01), 25.2]  # the last one beyond any UCL
    rows = [
        {
            "characteristic": DIAMETER,
            "value": v,
            "time": (yesterday + timedelta(seconds=i)).isoformat(),
        }
        for i, v in enumerate(values)
    ]
    body = {"historical": True, "measurements": rows}
    assert client.post("/api/v1/measurements", json=body).status_code == 202
    chart = _chart(client, DIAMETER, start=(yesterday - timedelta(minutes=1)).isoformat())
    assert [p["limit_version"] for p in chart["points"]] == [None] * 25 + [1] * 6
    assert chart["points"][-1]["violations"][0]["rule"] == "1"
    (version,) = chart["limit_versions"]
    assert version["in_force_after"] == chart["points"][24]["time"]


def _chart(client: TestClient, char: str, **params: Any) -> Any:
    if "period" not in params:  # Phase II points lie up to 5 minutes ahead
        params.setdefault("end", (datetime.now(UTC) + timedelta(minutes=10)).isoformat())
    response = client.get(f"/api/v1/characteristics/{char}/chart", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def _normal(n: int, mean: float, sd: float, seed: int = 7) -> list[float]:
    return list(np.random.default_rng(seed).normal(mean, sd, n))


def test_a_point_beyond_the_ucl_is_marked_rule_1_on_the_location_chart(
    client: TestClient,
) -> None:
    baseline = _normal(25, 25.0, 0.01)
    after = _baseline(client, DIAMETER, baseline)
    # I-MR by hand: centre x-bar, sigma = MR-bar / d2(2), limits +/- 3 sigma
    center = float(np.mean(baseline))
    sigma = float(np.mean(np.abs(np.diff(baseline)))) / D2_2
    _push(client, DIAMETER, [center, center + 4 * sigma, center], after)
    body = _chart(client, DIAMETER)
    points = body["points"]
    assert [p["limit_version"] for p in points] == [None] * 25 + [1] * 3
    assert all(p["violations"] == [] for p in points[:25])
    assert points[26]["value"] == pytest.approx(center + 4 * sigma)
    assert {"rule": "1", "chart": "location"} in points[26]["violations"]
    assert {"rule": "1", "chart": "location"} not in points[27]["violations"]
    limits = body["limit_versions"][0]["limits"]
    assert limits["center"] == pytest.approx(center, rel=1e-12)
    assert limits["ucl"] == pytest.approx(center + 3 * sigma, rel=1e-12)
    assert limits["plus_2_sigma"] == pytest.approx(center + 2 * sigma, rel=1e-12)
    assert body["segments"] == [
        {"limit_version": None, "first_index": 0, "last_index": 24},
        {"limit_version": 1, "first_index": 25, "last_index": 27},
    ]
    assert [p["index"] for p in body["ewma"]["points"]] == [25, 26, 27]
    # C+ = max(0, x - (centre + k sigma) + C+) with the default k = 0.35: 0, 3.65 sigma,
    # 3.3 sigma; H = h sigma = 6.7 sigma
    cusum = body["cusum"]["points"]
    assert [p["upper"] for p in cusum] == pytest.approx([0.0, 3.65 * sigma, 3.3 * sigma])
    assert cusum[0]["limit"] == pytest.approx(6.7 * sigma)


def test_nine_points_on_one_side_are_marked_rule_2(client: TestClient) -> None:
    baseline = _normal(25, 1.5, 0.02)
    after = _baseline(client, GAP, baseline)
    center = float(np.mean(baseline))
    sigma = float(np.mean(np.abs(np.diff(baseline)))) / D2_2
    _push(client, GAP, [center + 0.5 * sigma] * 9, after)
    marked = {
        i: p["violations"] for i, p in enumerate(_chart(client, GAP)["points"]) if p["violations"]
    }
    assert marked == {33: [{"rule": "2", "chart": "location"}]}


def test_xbar_r_chart_plots_subgroup_means_and_ranges(client: TestClient) -> None:
    baseline = _normal(125, 120.0, 0.03, seed=3)
    after = _baseline(client, LENGTH, baseline)
    extra = [120.0, 120.1, 119.9, 120.0, 120.05, 120.3, 120.3]  # one subgroup and 2 values
    _push(client, LENGTH, extra, after)
    body = _chart(client, LENGTH)
    points = body["points"]
    assert len(points) == 26
    assert body["not_plotted"] == 2
    assert any("incomplete" in note for note in body["notes"])
    groups = np.array(baseline).reshape(25, 5)
    assert [p["value"] for p in points[:25]] == pytest.approx(groups.mean(axis=1).tolist())
    assert [p["dispersion"] for p in points[:25]] == pytest.approx(np.ptp(groups, axis=1).tolist())
    assert points[25]["value"] == pytest.approx(120.01)
    assert points[25]["dispersion"] == pytest.approx(0.2)
    assert points[25]["first_time"] < points[25]["last_time"] == points[25]["time"]
    assert points[25]["limit_version"] == 1
    rbar = float(np.ptp(groups, axis=1).mean())
    limits = body["limit_versions"][0]["limits"]
    assert limits["center"] == pytest.approx(float(groups.mean()), rel=1e-12)
    assert limits["ucl"] == pytest.approx(groups.mean() + 3 * rbar / D2_5 / math.sqrt(5), rel=1e-6)
    assert limits["dispersion_ucl"] == pytest.approx(2.114 * rbar, rel=1e-3)  # D4(5)
    assert (body["location_chart"], body["dispersion_chart"]) == ("xbar", "r")


def test_an_empty_range_is_an_empty_chart(client: TestClient) -> None:
    body = _chart(client, DIAMETER, period="24h")
    assert body["points"] == []
    assert body["segments"] == []
    assert body["truncated"] is False
    assert body["period"]["label"] == "24h"


def test_a_long_range_is_truncated_and_continues_from_next_cursor(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(charts, "MAX_POINTS", 10)
    values = _normal(25, 25.0, 0.01)
    _baseline(client, DIAMETER, values)
    first = _chart(client, DIAMETER)
    assert [p["value"] for p in first["points"]] == pytest.approx(values[:10])
    assert first["truncated"] is True
    assert "narrow the range" in first["notes"][0]
    second = _chart(client, DIAMETER, cursor=first["next_cursor"])
    assert [p["value"] for p in second["points"]] == pytest.approx(values[10:20])


def test_pages_neither_repeat_nor_skip_points_sharing_a_timestamp(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(charts, "MAX_POINTS", 10)
    stamp = (datetime.now(UTC) - timedelta(minutes=30)).isoformat()
    values = [25.0 + i * 0.001 for i in range(25)]
    rows = [{"characteristic": DIAMETER, "value": v, "time": stamp} for v in values]
    assert client.post("/api/v1/measurements", json={"measurements": rows}).status_code == 202
    seen: list[float] = []
    cursor = None
    for _ in range(5):
        body = _chart(client, DIAMETER, **({"cursor": cursor} if cursor else {}))
        seen += [p["value"] for p in body["points"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == pytest.approx(values)


def test_a_cursor_that_is_not_one_is_a_422(client: TestClient) -> None:
    response = client.get(f"/api/v1/characteristics/{DIAMETER}/chart", params={"cursor": "nope"})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("cursor:")


def test_capability_equals_spc_capability_with_a_histogram_and_fitted_normal(
    client: TestClient,
) -> None:
    values = _normal(60, 25.0, 0.01)
    _baseline(client, DIAMETER, values)
    response = client.get(f"/api/v1/characteristics/{DIAMETER}/capability")
    assert response.status_code == 200, response.text
    body = response.json()
    expected = capability(values, 24.95, 25.05, 25.0, 1, "mr")
    indices = body["indices"]
    for name in ("cp", "cpk", "pp", "ppk", "cpm", "ppm_expected", "normality_p", "mean"):
        assert indices[name] == pytest.approx(getattr(expected, name), rel=1e-12)
    assert indices["cpk_ci"] == pytest.approx(list(expected.cpk_ci or ()), rel=1e-12)
    assert (body["n"], body["capped"], body["period"]["label"]) == (60, False, "30d")
    hist = body["histogram"]
    assert sum(hist["counts"]) == 60
    mean, sd = float(np.mean(values)), float(np.std(values, ddof=1))
    mass = stats.norm.cdf(max(values), mean, sd) - stats.norm.cdf(min(values), mean, sd)
    assert sum(hist["expected"]) == pytest.approx(60 * mass, rel=1e-9)
    assert body["spec"] == {"lsl": 24.95, "usl": 25.05, "target": 25.0}
    assert len(body["normal"]["x"]) == len(body["normal"]["density"]) == 201


def test_capability_of_subgroups_uses_r_bar(client: TestClient) -> None:
    values = _normal(52, 120.0, 0.03, seed=4)
    _baseline(client, LENGTH, values)
    body = client.get(f"/api/v1/characteristics/{LENGTH}/capability").json()
    expected = capability(values[:50], 119.8, 120.2, 120.0, 5, "rbar")
    assert body["indices"]["sigma_within_method"] == "rbar"
    assert body["indices"]["cp"] == pytest.approx(expected.cp, rel=1e-12)
    assert (body["n"], body["values_unused"]) == (50, 2)


def test_capability_reads_only_the_most_recent_values_when_capped(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(charts, "MAX_CAPABILITY_VALUES", 10)
    values = _normal(40, 25.0, 0.01)
    start = datetime.now(UTC) - timedelta(minutes=30)
    _push(client, DIAMETER, values, start)
    # a short range gives one-second buckets, so reading starts near the last 10 values
    for params in ({}, {"start": start.isoformat()}):
        body = client.get(f"/api/v1/characteristics/{DIAMETER}/capability", params=params).json()
        assert (body["n"], body["capped"]) == (10, True)
        assert body["indices"]["cp"] == pytest.approx(
            capability(values[-10:], 24.95, 25.05, 25.0).cp, rel=1e-12
        )
        assert "most recent" in body["notes"][0]


def test_capability_without_data_is_a_422_naming_why(client: TestClient) -> None:
    response = client.get(f"/api/v1/characteristics/{DIAMETER}/capability?period=7d")
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "no good measurements" in response.json()["detail"]


def test_capability_of_data_without_variation_is_a_422(client: TestClient) -> None:
    _push(client, GAP, [1.5] * 10, datetime.now(UTC) - timedelta(hours=1))
    response = client.get(f"/api/v1/characteristics/{GAP}/capability")
    assert response.status_code == 422
    assert "no variation" in response.json()["detail"]


@pytest.mark.parametrize("read", ["chart", "capability"])
def test_an_unknown_characteristic_is_a_404(client: TestClient, read: str) -> None:
    response = client.get(f"/api/v1/characteristics/nope/{read}")
    assert response.status_code == 404
    assert "'nope'" in response.json()["detail"]


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "end"),
        ({"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "end"),
        ({"period": "7d", "start": "2026-01-01T00:00:00Z"}, "period"),
        ({"period": "a week"}, "period"),
        ({"start": "2026-01-01T00:00:00"}, "start"),  # no UTC offset
    ],
)
@pytest.mark.parametrize("read", ["chart", "capability"])
def test_a_bad_range_is_a_422_naming_the_parameter(
    client: TestClient, read: str, params: dict[str, str], named: str
) -> None:
    response = client.get(f"/api/v1/characteristics/{DIAMETER}/{read}", params=params)
    assert response.status_code == 422
    assert named in response.json()["detail"]


@pytest.mark.parametrize("read", ["chart", "capability?period=7d"])
def test_a_viewer_may_read_and_an_ingest_key_may_not(
    client: TestClient, settings: Settings, read: str
) -> None:
    url = f"/api/v1/characteristics/{DIAMETER}/{read}"
    viewer = client.get(url, headers=key_headers(settings, Role.VIEWER))
    assert viewer.status_code in (200, 422)  # 422: the capability of no data
    assert client.get(url, headers=key_headers(settings, Role.INGEST)).status_code == 403


def test_clearly_non_normal_data_add_the_iso_percentile_indices(client: TestClient) -> None:
    roughness = "line1.grinding.roughness"  # usl 0.80 only
    values = list(np.random.default_rng(9).lognormal(math.log(0.3), 0.5, 100))
    _push(client, roughness, values, datetime.now(UTC) - timedelta(hours=1))
    body = client.get(f"/api/v1/characteristics/{roughness}/capability").json()
    expected = capability(values, None, 0.8, 0.4)
    assert expected.percentile is not None
    percentile = body["indices"]["percentile"]
    assert percentile["method"] == expected.percentile.method
    assert percentile["cpk"] == pytest.approx(expected.percentile.cpk, rel=1e-12)
    assert body["indices"]["cp"] is None  # one-sided specification
    assert any("not normal" in note for note in body["notes"])
