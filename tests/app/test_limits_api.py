"""Limit versions and their audited recalculation through the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app import Settings, create_app
from app.auth import KeyRing, Role
from spc import control_limits
from tests.support.api import key_headers

CHAR = "line1.turning.diameter"  # I-MR in the demo plant
T0 = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)


def _push(client: TestClient, values: np.ndarray, start: datetime) -> None:
    rows = [
        {
            "characteristic": CHAR,
            "value": float(v),
            "time": (start + timedelta(minutes=i)).isoformat(),
        }
        for i, v in enumerate(values)
    ]
    assert client.post("/api/v1/measurements", json={"measurements": rows}).status_code == 202


def _engineer(settings: Settings, name: str = "Li Wei") -> dict[str, str]:
    _, token = KeyRing(settings.keys_file).create(name, Role.ENGINEER)
    return {"Authorization": f"Bearer {token}"}


def test_recalculated_limits_are_the_textbook_limits_of_the_period_and_audited(
    client: TestClient, settings: Settings
) -> None:
    values = np.random.default_rng(11).normal(25.0, 0.01, 60)
    values[40] = 25.2  # an assignable cause inside the new baseline, excluded by the engineer
    _push(client, values, T0)
    body = {
        "start": (T0 + timedelta(minutes=30)).isoformat(),
        "end": (T0 + timedelta(minutes=60)).isoformat(),
        "reason": "new spindle fitted",
        "exclude": [(T0 + timedelta(minutes=40)).isoformat()],
    }
    response = client.post(
        f"/api/v1/characteristics/{CHAR}/limits/recalculate", json=body, headers=_engineer(settings)
    )
    assert response.status_code == 201, response.text
    new = response.json()
    expected = control_limits(np.delete(values[30:60], 10), "imr")
    assert new["version"] == 2
    assert new["center"] == pytest.approx(expected.center, rel=1e-12)
    assert new["ucl"] == pytest.approx(expected.ucl, rel=1e-12)
    assert new["lcl"] == pytest.approx(expected.lcl, rel=1e-12)
    assert new["baseline_n"] == 29
    assert new["author"] == "Li Wei"
    assert new["reason"].startswith("new spindle fitted (baseline ")
    assert "29 of 30 points" in new["reason"]
    history = client.get(f"/api/v1/characteristics/{CHAR}/limits").json()
    assert [(h["version"], h["author"], h["active"]) for h in history] == [
        (1, "system", False),
        (2, "Li Wei", True),
    ]
    status = client.get(f"/api/v1/characteristics/{CHAR}/status").json()
    assert status["limits"]["version"] == 2


def test_recalculated_limits_survive_a_restart(client: TestClient, settings: Settings) -> None:
    _push(client, np.random.default_rng(2).normal(25.0, 0.01, 40), T0)
    body = {
        "start": T0.isoformat(),
        "end": (T0 + timedelta(hours=1)).isoformat(),
        "reason": "x" * 3,
    }
    url = f"/api/v1/characteristics/{CHAR}/limits/recalculate"
    assert client.post(url, json=body).status_code == 201
    with TestClient(create_app(settings), headers=key_headers(settings)) as again:
        assert again.get(f"/api/v1/characteristics/{CHAR}/status").json()["limits"]["version"] == 2


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"end": T0.isoformat()}, "end: must be after start"),
        ({"start": "2020-01-01T00:00:00Z", "end": "2020-01-02T00:00:00Z"}, "0 good points"),
        ({"exclude": ["2026-11-02T06:00:30Z"]}, "exclude[0]: no good point at"),
        ({"reason": ""}, "body.reason"),
        ({"start": "2026-11-02T06:00:00"}, "body.start"),
    ],
)
def test_a_baseline_that_cannot_give_limits_is_a_422_naming_why(
    client: TestClient, change: dict[str, object], words: str
) -> None:
    _push(client, np.random.default_rng(3).normal(25.0, 0.01, 30), T0)
    body = {"start": T0.isoformat(), "end": (T0 + timedelta(hours=1)).isoformat(), "reason": "why"}
    response = client.post(
        f"/api/v1/characteristics/{CHAR}/limits/recalculate", json={**body, **change}
    )
    assert response.status_code == 422
    assert words in response.text


def test_a_baseline_without_variation_is_refused_and_the_old_limits_stay(
    client: TestClient,
) -> None:
    _push(client, np.random.default_rng(4).normal(25.0, 0.01, 30), T0)
    later = T0 + timedelta(hours=2)
    _push(client, np.full(10, 25.0), later)
    body = {
        "start": later.isoformat(),
        "end": (later + timedelta(hours=1)).isoformat(),
        "reason": "r" * 3,
    }
    response = client.post(f"/api/v1/characteristics/{CHAR}/limits/recalculate", json=body)
    assert response.status_code == 422
    assert "no variation" in response.json()["detail"]
    assert client.get(f"/api/v1/characteristics/{CHAR}/status").json()["limits"]["version"] == 1


def test_only_engineers_recalculate(client: TestClient, settings: Settings) -> None:
    body = {"start": T0.isoformat(), "end": (T0 + timedelta(hours=1)).isoformat(), "reason": "why"}
    url = f"/api/v1/characteristics/{CHAR}/limits/recalculate"
    for role in (Role.VIEWER, Role.OPERATOR, Role.INGEST):
        assert client.post(url, json=body, headers=key_headers(settings, role)).status_code == 403


def test_xbar_r_limits_are_recalculated_from_whole_subgroups(
    tmp_path: Path, demo_config_path: Path
) -> None:
    text = demo_config_path.read_text().replace(
        "id: line1.turning.length",
        "id: line1.turning.length\n            chart: xbar_r\n            subgroup_size: 5",
        1,
    )
    config = tmp_path / "plant.yaml"
    config.write_text(text)
    settings = Settings(config=config, data_dir=tmp_path / "data")
    values = np.random.default_rng(9).normal(120.0, 0.05, 53)
    with TestClient(create_app(settings), headers=key_headers(settings)) as client:
        rows = [
            {"characteristic": "line1.turning.length", "value": float(v),
             "time": (T0 + timedelta(seconds=i)).isoformat()}
            for i, v in enumerate(values)
        ]  # fmt: skip
        assert client.post("/api/v1/measurements", json={"measurements": rows}).status_code == 202
        body = {
            "start": T0.isoformat(),
            "end": (T0 + timedelta(hours=1)).isoformat(),
            "reason": "why",
        }
        response = client.post(
            "/api/v1/characteristics/line1.turning.length/limits/recalculate", json=body
        )
    assert response.status_code == 201, response.text
    expected = control_limits(values[:50], "xbar_r", 5)  # 3 trailing points: no whole subgroup
    assert response.json()["ucl"] == pytest.approx(expected.ucl, rel=1e-12)
    assert response.json()["mr_ucl"] == pytest.approx(expected.dispersion.ucl, rel=1e-12)
    assert response.json()["baseline_n"] == 10


def test_a_refused_recalculation_during_phase_one_leaves_no_limits_behind(
    client: TestClient,
) -> None:
    _push(client, np.full(10, 25.0), T0)  # Phase I, and no variation at all
    body = {"start": T0.isoformat(), "end": (T0 + timedelta(hours=1)).isoformat(), "reason": "r1"}
    response = client.post(f"/api/v1/characteristics/{CHAR}/limits/recalculate", json=body)
    assert response.status_code == 422
    status = client.get(f"/api/v1/characteristics/{CHAR}/status").json()
    assert status["limits"] is None
    assert status["baseline"]["collected"] == 10
    assert client.get(f"/api/v1/characteristics/{CHAR}/limits").json() == []


@pytest.mark.anyio
async def test_concurrent_recalculations_take_consecutive_versions_and_the_last_is_in_force(
    settings: Settings,
) -> None:
    import asyncio

    import httpx

    app = create_app(settings)
    headers = key_headers(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as api,
    ):
        values = np.random.default_rng(5).normal(25.0, 0.01, 40)
        rows = [
            {
                "characteristic": CHAR,
                "value": float(v),
                "time": (T0 + timedelta(minutes=i)).isoformat(),
            }
            for i, v in enumerate(values)
        ]
        assert (
            await api.post("/api/v1/measurements", json={"measurements": rows})
        ).status_code == 202
        body = {
            "start": T0.isoformat(),
            "end": (T0 + timedelta(hours=1)).isoformat(),
            "reason": "par",
        }
        url = f"/api/v1/characteristics/{CHAR}/limits/recalculate"
        answers = await asyncio.gather(*(api.post(url, json=body) for _ in range(8)))
        assert sorted(a.json()["version"] for a in answers) == list(range(2, 10))
        history = (await api.get(f"/api/v1/characteristics/{CHAR}/limits")).json()
        assert [h["version"] for h in history] == list(range(1, 10))
        assert [h["version"] for h in history if h["active"]] == [9]
        status = (await api.get(f"/api/v1/characteristics/{CHAR}/status")).json()
        assert status["limits"]["version"] == 9
