"""The status fast path answers exactly as the routed GET .../status would, or not at all.

Each request is sent twice to the same running app, once with the fast path and once
without (``SpcmonApp.fast_status``); status, headers and body must be identical, and the
fast path must have answered just the requests it is meant to answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from starlette.types import Scope, Send

import app.main
from app import Settings, create_app
from app.auth import Role
from app.wiring import Service
from tests.support.api import key_headers, wait_for_grades

CHAR = "line1.turning.diameter"
STATUS = f"/api/v1/characteristics/{CHAR}/status"


@pytest.fixture
def answered(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether the fast path answered, per request (it still does the work itself)."""
    seen: list[bool] = []
    real = app.main.answer_status

    async def recording(service: Service, scope: Scope, send: Send) -> bool:
        seen.append(await real(service, scope, send))
        return seen[-1]

    monkeypatch.setattr(app.main, "answer_status", recording)
    return seen


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The demo app with one characteristic past its baseline and an open incident."""
    with TestClient(create_app(settings), headers=key_headers(settings)) as test_client:
        start = datetime.now(UTC) - timedelta(hours=1)
        values = [*np.random.default_rng(3).normal(25.0, 0.01, 30), 25.2]
        rows = [
            {"characteristic": CHAR, "value": v, "time": (start + timedelta(seconds=i)).isoformat()}
            for i, v in enumerate(values)
        ]
        pushed = test_client.post("/api/v1/measurements", json={"measurements": rows})
        assert pushed.json()["accepted"] == len(values)
        wait_for_grades(test_client)
        yield test_client


def _both_ways(client: TestClient, path: str, headers: dict[str, str]) -> tuple[Any, Any]:
    service_app = client.app
    assert isinstance(service_app, app.main.SpcmonApp)
    fast = client.get(path, headers=headers)
    service_app.fast_status = False
    try:
        routed = client.get(path, headers=headers)
    finally:
        service_app.fast_status = True
    return fast, routed


def _same(fast: Any, routed: Any) -> None:
    assert fast.status_code == routed.status_code
    assert sorted(fast.headers.items()) == sorted(routed.headers.items())
    assert fast.content == routed.content


def test_a_status_answer_and_its_304_are_the_routes_own(
    client: TestClient, answered: list[bool]
) -> None:
    fast, routed = _both_ways(client, STATUS, {})
    _same(fast, routed)
    assert fast.status_code == 200
    assert fast.json()["open_alarms"]
    assert fast.json()["limits"]["version"] == 1
    etag = fast.headers["etag"]
    for sent in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        fast, routed = _both_ways(client, STATUS, {"If-None-Match": sent})
        _same(fast, routed)
        assert fast.status_code == 304
    fast, routed = _both_ways(client, STATUS, {"If-None-Match": '"stale"'})
    _same(fast, routed)
    assert fast.status_code == 200
    assert answered == [True] * 6


def test_keys_are_read_as_the_route_reads_them(
    client: TestClient, settings: Settings, answered: list[bool]
) -> None:
    viewer = key_headers(settings, Role.VIEWER)["Authorization"].removeprefix("Bearer ")
    ways = [
        ({"Authorization": f"bearer  {viewer}"}, 200),
        ({"X-API-Key": viewer}, 200),
        ({"Authorization": "Basic dXNlcjpwdw==", "X-API-Key": viewer}, 200),
        (key_headers(settings, Role.INGEST), 403),
        ({"Authorization": "Bearer spc_nope_nope"}, 401),
        ({"Authorization": ""}, 401),
    ]
    for headers, expected in ways:
        fast, routed = _both_ways(client, STATUS, headers)
        _same(fast, routed)
        assert fast.status_code == expected, headers
    assert answered == [True, True, True, False, False, False]


def test_everything_else_takes_the_routed_way(client: TestClient, answered: list[bool]) -> None:
    cases = [
        ("/api/v1/characteristics/nope/status", {}, 404),
        (STATUS, {"Origin": "http://dashboard.example"}, 200),
        ("/api/v1/characteristics//status", {}, 404),
        (f"/api/v1/characteristics/{CHAR}/status/extra", {}, 404),
    ]
    for path, headers, expected in cases:
        fast, routed = _both_ways(client, path, headers)
        _same(fast, routed)
        assert fast.status_code == expected, path
    assert answered == [False] * len(cases)
    head = client.head(STATUS)
    assert head.status_code in (200, 405)  # whatever the router says, not the fast path
    assert answered[-1] is False


def test_anonymous_read_is_honoured(tmp_path: Any, demo_config_path: Any) -> None:
    settings = Settings(
        config=demo_config_path, data_dir=tmp_path / "data", auth={"anonymous_read": True}
    )
    with TestClient(create_app(settings)) as client:
        wait_for_grades(client)
        fast, routed = _both_ways(client, STATUS, {})
        _same(fast, routed)
        assert fast.status_code == 200


def test_an_incident_change_renews_the_status_of_each_characteristic_it_concerns(
    client: TestClient,
) -> None:
    other = "line1.turning.length"
    before = {c: client.get(f"/api/v1/characteristics/{c}/status").json() for c in (CHAR, other)}
    service = client.app.state.service  # type: ignore[attr-defined]
    [incident] = service.alarms.open_alarms(CHAR)
    grouped = replace(incident, details=replace(incident.details, characteristics=(CHAR, other)))
    service.alarms._open[incident.id] = grouped  # as when the incident absorbed a signal
    service.monitor.publish_alarm(grouped)  # what the manager tells after saving it

    after = client.get(f"/api/v1/characteristics/{other}/status").json()
    assert not before[other]["open_alarms"]
    assert [a["id"] for a in after["open_alarms"]] == [incident.id]


def test_a_root_path_is_honoured(client: TestClient, answered: list[bool]) -> None:
    """Behind a proxy that serves the API under a prefix (uvicorn ``--root-path /spc``),
    the prefix stays in the path and the router matches what follows it."""
    client._transport.root_path = "/spc"  # type: ignore[attr-defined]
    fast, routed = _both_ways(client, f"/spc{STATUS}", {})
    _same(fast, routed)
    assert fast.status_code == 200
    assert fast.json()["characteristic"]["id"] == CHAR
    fast, routed = _both_ways(client, "/spc/api/v1/characteristics/nope/status", {})
    _same(fast, routed)
    assert fast.status_code == 404
    assert answered == [True, False]
