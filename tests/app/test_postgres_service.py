"""The service on PostgreSQL: the store chosen by SPCMON_DATABASE__URL, state kept across a
restart, pushes accepted through a database outage, and `spcmon db upgrade`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from fastapi.testclient import TestClient

from app import Settings, create_app
from app.cli import main
from app.local_broker import free_port
from ingest.pg_schema import LATEST_VERSION
from tests.support.api import key_headers
from tests.support.databases import fresh_database, with_database
from tests.support.postgres import PostgresServer, running_postgres

CHAR = "line1.turning.diameter"


def _rows(values: list[float], start: datetime) -> list[dict[str, Any]]:
    return [
        {"characteristic": CHAR, "value": v, "time": (start + timedelta(seconds=i)).isoformat()}
        for i, v in enumerate(values)
    ]


def _settings(dsn: str, tmp_path: Path, demo_config_path: Path) -> Settings:
    return Settings.model_validate(
        {"config": demo_config_path, "data_dir": tmp_path / "data", "database": {"url": dsn}}
    )


def _count(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM measurements").fetchone()
        assert row is not None
        return int(row[0])


def _fresh(server: PostgresServer) -> str:
    return asyncio.run(fresh_database(server.dsn))


@pytest.fixture
def own_server() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        yield server


def test_the_service_runs_on_postgresql_and_restores_its_limits_after_restart(
    postgres: PostgresServer, tmp_path: Path, demo_config_path: Path
) -> None:
    settings = _settings(_fresh(postgres), tmp_path, demo_config_path)
    start = datetime.now(UTC) - timedelta(hours=1)
    baseline = list(np.random.default_rng(3).normal(25.0, 0.01, 25))

    with TestClient(create_app(settings), headers=key_headers(settings)) as client:
        health = client.get("/healthz").json()
        assert (health["status"], health["store"], health["spooled_rows"]) == (
            "ok",
            "postgresql",
            0,
        )
        assert client.post("/api/v1/measurements", json={"measurements": _rows(baseline, start)})
        before = client.get(f"/api/v1/characteristics/{CHAR}/status").json()["limits"]
    assert before["version"] == 1

    with TestClient(
        create_app(settings), headers=key_headers(settings)
    ) as client:  # a restart: state from the database
        after = client.get(f"/api/v1/characteristics/{CHAR}/status").json()
    assert after["limits"] == before
    assert after["baseline"] == {"collected": 25, "needed": 25}


def test_grade_snapshots_with_an_unbounded_sigma_level_are_stored_on_postgresql(
    postgres: PostgresServer, tmp_path: Path, demo_config_path: Path
) -> None:
    settings = _settings(_fresh(postgres), tmp_path, demo_config_path)
    values = list(np.random.default_rng(4).normal(25.0, 0.005, 120))  # none out of spec

    with TestClient(create_app(settings), headers=key_headers(settings)) as client:
        pushed = client.post(
            "/api/v1/measurements",
            json={"measurements": _rows(values, datetime.now(UTC) - timedelta(hours=1))},
        )
        assert pushed.status_code == 202
        keeper = client.app.state.service.grades  # type: ignore[attr-defined]
        grades = client.portal.call(keeper.refresh)  # type: ignore[attr-defined]
        assert grades.get("characteristic", CHAR).result.metrics[1].value == float("inf")
        client.portal.call(keeper.snapshot, grades)  # type: ignore[attr-defined]
        history = client.get(f"/api/v1/grades/characteristic/{CHAR}/history").json()

    [snap] = history
    assert snap["metrics"]["sigma_level"] is None  # unbounded: null, as in the live answer
    graded = grades.get("characteristic", CHAR).result.grade
    assert graded is not None
    assert snap["grade"] == graded


def test_pushes_are_accepted_through_a_database_outage_and_stored_after_it(
    own_server: PostgresServer, tmp_path: Path, demo_config_path: Path
) -> None:
    dsn = _fresh(own_server)
    settings = _settings(dsn, tmp_path, demo_config_path)
    start = datetime.now(UTC) - timedelta(hours=1)

    with TestClient(create_app(settings), headers=key_headers(settings)) as client:
        own_server.stop()
        response = client.post("/api/v1/measurements", json={"measurements": _rows([25.0], start)})
        assert response.status_code == 202
        health = client.get("/healthz").json()
        assert (health["status"], health["spooled_rows"]) == ("degraded", 1)
        assert list((tmp_path / "data" / "spool").glob("*.json"))
        ready = client.get("/readyz")  # still ready: the spool keeps what comes in
        assert ready.status_code == 200
        assert ready.json()["status"] == "degraded"
        assert ready.json()["checks"]["store"] == "spooling"
        assert ready.json()["checks"]["spool"] == "1 rows waiting"
        assert "spcmon_spooled_rows 1.0" in client.get("/metrics").text

        own_server.start()
        deadline = time.monotonic() + 30
        while client.get("/healthz").json()["status"] != "ok":
            assert time.monotonic() < deadline, "the spool was not replayed"
            time.sleep(0.1)
    assert _count(dsn) == 1


def test_db_upgrade_migrates_once_and_then_reports_up_to_date(
    postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blank = f"blank_{free_port()}"
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {blank}")
    monkeypatch.setenv("SPCMON_DATABASE__URL", with_database(postgres.dsn, blank))

    assert main(["db", "upgrade"]) == 0
    applied = ", ".join(str(v) for v in range(1, LATEST_VERSION + 1))
    assert (
        f"schema version {LATEST_VERSION}, postgresql mode; migrations applied: {applied}"
        in capsys.readouterr().out
    )
    assert main(["db", "upgrade"]) == 0
    assert "migrations applied: none (already up to date)" in capsys.readouterr().out


def test_db_upgrade_without_a_database_url_says_what_to_set(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SPCMON_DATABASE__URL", raising=False)
    assert main(["db", "upgrade"]) == 2
    assert "SPCMON_DATABASE__URL is not set" in capsys.readouterr().err


def test_db_upgrade_against_an_unreachable_server_fails_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SPCMON_DATABASE__URL", f"postgresql://x@127.0.0.1:{free_port()}/x")
    assert main(["db", "upgrade"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("database upgrade failed: cannot open the PostgreSQL store")
    assert "Traceback" not in err


def test_a_database_url_that_is_not_postgresql_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SPCMON_DATABASE__URL", "mysql://x@host/db")
    assert main(["db", "upgrade"]) == 2
    assert "SPCMON_DATABASE__URL: expected postgresql://" in capsys.readouterr().err


def test_serve_with_an_unreachable_database_says_so_in_plain_words(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], demo_config_path: Path
) -> None:
    monkeypatch.setenv("SPCMON_DATABASE__URL", f"postgresql://x@127.0.0.1:{free_port()}/x")
    assert main(["serve", "--config", str(demo_config_path), "--port", "1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cannot start: cannot open the PostgreSQL store")
    assert "check SPCMON_DATABASE__URL" in err
    assert "Traceback" not in err
