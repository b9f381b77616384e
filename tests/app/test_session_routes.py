"""GET /api/v1/whoami and GET /api/v1/status (every tile's status in one answer)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app import Settings, create_app
from app.auth import Role
from tests.support.api import key_headers, wait_for_grades

CHAR = "line1.turning.diameter"


@pytest.mark.parametrize(
    ("role", "granted"),
    [
        (Role.VIEWER, ["viewer"]),
        (Role.OPERATOR, ["viewer", "operator"]),
        (Role.ENGINEER, ["viewer", "operator", "engineer"]),
        (Role.INGEST, ["ingest"]),
        (Role.ADMIN, ["viewer", "operator", "engineer", "ingest", "admin"]),
    ],
)
def test_whoami_names_the_key_and_what_it_may_do(
    client: TestClient, settings: Settings, role: Role, granted: list[str]
) -> None:
    answer = client.get("/api/v1/whoami", headers=key_headers(settings, role))
    assert answer.status_code == 200
    body = answer.json()
    assert body["name"].startswith(f"test-{role.value}-")
    assert (body["role"], body["anonymous"]) == (role.value, False)
    assert sorted(body["grants"]) == sorted(granted)


def test_whoami_without_a_key(client: TestClient, tmp_path: Any, demo_config_path: Any) -> None:
    refused = client.get("/api/v1/whoami", headers={"Authorization": ""})
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    settings = Settings(
        config=demo_config_path, data_dir=tmp_path / "open", auth={"anonymous_read": True}
    )
    with TestClient(create_app(settings)) as anonymous:
        body = anonymous.get("/api/v1/whoami").json()
    assert body == {"name": "anonymous", "role": "viewer", "anonymous": True, "grants": ["viewer"]}


def _push(client: TestClient, values: list[float], start: datetime) -> None:
    rows = [
        {"characteristic": CHAR, "value": v, "time": (start + timedelta(seconds=i)).isoformat()}
        for i, v in enumerate(values)
    ]
    assert client.post("/api/v1/measurements", json={"measurements": rows}).status_code == 202


def test_all_statuses_in_one_answer_equal_the_single_ones(client: TestClient) -> None:
    _push(client, list(np.random.default_rng(5).normal(25.0, 0.01, 30)), datetime.now(UTC))
    everything = client.get("/api/v1/status")
    assert everything.status_code == 200
    ids = [c["id"] for c in client.get("/api/v1/characteristics").json()]
    statuses = everything.json()
    assert [s["characteristic"]["id"] for s in statuses] == ids
    for one in statuses:
        single = client.get(f"/api/v1/characteristics/{one['characteristic']['id']}/status")
        assert single.json() == one
    assert next(s for s in statuses if s["characteristic"]["id"] == CHAR)["limits"]["version"] == 1


def test_statuses_of_a_line_or_a_process(client: TestClient) -> None:
    def ids(query: str) -> list[str]:
        return [s["characteristic"]["id"] for s in client.get(f"/api/v1/status?{query}").json()]

    line2 = ids("line=line2")
    assert line2 == ["line2.vision.gap", "line2.vision.offset"]
    assert ids("process=line1.turning") == ids("line=line1&process=turning")
    assert CHAR in ids("process=line1.turning")
    assert all(i.startswith("line1.turning.") for i in ids("process=line1.turning"))
    assert ids("line=nowhere") == []


def test_the_etag_holds_until_a_characteristic_changes(client: TestClient) -> None:
    wait_for_grades(client)
    first = client.get("/api/v1/status?line=line1")
    etag = first.headers["etag"]
    unchanged = client.get("/api/v1/status?line=line1", headers={"If-None-Match": etag})
    assert (unchanged.status_code, unchanged.content) == (304, b"")
    assert unchanged.headers["etag"] == etag
    other_line = client.get("/api/v1/status?line=line2", headers={"If-None-Match": etag})
    assert other_line.status_code == 200
    _push(client, [25.0], datetime.now(UTC))
    changed = client.get("/api/v1/status?line=line1", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag


def test_statuses_need_the_viewer_role(client: TestClient, settings: Settings) -> None:
    refused = client.get("/api/v1/status", headers=key_headers(settings, Role.INGEST))
    assert refused.status_code == 403
    assert "viewer role" in refused.json()["detail"]
