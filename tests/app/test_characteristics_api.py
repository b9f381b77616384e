"""Characteristics created, edited and deleted through the API; status ETags; limits."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app import Settings, create_app
from app.auth import Role
from tests.support.api import key_headers

CONFIGURED = "line1.turning.diameter"
NEW = "line1.press.force"
BODY = {
    "id": NEW,
    "name": "Press-fit force",
    "unit": "kN",
    "line": "line1",
    "process": "press",
    "lsl": 11.0,
    "usl": 13.0,
    "target": 12.0,
}


def _push(client: TestClient, char: str, values: list[float], start: datetime) -> None:
    rows = [
        {"characteristic": char, "value": v, "time": (start + timedelta(seconds=i)).isoformat()}
        for i, v in enumerate(values)
    ]
    response = client.post("/api/v1/measurements", json={"measurements": rows})
    assert response.status_code == 202, response.text


def _normal(n: int, mean: float = 12.0, sd: float = 0.1, seed: int = 5) -> list[float]:
    return [float(v) for v in np.random.default_rng(seed).normal(mean, sd, n)]


def test_a_created_characteristic_is_listed_charted_and_survives_a_restart(
    client: TestClient, settings: Settings
) -> None:
    created = client.post("/api/v1/characteristics", json=BODY)
    assert created.status_code == 201
    assert created.headers["location"] == f"/api/v1/characteristics/{NEW}"
    assert created.json()["origin"] == "api"
    _push(client, NEW, _normal(30), datetime.now(UTC) - timedelta(hours=1))
    status = client.get(f"/api/v1/characteristics/{NEW}/status").json()
    assert status["limits"]["version"] == 1
    with TestClient(create_app(settings), headers=key_headers(settings)) as again:
        listed = again.get("/api/v1/characteristics", params={"process": "press"}).json()
        assert [c["id"] for c in listed] == [NEW]
        assert (
            again.get(f"/api/v1/characteristics/{NEW}/status").json()["limits"]
            == (status["limits"])
        )


def test_creating_a_taken_id_is_a_409(client: TestClient) -> None:
    assert (
        client.post("/api/v1/characteristics", json={**BODY, "id": CONFIGURED}).status_code == 409
    )


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"lsl": 14.0}, "body", "must be below usl"),
        ({"chart": "pie"}, "body.chart", "Input should be"),
        ({"rules": "strict"}, "body", "unknown preset"),
        ({"source": {"mqtt": {"topic": "t", "field": "f"}}}, "body.source", "POST /api/v1"),
        ({"id": "bad id!"}, "body.id", "String should match"),
        ({"colour": "red"}, "body.colour", "Extra inputs"),
    ],
)
def test_a_bad_definition_is_a_422_naming_the_field(
    client: TestClient, change: dict[str, Any], field: str, words: str
) -> None:
    response = client.post("/api/v1/characteristics", json={**BODY, **change})
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert any(e["field"] == field and words in e["problem"] for e in errors), errors


def test_a_subgroup_size_that_does_not_divide_the_window_is_a_422(client: TestClient) -> None:
    body = {**BODY, "chart": "xbar_r", "subgroup_size": 16}
    response = client.post("/api/v1/characteristics", json=body)
    assert response.status_code == 422
    assert response.json()["detail"].startswith("subgroup_size: 16 does not divide")
    assert client.get(f"/api/v1/characteristics/{NEW}").status_code == 404


def test_editing_spec_limits_changes_capability_but_keeps_the_control_limits(
    client: TestClient,
) -> None:
    client.post("/api/v1/characteristics", json=BODY)
    _push(client, NEW, _normal(40), datetime.now(UTC) - timedelta(hours=1))
    before = client.get(f"/api/v1/characteristics/{NEW}/status").json()
    edited = client.patch(f"/api/v1/characteristics/{NEW}", json={"usl": 12.5, "name": "Force"})
    assert edited.status_code == 200
    assert edited.json()["usl"] == 12.5
    after = client.get(f"/api/v1/characteristics/{NEW}/status").json()
    assert after["limits"] == before["limits"]
    assert after["capability"]["n"] == before["capability"]["n"]
    cap = after["capability"]
    assert cap["cpk"] == pytest.approx((12.5 - cap["mean"]) / (3 * cap["sigma_within"]))
    assert cap["cpk"] < before["capability"]["cpk"]


def test_an_edit_that_makes_the_definition_inconsistent_is_a_422(client: TestClient) -> None:
    client.post("/api/v1/characteristics", json=BODY)
    response = client.patch(f"/api/v1/characteristics/{NEW}", json={"usl": 10.0})
    assert response.status_code == 422
    assert "lsl (11.0) must be below usl (10.0)" in response.json()["detail"]


def test_changing_the_chart_is_refused_because_the_limits_belong_to_it(client: TestClient) -> None:
    client.post("/api/v1/characteristics", json=BODY)
    response = client.patch(
        f"/api/v1/characteristics/{NEW}", json={"chart": "xbar_r", "subgroup_size": 5}
    )
    assert response.status_code == 409
    assert "create a new characteristic" in response.json()["detail"]


def test_plant_file_characteristics_cannot_be_edited_or_deleted_through_the_api(
    client: TestClient,
) -> None:
    for response in (
        client.patch(f"/api/v1/characteristics/{CONFIGURED}", json={"usl": 30.0}),
        client.delete(f"/api/v1/characteristics/{CONFIGURED}"),
    ):
        assert response.status_code == 409
        assert "defined in the plant file" in response.json()["detail"]


def test_a_deleted_characteristic_is_gone_and_its_new_points_are_refused(
    client: TestClient,
) -> None:
    client.post("/api/v1/characteristics", json=BODY)
    rows = [{"characteristic": NEW, "value": 12.0, "quality": "bad",
             "time": (datetime.now(UTC) - timedelta(minutes=1)).isoformat()}]  # fmt: skip
    assert client.post("/api/v1/measurements", json={"measurements": rows}).status_code == 202
    feed = client.app.state.service.warnings  # type: ignore[attr-defined]
    client.portal.call(feed.tell, feed.evaluate_due(force=True))  # type: ignore[union-attr]
    assert [w.kind for w in feed.active(NEW)] == ["bad_quality"]
    assert client.delete(f"/api/v1/characteristics/{NEW}").status_code == 204
    assert feed.active(NEW) == []
    assert client.get("/api/v1/warnings").json() == []
    assert client.get(f"/api/v1/characteristics/{NEW}").status_code == 404
    rows = [{"characteristic": NEW, "value": 12.0, "time": datetime.now(UTC).isoformat()}]
    refused = client.post("/api/v1/measurements", json={"measurements": rows})
    assert refused.status_code == 422
    assert client.delete(f"/api/v1/characteristics/{NEW}").status_code == 404


def test_a_viewer_cannot_create_edit_or_delete(client: TestClient, settings: Settings) -> None:
    viewer = key_headers(settings, Role.VIEWER)
    client.post("/api/v1/characteristics", json=BODY)
    assert client.post("/api/v1/characteristics", json=BODY, headers=viewer).status_code == 403
    assert (
        client.patch(f"/api/v1/characteristics/{NEW}", json={}, headers=viewer).status_code == 403
    )
    assert client.delete(f"/api/v1/characteristics/{NEW}", headers=viewer).status_code == 403


def _first_grades_computed(client: TestClient) -> None:
    """The grade keeper's first pass (at start) changes every status once: wait for it."""
    keeper = client.app.state.service.grades  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    while keeper.latest is None:
        assert time.monotonic() < deadline, "grades were never computed"
        time.sleep(0.01)


def test_status_answers_304_while_unchanged_and_200_after_a_new_point(client: TestClient) -> None:
    url = f"/api/v1/characteristics/{CONFIGURED}/status"
    _first_grades_computed(client)
    first = client.get(url)
    etag = first.headers["etag"]
    unchanged = client.get(url, headers={"If-None-Match": etag})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["etag"] == etag
    assert client.get(url, headers={"If-None-Match": f'"other", W/{etag}'}).status_code == 304
    _push(client, CONFIGURED, [25.0], datetime.now(UTC))
    changed = client.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert changed.json()["last"]["value"] == 25.0


def test_status_shows_the_cpk_interval_and_the_grade(client: TestClient) -> None:
    # 100 values: enough for the Cpk and for the defect rate the grade also needs
    _push(client, CONFIGURED, _normal(100, 25.0, 0.01), datetime.now(UTC) - timedelta(hours=1))
    client.portal.call(client.app.state.service.grades.refresh)  # type: ignore[attr-defined]
    status = client.get(f"/api/v1/characteristics/{CONFIGURED}/status").json()
    cap = status["capability"]
    lower, upper = cap["cpk_ci"]
    half = 1.959964 * np.sqrt(1 / (9 * 100) + cap["cpk"] ** 2 / (2 * 99))  # Montgomery 8.21
    assert lower == pytest.approx(cap["cpk"] - half, rel=1e-5)
    assert upper == pytest.approx(cap["cpk"] + half, rel=1e-5)
    assert status["grade"]["limiting_metric"] == "cpk"
    assert status["grade"]["grade"] in (1, 2, 3, 4, 5)


@pytest.mark.anyio
async def test_points_arriving_during_an_edit_are_charted_once(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    import httpx

    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=transport, base_url="http://t", headers=key_headers(settings)
        ) as api,
    ):
        await api.post("/api/v1/characteristics", json=BODY)
        start = datetime.now(UTC) - timedelta(hours=1)

        def rows(values: list[float], offset: int) -> dict[str, Any]:
            return {
                "measurements": [
                    {"characteristic": NEW, "value": v,
                     "time": (start + timedelta(seconds=offset + i)).isoformat()}
                    for i, v in enumerate(values)
                ]
            }  # fmt: skip

        assert (
            await api.post("/api/v1/measurements", json=rows(_normal(10), 0))
        ).status_code == 202
        store = app.state.service.store
        slow_read = store.active_limits

        async def slow(characteristic: str) -> Any:  # a database round trip under load
            await asyncio.sleep(0.3)
            return await slow_read(characteristic)

        monkeypatch.setattr(store, "active_limits", slow)
        edit = asyncio.create_task(api.patch(f"/api/v1/characteristics/{NEW}", json={"usl": 13.5}))
        await asyncio.sleep(0.05)
        push = await api.post("/api/v1/measurements", json=rows(_normal(5, seed=6), 100))
        assert (await edit).status_code == 200
        assert push.status_code == 202
        status = (await api.get(f"/api/v1/characteristics/{NEW}/status")).json()
        assert status["baseline"]["collected"] == 15


def test_a_cached_status_changes_with_alarms_limits_and_grades_not_only_points(
    client: TestClient,
) -> None:
    url = f"/api/v1/characteristics/{CONFIGURED}/status"
    values = [*_normal(30, 25.0, 0.01), 25.3]
    _push(client, CONFIGURED, values, datetime.now(UTC) - timedelta(hours=1))
    first = client.get(url)
    [alarm] = first.json()["open_alarms"]
    acked = client.post(f"/api/v1/alarms/{alarm['id']}/acknowledge", json={"comment": "seen"})
    assert acked.status_code == 200
    after_ack = client.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert after_ack.status_code == 200
    states = {a["id"]: a["state"] for a in after_ack.json()["open_alarms"]}
    assert states[alarm["id"]] == "acknowledged"
    body = {
        "start": (datetime.now(UTC) - timedelta(hours=2)).isoformat(),
        "end": datetime.now(UTC).isoformat(),
        "reason": "cache test",
    }
    assert (
        client.post(f"{url.removesuffix('/status')}/limits/recalculate", json=body).status_code
        == 201
    )
    after_limits = client.get(url, headers={"If-None-Match": after_ack.headers["etag"]})
    assert after_limits.json()["limits"]["version"] == 2
    client.portal.call(client.app.state.service.grades.refresh)  # type: ignore[attr-defined]
    after_grades = client.get(url, headers={"If-None-Match": after_limits.headers["etag"]})
    assert after_grades.status_code == 200
    assert after_grades.json()["grade"] is not None


def test_a_process_filter_takes_the_qualified_id_of_the_hierarchy_too(client: TestClient) -> None:
    bare = client.get("/api/v1/characteristics", params={"process": "turning"}).json()
    qualified = client.get("/api/v1/characteristics", params={"process": "line1.turning"}).json()
    assert [c["id"] for c in qualified] == [c["id"] for c in bare]
    assert {c["id"] for c in qualified} == {"line1.turning.diameter", "line1.turning.length"}
