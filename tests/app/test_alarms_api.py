"""Alarms (incidents) over HTTP: list and filter, read with evidence and history,
acknowledge with cause and action, resolve, and the Pareto of causes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app import Settings, create_app
from app.auth import KeyRing, Role
from ingest.store import AlarmRecord
from tests.support.api import key_headers

CHAR = "line1.turning.diameter"
OPERATOR = "shift-lead-anna"
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


@pytest.fixture
def operator(settings: Settings) -> dict[str, str]:
    _, token = KeyRing(settings.keys_file).create(OPERATOR, Role.OPERATOR)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), headers=key_headers(settings, Role.VIEWER)) as c:
        yield c


def _shift(client: TestClient, settings: Settings) -> list[dict[str, Any]]:
    """25 in-control points, then one far above: alarms on the diameter."""
    values = [*np.random.default_rng(5).normal(25.0, 0.005, 25), 25.2]
    rows = [
        {"characteristic": CHAR, "value": v, "time": (T0 + timedelta(seconds=i)).isoformat()}
        for i, v in enumerate(values)
    ]
    headers = key_headers(settings, Role.INGEST)
    response = client.post("/api/v1/measurements", json={"measurements": rows}, headers=headers)
    assert response.status_code == 202
    alarms: list[dict[str, Any]] = client.get("/api/v1/alarms").json()
    assert alarms
    return alarms


def _ack(client: TestClient, alarm_id: int, headers: dict[str, str], **body: Any) -> Any:
    return client.post(
        f"/api/v1/alarms/{alarm_id}/acknowledge",
        json=body or {"comment": "checked the tool"},
        headers=headers,
    )


def _rule_1(alarms: list[dict[str, Any]]) -> dict[str, Any]:
    """The incident of the shift: opened by the CUSUM (the default pager)."""
    [incident] = [a for a in alarms if CHAR in a["characteristics"]]
    return incident


def test_open_alarms_are_listed_with_their_line_and_process(
    client: TestClient, settings: Settings
) -> None:
    alarm = _rule_1(_shift(client, settings))
    assert (alarm["state"], alarm["characteristic"]) == ("open", CHAR)
    assert (alarm["acknowledged_by"], alarm["acknowledged_at"], alarm["ack_comment"]) == (
        None,
        None,
        None,
    )
    assert (alarm["line"], alarm["process"]) == ("line1", "line1.turning")
    assert alarm["last_value"] == 25.2
    assert (alarm["rule"], alarm["chart"]) == ("cusum", "cusum")  # the default pager
    assert alarm["severity"] == "critical"  # the point is beyond the UCL too
    assert "CUSUM upper signal" in alarm["message"]
    detail = client.get(f"/api/v1/alarms/{alarm['id']}").json()
    kinds = {(e["rule"], e["chart"]) for e in detail["evidence"]}
    assert {("cusum", "cusum"), ("1", "i"), ("1", "mr")} <= kinds
    assert len(detail["evidence"]) == alarm["count"]
    assert detail["catalogue"]["configured"] is False
    assert "tool wear or breakage" in detail["catalogue"]["causes"]


def test_alarms_are_filtered_by_state_characteristic_and_line(
    client: TestClient, settings: Settings
) -> None:
    alarms = _shift(client, settings)
    ids = sorted(a["id"] for a in alarms)

    def listed(**params: str) -> list[int]:
        response = client.get("/api/v1/alarms", params=params)
        assert response.status_code == 200, response.text
        return sorted(a["id"] for a in response.json())

    assert listed(characteristic=CHAR) == ids
    assert listed(characteristic="line2.vision.gap") == []
    assert listed(line="line1") == ids
    assert listed(line="line2") == []
    assert listed(state="all") == ids
    assert listed(state="resolved") == []
    assert listed(state="acknowledged") == []
    assert [a["id"] for a in client.get("/api/v1/alarms").json()] == ids[::-1]  # newest first
    assert client.get("/api/v1/alarms", params={"state": "closed"}).status_code == 422


def test_an_operator_acknowledges_and_the_audit_trail_shows_it(
    client: TestClient, settings: Settings, operator: dict[str, str]
) -> None:
    alarm = _rule_1(_shift(client, settings))
    response = _ack(
        client, alarm["id"], operator, comment="  insert worn, replaced  ", cause="tool wear"
    )
    assert response.status_code == 200, response.text
    ack = response.json()
    assert ack["acknowledged_by"] == OPERATOR
    assert (ack["comment"], ack["cause"], ack["action"]) == (
        "insert worn, replaced",
        "tool wear",
        None,
    )
    assert abs(datetime.fromisoformat(ack["acknowledged_at"]) - datetime.now(UTC)) < timedelta(
        minutes=1
    )
    assert ack["alarm"]["state"] == "acknowledged"

    detail = client.get(f"/api/v1/alarms/{alarm['id']}").json()
    assert detail["state"] == "acknowledged"
    assert (detail["acknowledged_by"], detail["acknowledged_at"]) == (
        OPERATOR,
        ack["acknowledged_at"],
    )
    assert (detail["ack_comment"], detail["ack_cause"], detail["ack_action"]) == (
        "insert worn, replaced",
        "tool wear",
        None,
    )
    assert detail["events"][0]["state"] == "open"
    assert (detail["events"][0]["actor"], detail["events"][0]["note"]) == (None, None)
    assert detail["events"][-1] == {
        "recorded_at": ack["acknowledged_at"],
        "state": "acknowledged",
        "count": alarm["count"],
        "last_value": alarm["last_value"],
        "actor": OPERATOR,
        "note": "insert worn, replaced",
    }

    open_ids = [a["id"] for a in client.get("/api/v1/alarms").json()]
    acked = client.get("/api/v1/alarms", params={"state": "acknowledged"}).json()
    assert alarm["id"] not in open_ids
    assert [a["id"] for a in acked] == [alarm["id"]]

    turning = client.get("/api/v1/processes/line1.turning").json()["summary"]
    assert turning["acknowledged_alarms"] == 1
    assert turning["out_of_control"] == 1  # acknowledged is not resolved


def test_an_acknowledgement_survives_a_restart(
    settings: Settings, operator: dict[str, str]
) -> None:
    why = {"comment": "chip on the insert", "cause": "tool wear", "action": "insert replaced"}
    with TestClient(create_app(settings), headers=operator) as client:
        alarm = _rule_1(_shift(client, settings))
        response = _ack(client, alarm["id"], operator, **why)
        assert response.status_code == 200
        acknowledged_at = response.json()["acknowledged_at"]
    with TestClient(create_app(settings), headers=operator) as restarted:
        detail = restarted.get(f"/api/v1/alarms/{alarm['id']}").json()
        [listed] = restarted.get("/api/v1/alarms", params={"state": "acknowledged"}).json()
        assert _ack(restarted, alarm["id"], operator).status_code == 409
    for shown in (detail, listed):
        assert shown["state"] == "acknowledged"
        assert (shown["acknowledged_by"], shown["acknowledged_at"]) == (OPERATOR, acknowledged_at)
        assert (shown["ack_comment"], shown["ack_cause"], shown["ack_action"]) == (
            why["comment"],
            why["cause"],
            why["action"],
        )
    assert (detail["events"][-1]["actor"], detail["events"][-1]["note"]) == (
        OPERATOR,
        why["comment"],
    )
    assert detail["events"][-1]["recorded_at"] == acknowledged_at


def test_a_viewer_cannot_acknowledge(client: TestClient, settings: Settings) -> None:
    alarm = _rule_1(_shift(client, settings))
    response = _ack(client, alarm["id"], key_headers(settings, Role.VIEWER))
    assert response.status_code == 403
    assert "operator role" in response.json()["detail"]
    assert client.get(f"/api/v1/alarms/{alarm['id']}").json()["state"] == "open"


def test_acknowledging_twice_is_a_conflict(
    client: TestClient, settings: Settings, operator: dict[str, str]
) -> None:
    alarm = _rule_1(_shift(client, settings))
    assert _ack(client, alarm["id"], operator).status_code == 200
    response = _ack(client, alarm["id"], operator)
    assert response.status_code == 409
    assert "acknowledged" in response.json()["detail"]


def test_acknowledging_a_resolved_alarm_is_a_conflict(
    client: TestClient, operator: dict[str, str]
) -> None:
    resolved = AlarmRecord(CHAR, "1", "i", "resolved", T0, T0, 1, 1, 25.2, "resolved earlier")
    service = client.app.state.service  # type: ignore[attr-defined]
    stored = client.portal.call(service.store.save_alarm, resolved)  # type: ignore[union-attr]
    assert [a["id"] for a in client.get("/api/v1/alarms?state=resolved").json()] == [stored.id]
    response = _ack(client, stored.id, operator)
    assert response.status_code == 409
    assert "resolved" in response.json()["detail"]


@pytest.mark.parametrize("alarm_id", [999, -1, 10**20])
def test_an_unknown_alarm_is_a_404(
    client: TestClient, operator: dict[str, str], alarm_id: int
) -> None:
    assert client.get(f"/api/v1/alarms/{alarm_id}").status_code == 404
    response = _ack(client, alarm_id, operator)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"comment": ""}, "body.comment"),
        ({"comment": "   "}, "body.comment"),
        ({"cause": "tool wear"}, "body.comment"),
        ({"comment": "x" * 2001}, "body.comment"),
        ({"comment": "ok", "action": ""}, "body.action"),
        ({"comment": "ok", "who": "me"}, "body.who"),
    ],
)
def test_an_acknowledgement_without_a_usable_comment_is_a_422(
    client: TestClient,
    settings: Settings,
    operator: dict[str, str],
    body: dict[str, Any],
    field: str,
) -> None:
    alarm = _rule_1(_shift(client, settings))
    response = _ack(client, alarm["id"], operator, **body)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert client.get(f"/api/v1/alarms/{alarm['id']}").json()["state"] == "open"


def test_an_operator_resolves_an_incident_saying_why(
    client: TestClient, settings: Settings, operator: dict[str, str]
) -> None:
    alarm = _rule_1(_shift(client, settings))
    path = f"/api/v1/alarms/{alarm['id']}/resolve"

    assert client.post(path, json={"note": "x"}).status_code == 403  # a viewer
    assert client.post(path, json={"note": " "}, headers=operator).status_code == 422
    response = client.post(path, json={"note": "insert changed, 5 parts checked"},
                           headers=operator)  # fmt: skip
    assert response.status_code == 200, response.text
    done = response.json()
    assert (done["state"], done["resolved_by"]) == ("resolved", OPERATOR)
    assert done["resolution_note"] == "insert changed, 5 parts checked"
    assert client.post(path, json={"note": "again"}, headers=operator).status_code == 409
    assert client.post("/api/v1/alarms/999/resolve", json={"note": "?"},
                       headers=operator).status_code == 404  # fmt: skip
    [*_, event] = client.get(f"/api/v1/alarms/{alarm['id']}").json()["events"]
    assert (event["state"], event["actor"]) == ("resolved", OPERATOR)
    assert client.get("/api/v1/alarms").json() == []
    assert [a["id"] for a in client.get("/api/v1/alarms?state=resolved").json()] == [alarm["id"]]


def test_the_short_ack_path_acknowledges_too(
    client: TestClient, settings: Settings, operator: dict[str, str]
) -> None:
    alarm = _rule_1(_shift(client, settings))
    body = {"comment": "seen", "cause": "tool wear"}
    response = client.post(f"/api/v1/alarms/{alarm['id']}/ack", json=body, headers=operator)
    assert response.status_code == 200, response.text
    assert response.json()["alarm"]["state"] == "acknowledged"


def test_incidents_are_filtered_by_severity_process_and_time(
    client: TestClient, settings: Settings
) -> None:
    [alarm] = _shift(client, settings)
    opened = datetime.fromisoformat(alarm["opened_at"])

    def listed(**params: str) -> list[int]:
        response = client.get("/api/v1/alarms", params=params)
        assert response.status_code == 200, response.text
        return [a["id"] for a in response.json()]

    assert listed(severity="critical") == [alarm["id"]]
    assert listed(severity="warning") == []
    assert listed(process="line1.turning") == [alarm["id"]]
    assert listed(process="line1.grinding") == []
    assert listed(since=opened.isoformat()) == [alarm["id"]]
    assert listed(until=opened.isoformat()) == []
    assert listed(state="unresolved") == [alarm["id"]]
    assert client.get("/api/v1/alarms", params={"severity": "meh"}).status_code == 422


def test_the_pareto_counts_causes_as_operators_gave_them(
    client: TestClient, operator: dict[str, str]
) -> None:
    service = client.app.state.service  # type: ignore[attr-defined]
    now = datetime.now(UTC)
    causes = ["Tool wear", "tool  wear", "material lot", None, "TOOL WEAR"]
    for k, cause in enumerate(causes):
        record = AlarmRecord(CHAR, "cusum", "cusum", "open", now - timedelta(hours=k + 1),
                             now, 1, 1, 25.2, "CUSUM", line="line1",
                             process="line1.turning")  # fmt: skip
        stored = client.portal.call(service.store.save_alarm, record)  # type: ignore[union-attr]
        client.portal.call(service.alarms.load)  # type: ignore[union-attr]
        body: dict[str, Any] = {"comment": "checked"}
        if cause:
            body["cause"] = cause
            body["action"] = "insert changed" if "wear" in cause.lower() else "lot blocked"
        assert _ack(client, stored.id, operator, **body).status_code == 200

    pareto = client.get("/api/v1/alarms/causes", params={"line": "line1"}).json()

    assert (pareto["incidents"], pareto["acknowledged"], pareto["without_cause"]) == (5, 5, 1)
    assert [(c["text"], c["count"]) for c in pareto["causes"]] == [
        ("Tool wear", 3), ("material lot", 1),
    ]  # fmt: skip
    assert [c["cumulative_share"] for c in pareto["causes"]] == [0.75, 1.0]
    assert pareto["actions"][0] == {"text": "insert changed", "count": 3, "share": 0.75,
                                    "cumulative_share": 0.75}  # fmt: skip
    assert client.get("/api/v1/alarms/causes", params={"line": "line2"}).json()["causes"] == []
    assert client.get("/api/v1/alarms/causes", params={"period": "0d"}).status_code == 422
