"""API keys and roles over the real app: who may read, push, acknowledge and configure."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app import Settings, create_app
from app.auth import KeyRing, Role, grants
from app.settings import AuthSettings, HttpSettings
from tests.support.api import key_headers

CHAR = "line1.turning.diameter"
NEW_CHAR = {"id": "line1.press.force", "line": "line1", "process": "press", "lsl": 1, "usl": 2}
PUSH = {"measurements": [{"characteristic": CHAR, "value": 25.0, "time": "2026-11-01T08:00:00Z"}]}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("held", "needed", "allowed"),
    [
        (Role.VIEWER, Role.VIEWER, True),
        (Role.VIEWER, Role.OPERATOR, False),
        (Role.OPERATOR, Role.VIEWER, True),
        (Role.OPERATOR, Role.ENGINEER, False),
        (Role.ENGINEER, Role.OPERATOR, True),
        (Role.ENGINEER, Role.INGEST, False),
        (Role.INGEST, Role.VIEWER, False),
        (Role.INGEST, Role.INGEST, True),
        (Role.ADMIN, Role.INGEST, True),
        (Role.ADMIN, Role.ENGINEER, True),
    ],
)
def test_each_role_grants_its_rank_and_ingest_grants_only_pushing(
    held: Role, needed: Role, allowed: bool
) -> None:
    assert grants(held, needed) is allowed


def test_a_call_without_a_key_is_a_401_that_says_how_to_get_one(client: TestClient) -> None:
    response = client.get("/api/v1/characteristics")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "Bearer"
    assert "spcmon keys create" in response.json()["detail"]


@pytest.mark.parametrize("token", ["spc_abc_def", "not-a-key", "spc_", "spc_x"])
def test_an_unknown_or_malformed_key_is_a_401(client: TestClient, token: str) -> None:
    response = client.get("/api/v1/characteristics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert "not valid" in response.json()["detail"]


def test_the_key_may_come_in_the_x_api_key_header(client: TestClient, settings: Settings) -> None:
    token = key_headers(settings, Role.VIEWER)["Authorization"].removeprefix("Bearer ")
    assert client.get("/api/v1/characteristics", headers={"X-API-Key": token}).status_code == 200


@pytest.mark.parametrize(
    ("role", "read", "push", "create"),
    [
        (Role.VIEWER, 200, 403, 403),
        (Role.OPERATOR, 200, 403, 403),
        (Role.ENGINEER, 200, 403, 201),
        (Role.INGEST, 403, 202, 403),
        (Role.ADMIN, 200, 202, 201),
    ],
)
def test_each_role_is_allowed_and_refused_what_its_rank_says(
    client: TestClient, settings: Settings, role: Role, read: int, push: int, create: int
) -> None:
    headers = key_headers(settings, role)
    assert client.get(f"/api/v1/characteristics/{CHAR}/status", headers=headers).status_code == read
    assert client.get("/metrics", headers=headers).status_code == read
    assert client.post("/api/v1/measurements", json=PUSH, headers=headers).status_code == push
    created = client.post("/api/v1/characteristics", json=NEW_CHAR, headers=headers)
    assert created.status_code == create
    if create == 403:
        detail = created.json()["detail"]
        assert "role; key 'test-" in detail
        assert detail.endswith(f"has {role.value}")


def test_a_revoked_key_stops_working_without_a_restart(
    client: TestClient, settings: Settings
) -> None:
    ring = KeyRing(settings.keys_file)
    _, token = ring.create("line-dashboard", Role.VIEWER)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/characteristics", headers=headers).status_code == 200
    assert ring.revoke("line-dashboard")
    assert client.get("/api/v1/characteristics", headers=headers).status_code == 401


def test_keys_are_kept_hashed_in_a_file_only_the_owner_reads(settings: Settings) -> None:
    key, token = KeyRing(settings.keys_file).create("mes", Role.INGEST)
    text = settings.keys_file.read_text()
    assert token.split("_", 2)[2] not in text
    assert key.digest in text
    assert stat.S_IMODE(settings.keys_file.stat().st_mode) == 0o600
    assert KeyRing(settings.keys_file).verify(token) == key


def test_two_keys_cannot_share_a_name(settings: Settings) -> None:
    ring = KeyRing(settings.keys_file)
    ring.create("mes", Role.INGEST)
    with pytest.raises(ValueError, match="a key named 'mes' exists"):
        ring.create("mes", Role.VIEWER)


def test_anonymous_read_lets_reads_through_but_not_writes(
    tmp_path: Path, demo_config_path: Path
) -> None:
    settings = Settings(
        config=demo_config_path, data_dir=tmp_path, auth=AuthSettings(anonymous_read=True)
    )
    with TestClient(create_app(settings)) as client:
        assert client.get(f"/api/v1/characteristics/{CHAR}/status").status_code == 200
        refused = client.post("/api/v1/measurements", json=PUSH)
        assert refused.status_code == 403
        assert "anonymous callers have viewer" in refused.json()["detail"]


def test_health_and_the_dashboard_page_need_no_key(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/").status_code == 200


def test_an_unknown_route_is_a_problem_naming_the_path(client: TestClient) -> None:
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert (
        response.json()["detail"] == "no route /api/v1/nothing-here; the API is described at /docs"
    )


def test_a_body_over_the_size_limit_is_a_413(tmp_path: Path, demo_config_path: Path) -> None:
    settings = Settings(
        config=demo_config_path, data_dir=tmp_path, http=HttpSettings(max_body_bytes=2048)
    )
    big = {"measurements": [{"characteristic": CHAR, "value": 25.0}] * 200}
    with TestClient(create_app(settings), headers=key_headers(settings)) as client:
        response = client.post("/api/v1/measurements", json=big)
        assert response.status_code == 413
        assert "SPCMON_HTTP__MAX_BODY_BYTES" in response.json()["detail"]
        chunks = (b"x" * 1024 for _ in range(4))  # no Content-Length: counted as it streams
        streamed = client.post(
            "/api/v1/measurements", content=chunks, headers={"Content-Type": "application/json"}
        )
        assert streamed.status_code == 413


def test_cors_allows_only_the_configured_origins(tmp_path: Path, demo_config_path: Path) -> None:
    settings = Settings(
        config=demo_config_path,
        data_dir=tmp_path,
        http=HttpSettings(cors_origins=["https://mes.plant.example"]),
    )
    with TestClient(create_app(settings)) as client:
        preflight = {"Access-Control-Request-Method": "GET"}
        ok = client.options(
            "/api/v1/characteristics", headers={"Origin": "https://mes.plant.example", **preflight}
        )
        assert ok.headers["access-control-allow-origin"] == "https://mes.plant.example"
        other = client.options(
            "/api/v1/characteristics", headers={"Origin": "https://evil.example", **preflight}
        )
        assert "access-control-allow-origin" not in other.headers


def test_readiness_reports_each_check_without_a_key(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["checks"]["store"] == "ok"
    assert body["status"] == "ok"
