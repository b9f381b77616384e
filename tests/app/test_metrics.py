"""Prometheus metrics: conventional names, bounded labels, what operators alert on."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app import Settings, create_app
from app.metrics import reason_class, source_kind
from tests.support.api import key_headers

CHAR = "line1.turning.diameter"


@pytest.fixture
def client(tmp_path: Path, demo_config_path: Path) -> Iterator[TestClient]:
    settings = Settings(config=demo_config_path, data_dir=tmp_path / "data")
    with TestClient(create_app(settings), headers=key_headers(settings)) as test_client:
        yield test_client


def _samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = client.get("/metrics").text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_show_lag_engine_time_alarms_dead_letters_and_build(client: TestClient) -> None:
    start = datetime.now(UTC) - timedelta(minutes=10)
    values = [*np.random.default_rng(1).normal(25.0, 0.01, 30), 25.5]
    rows = [
        {
            "characteristic": CHAR,
            "value": float(v),
            "time": (start + timedelta(seconds=i)).isoformat(),
        }
        for i, v in enumerate(values)
    ]
    rows.append({"characteristic": "no.such", "value": 1.0, "time": start.isoformat()})
    assert client.post("/api/v1/measurements", json={"measurements": rows}).status_code == 202
    samples = _samples(client)
    labels = (("characteristic", CHAR), ("line", "line1"), ("process", "turning"))
    assert samples[("spcmon_open_alarms", labels)] >= 1
    assert samples[("spcmon_measurements_ingested_total", (("source", "http"),))] == 31
    lag_count = samples[("spcmon_ingest_lag_seconds_count", (("source", "http"),))]
    assert lag_count == 1  # one stored batch
    lag_sum = samples[("spcmon_ingest_lag_seconds_sum", (("source", "http"),))]
    assert 600 <= lag_sum < 700  # the oldest point was measured 10 minutes ago
    assert samples[("spcmon_engine_update_seconds_count", ())] >= 1
    letters = (("reason", "unknown_characteristic"), ("source", "http"))
    assert samples[("spcmon_dead_letters_total", letters)] == 1
    build = [k for k in samples if k[0] == "spcmon_build_info"]
    assert len(build) == 1
    assert dict(build[0][1])["version"]


def test_an_unknown_characteristic_never_becomes_a_label(client: TestClient) -> None:
    rows = [
        {"characteristic": f"junk-{i}", "value": 1.0, "time": datetime.now(UTC).isoformat()}
        for i in range(50)
    ]
    client.post("/api/v1/measurements", json={"measurements": rows})
    assert "junk-" not in client.get("/metrics").text


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("characteristic: unknown characteristic 'x'", "unknown_characteristic"),
        ("payload is not valid JSON: Expecting value", "malformed"),
        ("measurements[3].time: more than 5 minutes in the future", "invalid"),
    ],
)
def test_dead_letter_reasons_fall_into_a_few_classes(reason: str, expected: str) -> None:
    assert reason_class(reason) == expected


def test_a_source_kind_is_the_part_before_its_address() -> None:
    assert source_kind("mqtt:plant/line2/vision") == "mqtt"
    assert source_kind("opcua:opc.tcp://plc:4840") == "opcua"
    assert source_kind("") == "unknown"
