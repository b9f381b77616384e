"""Every series and label the Grafana dashboards and the alerting rules read is one the
service's /metrics really exports (read from the running app, with data in every family)
or one Prometheus adds itself (``up``). tests/app/test_prometheus_rules.py checks the
rules' spcmon_ series the same way; this adds the dashboards, the other series and the
grouping labels.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app import Settings, create_app
from app.auth import Role
from app.local_broker import running_mosquitto
from app.settings import AlertSettings, GradeSettings
from tests.deploy import promql
from tests.deploy.deploy_files import DEPLOY, load_yaml
from tests.deploy.grafana import (
    dashboard_files,
    datasource_types,
    load,
    queries,
    substitute_promql,
)
from tests.support.api import key_headers

RULES = DEPLOY / "prometheus" / "spcmon-rules.yml"
DEMO_CONFIG = DEPLOY / "examples" / "demo-plant.yaml"
CHAR = "line1.turning.diameter"
# what Prometheus adds to every scraped series, and the series it makes itself
TARGET_LABELS = {"job", "instance"}
SYNTHETIC = {"up": {"job", "instance"}}
WAIT_S = 15.0


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """series name -> label names, from /metrics after data that fills every family."""
    tmp = tmp_path_factory.mktemp("metrics")
    # one notifier on a real broker, so that its counters have samples and shutdown does
    # not wait for retries
    with running_mosquitto(tmp / "mosquitto") as broker:
        notifiers = tmp / "notifiers.yaml"
        notifiers.write_text(f"notifiers:\n  - {{type: mqtt, name: andon, host: {broker.host}, "
                             f"port: {broker.port}}}\n")  # fmt: skip
        settings = Settings(
            config=DEMO_CONFIG,
            data_dir=tmp / "data",
            grades=GradeSettings(refresh_s=1),
            alerts=AlertSettings(notifiers_file=notifiers),
        )
        with TestClient(create_app(settings), headers=key_headers(settings)) as client:
            _feed(client, settings)
            needles = (r"^spc_grade\{", r"^spcmon_early_warnings\{",
                       r"^spcmon_open_incidents\{", r'outcome="sent"\} [1-9]')  # fmt: skip
            text = _wait_for(client, needles)
    out: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        out.setdefault(family.name, set())
        for sample in family.samples:
            out.setdefault(sample.name, set()).update(sample.labels)
    return out


def _feed(client: TestClient, settings: Settings) -> None:
    """An in-control baseline, a shift (an incident), a bad value (an early warning) and a
    row for an unknown characteristic (a dead letter)."""
    start = datetime.now(UTC) - timedelta(hours=1)
    values = [*np.random.default_rng(3).normal(25.0, 0.005, 150), 25.2]
    rows: list[dict[str, Any]] = [
        {"characteristic": CHAR, "value": float(v),
         "time": (start + timedelta(seconds=i)).isoformat()}
        for i, v in enumerate(values)
    ]  # fmt: skip
    rows.append({**rows[0], "time": (start + timedelta(minutes=5)).isoformat(), "quality": "bad"})
    rows.append({**rows[0], "characteristic": "no.such.characteristic"})
    answer = client.post("/api/v1/measurements", json={"measurements": rows},
                         headers=key_headers(settings, Role.INGEST))  # fmt: skip
    assert answer.status_code == 202, answer.text


def _wait_for(client: TestClient, needles: tuple[str, ...]) -> str:
    deadline = time.monotonic() + WAIT_S  # grades and warnings are computed in the background
    while True:
        text = client.get("/metrics").text
        missing = [n for n in needles if not re.search(n, text, re.M)]
        if not missing:
            return text
        assert time.monotonic() < deadline, f"never sampled: {missing}"
        time.sleep(0.2)


def _expressions() -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every rule and every Prometheus panel query of the dashboards
    (variables: see the label_values test)."""
    for group in load_yaml(RULES)["groups"]:
        for rule in group["rules"]:
            yield f"rule {rule['alert']}", rule["expr"]
    types = datasource_types()
    for path in dashboard_files():
        dashboard = load(path)
        values = {"line": "line1", "characteristic": CHAR}
        for q in queries(dashboard):
            if types[q.datasource_uid] == "prometheus" and not q.where.startswith("$"):
                yield f"{path.name}: {q.where}", substitute_promql(q.text, values)


@pytest.mark.parametrize(
    ("expr", "series", "labels", "grouping"),
    [
        ('sum by (line) (x_total{a="1", b=~"c|d"}) or vector(0)', {"x_total"}, {"a", "b"},
         {"line"}),
        ("histogram_quantile(0.95, sum by (le) (rate(h_bucket[5m]))) * 60", {"h_bucket"},
         set(), {"le"}),
        ('up{job="spcmon"} == 0', {"up"}, {"job"}, set()),
        ("bottomk(10, g{line=~\"l1\"}) > 1.5e3", {"g"}, {"line"}, set()),
    ],
)  # fmt: skip
def test_promql_reading_finds_series_matchers_and_grouping(
    expr: str, series: set[str], labels: set[str], grouping: set[str]
) -> None:
    found = promql.usage(expr)
    assert found.series == series
    assert {label for _, label, _ in found.matchers} == labels
    assert found.grouping == grouping


def test_every_series_and_label_the_dashboards_and_rules_read_is_exported(
    exported: dict[str, set[str]],
) -> None:
    known = {**exported, **SYNTHETIC}
    checked = 0
    for where, expr in _expressions():
        found = promql.usage(expr)
        assert found.series, f"{where}: no series found in {expr}"
        for series in found.series:
            assert series in known, f"{where}: {series} is not exported by /metrics"
        for series, label, _ in found.matchers:
            labels = known[series] | TARGET_LABELS
            assert label in labels, f"{where}: {series} has no label {label}"
        union = set().union(*(known[s] for s in found.series)) | TARGET_LABELS
        assert found.grouping <= union, f"{where}: grouped by {found.grouping - union}"
        checked += 1
    assert checked >= 30


def test_every_dashboard_variable_reads_an_exported_label(
    exported: dict[str, set[str]],
) -> None:
    for path in dashboard_files():
        for q in queries(load(path)):
            if datasource_types()[q.datasource_uid] != "prometheus" or not q.where.startswith("$"):
                continue
            parsed = promql.label_values_query(q.text)
            assert parsed is not None, f"{path.name}: {q.where}: not label_values(...)"
            series, label = parsed
            assert label in exported.get(series, set()), f"{path.name}: {q.where}"
