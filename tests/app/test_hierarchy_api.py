"""The plant hierarchy with status summaries, over a real service (SQLite store)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app import Settings, create_app
from app.auth import Role
from app.summaries import (
    BASELINE,
    IN_CONTROL,
    OUT_OF_CONTROL,
    CharacteristicStatus,
    control_state,
    rolling_cpk,
    summarise,
)
from ingest import CharacteristicRecord
from tests.support.api import key_headers

DIAMETER = "line1.turning.diameter"
ROUGHNESS = "line1.grinding.roughness"
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), headers=key_headers(settings, Role.VIEWER)) as c:
        yield c


def _push(client: TestClient, settings: Settings, char: str, values: list[float]) -> None:
    rows = [
        {"characteristic": char, "value": v, "time": (T0 + timedelta(seconds=i)).isoformat()}
        for i, v in enumerate(values)
    ]
    headers = key_headers(settings, Role.INGEST)
    response = client.post("/api/v1/measurements", json={"measurements": rows}, headers=headers)
    assert response.status_code == 202, response.text


def _shift_diameter_and_settle_roughness(client: TestClient, settings: Settings) -> None:
    rng = np.random.default_rng(5)
    _push(client, settings, DIAMETER, [*rng.normal(25.0, 0.005, 25), 25.2])
    _push(client, settings, ROUGHNESS, list(rng.normal(0.4, 0.02, 30)))


def _counts(summary: dict[str, Any]) -> tuple[int, int, int, int]:
    keys = ("characteristics", "in_control", "out_of_control", "baseline")
    return tuple(summary[k] for k in keys)


def test_before_any_data_every_characteristic_is_in_baseline(client: TestClient) -> None:
    plant = client.get("/api/v1/plant").json()
    assert (plant["id"], plant["name"]) == ("demo", "Demo plant")
    assert _counts(plant["summary"]) == (5, 0, 0, 5)
    assert plant["summary"]["worst_cpk"] is None
    assert plant["summary"]["last_data_at"] is None
    assert [(line["id"], line["name"]) for line in plant["lines"]] == [
        ("line1", "Machining line 1"),
        ("line2", "Assembly line 2"),
    ]


def test_a_shift_counts_out_of_control_at_every_level(
    client: TestClient, settings: Settings
) -> None:
    _shift_diameter_and_settle_roughness(client, settings)
    alarms = client.get("/api/v1/alarms").json()
    assert alarms
    assert {a["characteristic"] for a in alarms} == {DIAMETER}

    plant = client.get("/api/v1/plant").json()
    assert _counts(plant["summary"]) == (5, 1, 1, 3)
    assert plant["summary"]["open_alarms"] == len(alarms)
    assert plant["summary"]["worst_cpk_characteristic"] in {DIAMETER, ROUGHNESS}
    line1, line2 = plant["lines"]
    assert _counts(line1["summary"]) == (3, 1, 1, 1)
    assert _counts(line2["summary"]) == (2, 0, 0, 2)
    assert line2["summary"]["open_alarms"] == 0

    line = client.get("/api/v1/lines/line1").json()
    assert line["summary"] == line1["summary"]
    by_id = {p["id"]: p for p in line["processes"]}
    assert list(by_id) == ["line1.turning", "line1.grinding"]
    assert _counts(by_id["line1.turning"]["summary"]) == (2, 0, 1, 1)
    assert _counts(by_id["line1.grinding"]["summary"]) == (1, 1, 0, 0)
    assert by_id["line1.turning"]["process"] == "turning"

    process = client.get("/api/v1/processes/line1.turning").json()
    states = {c["id"]: c["state"] for c in process["characteristics"]}
    assert states == {DIAMETER: OUT_OF_CONTROL, "line1.turning.length": BASELINE}
    diameter = process["characteristics"][0]
    assert diameter["open_alarms"] == len(alarms)
    assert diameter["last_value"] == 25.2
    assert datetime.fromisoformat(diameter["last_data_at"]) == T0 + timedelta(seconds=25)
    assert process["summary"]["last_data_at"] == diameter["last_data_at"]
    assert process["summary"]["worst_cpk_characteristic"] == DIAMETER
    assert process["summary"]["worst_cpk"] == diameter["cpk"]


def test_the_worst_cpk_is_the_lowest_rated_characteristic(
    client: TestClient, settings: Settings
) -> None:
    _shift_diameter_and_settle_roughness(client, settings)
    line = client.get("/api/v1/processes", params={"line": "line1"}).json()
    chars = [
        c
        for p in line
        for c in client.get(f"/api/v1/processes/{p['id']}").json()["characteristics"]
    ]
    rated = [c for c in chars if c["cpk"] is not None]
    worst = min(rated, key=lambda c: c["cpk"])
    plant = client.get("/api/v1/plant").json()["summary"]
    assert (plant["worst_cpk"], plant["worst_cpk_characteristic"]) == (worst["cpk"], worst["id"])


def test_lines_and_processes_are_listed_and_filtered(client: TestClient) -> None:
    assert [line["id"] for line in client.get("/api/v1/lines").json()] == ["line1", "line2"]
    processes = client.get("/api/v1/processes").json()
    assert [p["id"] for p in processes] == ["line1.turning", "line1.grinding", "line2.vision"]
    line2 = client.get("/api/v1/processes", params={"line": "line2"}).json()
    assert [(p["id"], p["name"], p["origin"]) for p in line2] == [
        ("line2.vision", "Vision inspection", "config")
    ]


def test_characteristics_created_through_the_api_appear_under_their_own_line(
    client: TestClient,
) -> None:
    record = CharacteristicRecord(
        id="line9.press.force", name="Press force", unit="kN", line="line9", process="press",
        lsl=None, usl=None, target=None, chart="imr", subgroup_size=1, rules=("nelson",),
        source_kind=None, source_address=None, origin="api",
    )  # fmt: skip
    client.app.state.service.monitor.register(record)  # type: ignore[attr-defined]

    lines = client.get("/api/v1/lines").json()
    assert [(line["id"], line["origin"]) for line in lines][-1] == ("line9", "api")
    process = client.get("/api/v1/processes/line9.press").json()
    assert (process["origin"], process["line"], process["process"]) == ("api", "line9", "press")
    assert [c["id"] for c in process["characteristics"]] == ["line9.press.force"]
    assert _counts(client.get("/api/v1/plant").json()["summary"]) == (6, 0, 0, 6)


@pytest.mark.parametrize("path", ["/api/v1/lines/nope", "/api/v1/processes/turning"])
def test_an_unknown_line_or_process_is_a_404(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_the_hierarchy_needs_a_key(client: TestClient) -> None:
    assert client.get("/api/v1/plant", headers={"Authorization": ""}).status_code == 401


def _status(cid: str, state: str, cpk: float | None, **extra: Any) -> CharacteristicStatus:
    values: dict[str, Any] = {
        "id": cid, "name": cid, "unit": "mm", "line": "l", "process": "p", "origin": "config",
        "state": state, "open_alarms": 0, "acknowledged_alarms": 0, "cpk": cpk,
        "last_time": None, "last_value": None,
    }  # fmt: skip
    return CharacteristicStatus(**{**values, **extra})


def test_summarise_counts_states_alarms_and_the_first_lowest_cpk() -> None:
    late = datetime(2026, 1, 2, tzinfo=UTC)
    summary = summarise(
        [
            _status("a", IN_CONTROL, 1.5, last_time=datetime(2026, 1, 1, tzinfo=UTC)),
            _status("b", OUT_OF_CONTROL, 0.8, open_alarms=2, acknowledged_alarms=1),
            _status("c", OUT_OF_CONTROL, 0.8, last_time=late),
            _status("d", BASELINE, None),
        ]
    )
    assert (summary.in_control, summary.out_of_control, summary.baseline) == (1, 2, 1)
    assert (summary.open_alarms, summary.acknowledged_alarms) == (2, 1)
    assert (summary.worst_cpk, summary.worst_cpk_characteristic) == (0.8, "b")
    assert summary.last_data_at == late


def test_summarise_of_nothing_is_empty() -> None:
    summary = summarise([])
    assert (summary.characteristics, summary.worst_cpk, summary.last_data_at) == (0, None, None)


@pytest.mark.parametrize(
    ("has_limits", "alarms", "state"),
    [(False, 0, BASELINE), (False, 1, BASELINE), (True, 0, IN_CONTROL), (True, 2, OUT_OF_CONTROL)],
)
def test_control_state(has_limits: bool, alarms: int, state: str) -> None:
    assert control_state(has_limits, alarms) == state


@pytest.mark.parametrize(
    ("cpk", "n", "size", "expected"),
    [
        (1.2, 25, 1, 1.2),
        (1.2, 24, 1, None),
        (1.2, 125, 5, 1.2),
        (1.2, 120, 5, None),
        (None, 99, 1, None),
    ],
)
def test_rolling_cpk_needs_25_subgroups(
    cpk: float | None, n: int, size: int, expected: float | None
) -> None:
    assert rolling_cpk(cpk, n, size) == expected
