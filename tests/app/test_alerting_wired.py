"""The alerting wired into the running service: incidents reach a webhook, early warnings
come from live data and show in the API, metrics and the event stream."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app import Settings, create_app
from app.auth import Role
from app.notifications import grade_notification
from app.settings import AlertSettings
from tests.alerts.notify_support import HttpReceiver, running_receiver
from tests.support.api import key_headers
from tests.support.mosquitto import free_port

CHAR = "line1.turning.diameter"
SECRET = "webhook-secret-for-tests"


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with running_receiver(free_port(), default=(200, b"{}")) as r:
        yield r


@pytest.fixture
def alerting(
    tmp_path: Path, demo_config_path: Path, receiver: HttpReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> Settings:  # fmt: skip
    notifiers = tmp_path / "notifiers.yaml"
    notifiers.write_text(
        "notifiers:\n"
        f"  - {{type: webhook, name: mes-hook, url: '{receiver.url}', "
        "secret_env: SPCMON_TEST_HOOK_SECRET, min_severity: info}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("SPCMON_TEST_HOOK_SECRET", SECRET)
    return Settings(
        config=demo_config_path,
        data_dir=tmp_path / "data",
        alerts=AlertSettings(notifiers_file=notifiers, dashboard_url="http://spc.plant/"),
    )


def _push(client: TestClient, settings: Settings, values: list[float], start: datetime) -> None:
    rows = [
        {"characteristic": CHAR, "value": v, "time": (start + timedelta(seconds=i)).isoformat()}
        for i, v in enumerate(values)
    ]
    answer = client.post("/api/v1/measurements", json={"measurements": rows},
                         headers=key_headers(settings, Role.INGEST))  # fmt: skip
    assert answer.status_code == 202, answer.text


def _wait_for(receiver: HttpReceiver, kind: str, timeout_s: float = 10.0) -> list[Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [r for r in receiver.requests if r.json()["kind"] == kind]
        if found:
            return found
        time.sleep(0.05)
    return []


def _warnings(client: TestClient, timeout_s: float = 10.0, **params: str) -> list[Any]:
    """The API's warnings once there are some: they are evaluated in the background, each
    characteristic every 25 new values or 5 s."""
    deadline = time.monotonic() + timeout_s
    while True:
        found: list[Any] = client.get("/api/v1/warnings", params=params).json()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_an_incident_is_sent_to_the_webhook_signed_and_its_resolution_too(
    alerting: Settings, receiver: HttpReceiver
) -> None:
    start = datetime.now(UTC) - timedelta(hours=1)
    calm = list(np.random.default_rng(3).normal(25.0, 0.005, 25))
    with TestClient(create_app(alerting), headers=key_headers(alerting)) as client:
        _push(client, alerting, [*calm, 25.2], start)
        [opened] = _wait_for(receiver, "incident_opened")
        body = opened.json()
        assert body["severity"] == "critical"
        assert body["characteristics"] == [CHAR]
        assert body["url"] == f"http://spc.plant/#/c/{CHAR}"  # the page with its incidents
        stamp = opened.headers["x-spcmon-timestamp"]
        expected = hmac.new(SECRET.encode(), f"{stamp}.".encode() + opened.body, hashlib.sha256)
        assert opened.headers["x-spcmon-signature"] == f"sha256={expected.hexdigest()}"
        # the CUSUM (about 40 sigma after the spike) falls by about k = 0.4 sigma a point, so
        # it stops signalling after ~90 calm points; 25 more resolve the incident by itself
        after = list(np.random.default_rng(4).normal(25.0, 0.005, 150))
        _push(client, alerting, after, start + timedelta(minutes=5))
        [resolved] = _wait_for(receiver, "incident_resolved")
        assert resolved.json()["incident_id"] == body["incident_id"]
        assert "back in control" in resolved.json()["text"]
        metrics = client.get("/metrics").text
        assert 'spcmon_notifications_total{notifier="mes-hook",outcome="sent"}' in metrics


def test_a_drift_raises_an_early_warning_in_the_api_and_the_metrics(
    settings: Settings, client: TestClient
) -> None:
    start = datetime.now(UTC) - timedelta(hours=1)
    rng = np.random.default_rng(11)
    sigma = 0.1 / (6 * 1.67)
    calm = list(25.0 + sigma * rng.standard_normal(25))
    # tool wear: +0.1 sigma per part; the USL (5 sigma above) comes in ~50 parts
    wear = list(25.0 + sigma * (0.1 * np.arange(1, 31) + rng.standard_normal(30)))
    _push(client, settings, calm, start)
    _push(client, settings, wear, start + timedelta(minutes=1))

    warnings = _warnings(client, characteristic=CHAR)

    drift = [w for w in warnings if w["kind"] == "drift"]
    assert drift, warnings
    assert (drift[0]["line"], drift[0]["process"]) == ("line1", "line1.turning")
    assert "USL" in drift[0]["message"]
    assert client.get("/api/v1/warnings", params={"line": "line2"}).json() == []
    metrics = client.get("/metrics").text
    assert f'spcmon_early_warnings{{characteristic="{CHAR}",kind="drift"' in metrics
    # by line and process too, for Grafana filters and Alertmanager routes
    assert 'kind="drift",line="line1",process="line1.turning"' in metrics


def test_bad_quality_values_raise_a_data_health_warning(
    settings: Settings, client: TestClient
) -> None:
    start = datetime.now(UTC) - timedelta(hours=1)
    rows = [
        {"characteristic": CHAR, "value": 25.0, "time": (start + timedelta(seconds=i)).isoformat(),
         "quality": "bad"}
        for i in range(3)
    ]  # fmt: skip
    answer = client.post("/api/v1/measurements", json={"measurements": rows},
                         headers=key_headers(settings, Role.INGEST))  # fmt: skip
    assert answer.status_code == 202

    [warning] = _warnings(client, characteristic=CHAR)
    assert (warning["kind"], warning["details"]["bad"]) == ("bad_quality", 3)


def test_a_bad_notifiers_file_stops_the_service_naming_the_entry(
    tmp_path: Path, demo_config_path: Path
) -> None:
    bad = tmp_path / "notifiers.yaml"
    bad.write_text("notifiers:\n  - {type: webhook, name: x, url: 'http://h', secret: s}\n")
    settings = Settings(config=demo_config_path, data_dir=tmp_path / "data",
                        alerts=AlertSettings(notifiers_file=bad))  # fmt: skip
    with pytest.raises(ValueError, match=r"notifiers\[0\]"), TestClient(create_app(settings)):
        pass


def test_a_grade_drop_is_a_warning_and_a_rise_is_news() -> None:
    at = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    drop = grade_notification("line", "line1", 4, 3, at, None)
    rise = grade_notification("line", "line1", 3, 4, at, None)
    assert (drop.severity, rise.severity) == ("warning", "info")
    assert "4 Prevention 预防级 → 3 Assurance 保证级" in drop.title
    assert grade_notification("plant", "demo", 2, None, at, None).severity == "warning"
