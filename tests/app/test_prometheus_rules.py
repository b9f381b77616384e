"""The shipped Prometheus alerting rules name only series the service really exports."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from fastapi.testclient import TestClient

from app import Settings
from app.auth import Role
from tests.support.api import key_headers

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "spcmon-rules.yml"
SERIES = re.compile(r"\b(spcmon_[a-z_]+)")
LABELS = re.compile(r"(spcmon_[a-z_]+)\{([^}]*)\}")


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_every_rule_is_complete() -> None:
    rules = _rules()
    assert len({r["alert"] for r in rules}) == len(rules)  # distinct names
    for rule in rules:
        assert rule["expr"].strip()
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"]


def _incident_and_warning(client: TestClient, settings: Settings) -> None:
    start = datetime.now(UTC) - timedelta(hours=1)
    values = [*np.random.default_rng(2).normal(25.0, 0.005, 25), 25.2]
    rows: list[dict[str, Any]] = [
        {"characteristic": "line1.turning.diameter", "value": v,
         "time": (start + timedelta(seconds=i)).isoformat()}
        for i, v in enumerate(values)
    ]  # fmt: skip
    rows.append({**rows[0], "time": (start + timedelta(minutes=5)).isoformat(), "quality": "bad"})
    answer = client.post("/api/v1/measurements", json={"measurements": rows},
                         headers=key_headers(settings, Role.INGEST))  # fmt: skip
    assert answer.status_code == 202


def test_the_rules_use_only_exported_metrics_and_labels(
    client: TestClient, settings: Settings
) -> None:
    _incident_and_warning(client, settings)  # so that their series have samples
    deadline = time.monotonic() + 10  # warnings are evaluated in the background
    while "spcmon_early_warnings{" not in client.get("/metrics").text:
        assert time.monotonic() < deadline, "no early warning in /metrics"
        time.sleep(0.1)
    metrics = client.get("/metrics").text
    exported = set(re.findall(r"^# TYPE (spcmon_\w+) (\w+)", metrics, re.M))
    names = {name for name, _ in exported}
    counters = {name for name, kind in exported if kind == "counter"}
    declared = {*names, *(f"{c}_total" for c in counters)}
    for rule in _rules():
        for series in SERIES.findall(rule["expr"]):
            assert series in declared, f"{rule['alert']}: {series} is not exported"
        for series, matchers in LABELS.findall(rule["expr"]):
            for label in re.findall(r"(\w+)\s*=", matchers):
                sample = re.search(rf"^{series}\{{[^}}]*\b{label}=", metrics, re.M)
                unsampled = series.startswith("spcmon_notifications")  # no notifiers here
                assert sample or unsampled, f"{rule['alert']}: {series} has no {label}"
