"""Every SQL query of the Grafana dashboards runs against the service's migrated schema and
returns what the panel claims: on PostgreSQL as the read-only login the stack creates
(deploy/timescaledb/init/010_grafana_reader.sh, run for real), and on TimescaleDB (PGlite)
where the 1-minute statistics are a continuous aggregate.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import statistics
import subprocess
from dataclasses import dataclass
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from ingest.pg_store import PgOptions, PostgresStore
from tests.deploy.dashboard_data import (
    BASELINE,
    GROUPED,
    IMR,
    IMR_VALUES,
    LIMITS,
    LINE,
    XBAR,
    XBAR_VALUES,
    Answer,
    Key,
    at,
    panel,
    populate,
    run_all,
)
from tests.deploy.deploy_files import DEPLOY
from tests.support.databases import blank_database, fresh_schema_name
from tests.support.pglite import PgliteServer
from tests.support.postgres import PostgresServer

READER_SCRIPT = DEPLOY / "timescaledb" / "init" / "010_grafana_reader.sh"
READER = "grafana_reader"
CHART = ("spcmon-characteristic", "Control chart: individuals / subgroup means")
DISPERSION = (
    "spcmon-characteristic",
    "Dispersion chart: moving range / range / standard deviation",
)


def _run_reader_script(server: PostgresServer, database: str) -> None:
    psql = shutil.which("psql") or str(server.bindir / "psql")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PG")},
        "POSTGRES_USER": "spcmon",  # the image's superuser, owner of the service's tables
        "POSTGRES_DB": database,
        "GRAFANA_DB_PASSWORD": "T3stReader",
        "PGHOST": "127.0.0.1",
        "PGPORT": str(server.port),
        "PATH": f"{os.path.dirname(psql)}:{os.environ.get('PATH', '')}",
    }
    result = subprocess.run(["sh", str(READER_SCRIPT)], env=env, capture_output=True,
                            text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr


@dataclass(frozen=True)
class ReaderDb:
    name: str
    dsn: str  # as the reader login


@pytest.fixture(scope="module")
def postgres_db(postgres: PostgresServer) -> ReaderDb:
    """A database set up as the stack does it: the reader login first, then the service
    migrates and writes as the owner."""
    dsn = asyncio.run(blank_database(postgres.dsn))
    name = urlsplit(dsn).path.lstrip("/")
    _run_reader_script(postgres, name)

    async def fill() -> None:
        store = PostgresStore(dsn, PgOptions(max_connections=1, timescaledb="off"))
        await store.open()
        try:
            await populate(store)
        finally:
            await store.close()

    asyncio.run(fill())
    return ReaderDb(name, make_conninfo(dsn, user=READER))


@pytest.fixture(scope="module")
def on_postgres(postgres_db: ReaderDb) -> dict[Key, Answer]:
    return run_all(postgres_db.dsn)


@pytest.fixture(scope="module")
def on_timescaledb(pglite: PgliteServer) -> dict[Key, Answer]:
    schema = fresh_schema_name()

    async def fill() -> None:
        options = PgOptions(max_connections=1, timescaledb="require", schema=schema)
        store = PostgresStore(pglite.dsn, options)
        await store.open()
        try:
            assert store.kind == "timescaledb"
            await populate(store)
        finally:
            await store.close()  # PGlite serves one client at a time

    asyncio.run(fill())
    return run_all(pglite.dsn, schema)


def test_the_reader_login_reads_but_cannot_write(postgres_db: ReaderDb) -> None:
    with psycopg.connect(postgres_db.dsn, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM measurements").fetchone()
        assert row is not None
        assert row[0] == len(IMR_VALUES) + len(XBAR_VALUES) + 1
        with pytest.raises(psycopg.Error):
            conn.execute("DELETE FROM alarms")
        with pytest.raises(psycopg.Error):
            conn.execute("CREATE TABLE grafana_was_here (x int)")


def test_the_reader_script_can_run_again(postgres: PostgresServer, postgres_db: ReaderDb) -> None:
    _run_reader_script(postgres, postgres_db.name)


@pytest.mark.parametrize("backend", ["on_postgres", "on_timescaledb"])
def test_the_control_chart_draws_individuals_with_the_limits_in_force(
    backend: str, request: pytest.FixtureRequest
) -> None:
    answers: dict[Key, Answer] = request.getfixturevalue(backend)
    chart = panel(answers, *CHART)
    assert chart.column("point") == pytest.approx(IMR_VALUES)
    assert chart.column("time") == [at(i) for i in range(len(IMR_VALUES))]
    centre = chart.column("CL")
    # the limits judge the points measured after the baseline's last one
    assert centre == [None] * BASELINE + [LIMITS.center] * (len(IMR_VALUES) - BASELINE)
    assert chart.column("UCL")[-1] == LIMITS.ucl
    spec = panel(answers, *CHART, ref="B")
    assert spec.column("LSL") == [34.984, 34.984]
    assert spec.column("USL") == [35.0, 35.0]
    dispersion = panel(answers, *DISPERSION)
    moving_ranges = [abs(b - a) for a, b in itertools.pairwise(IMR_VALUES)]
    assert dispersion.column("MR / R / S") == pytest.approx(moving_ranges)
    assert dispersion.column("UCL")[-1] == LIMITS.mr_ucl


@pytest.mark.parametrize("backend", ["on_postgres", "on_timescaledb"])
def test_an_xbar_chart_plots_complete_subgroups_of_its_size(
    backend: str, request: pytest.FixtureRequest
) -> None:
    answers: dict[Key, Answer] = request.getfixturevalue(backend)
    chart = panel(answers, *CHART, char=XBAR)
    groups = [XBAR_VALUES[i : i + 5] for i in range(0, 40, 5)]  # the last 2 values: no group
    assert chart.column("point") == pytest.approx([statistics.fmean(g) for g in groups])
    assert chart.column("time") == [at(i + 4) for i in range(0, 40, 5)]
    assert set(chart.column("CL")) == {None}  # no limits yet
    ranges = panel(answers, *DISPERSION, char=XBAR).column("MR / R / S")
    assert ranges == pytest.approx([max(g) - min(g) for g in groups])


@pytest.mark.parametrize("backend", ["on_postgres", "on_timescaledb"])
def test_the_characteristic_panels_show_its_data_incidents_and_limits(
    backend: str, request: pytest.FixtureRequest
) -> None:
    answers: dict[Key, Answer] = request.getfixturevalue(backend)
    uid = "spcmon-characteristic"
    variable = panel(answers, uid, "$characteristic", ref="characteristic")
    assert len(variable.rows) == 7
    assert IMR in variable.column("__value")
    quality = panel(answers, uid, "Measurements in range")
    assert quality.rows == [(len(IMR_VALUES), 0, 1)]
    minutes = panel(answers, uid, "Minute statistics (mean, min, max)")
    assert min(minutes.column("min")) == pytest.approx(min(IMR_VALUES))
    assert max(minutes.column("max")) == pytest.approx(max(IMR_VALUES))
    grouped = panel(answers, uid, "Incidents", char=GROUPED)
    assert grouped.column("state") == ["open"]
    assert panel(answers, uid, "Incidents").rows == []  # the diameter had none
    versions = panel(answers, uid, "Control limit versions")
    assert versions.column("version") == [1]
    assert versions.column("in force after") == [at(BASELINE - 1)]


@pytest.mark.parametrize("backend", ["on_postgres", "on_timescaledb"])
def test_the_overview_and_ingest_panels_read_incidents_grades_and_dead_letters(
    backend: str, request: pytest.FixtureRequest
) -> None:
    answers: dict[Key, Answer] = request.getfixturevalue(backend)
    incidents = panel(answers, "spcmon-plant-overview", "Incidents opened in the range")
    assert incidents.rows == [(LINE, "shaft1.grinding", "critical", 1, 1, 0)]
    grades = panel(answers, "spcmon-plant-overview", "Line grades over time")
    assert grades.column("grade") == [3, 4]
    assert grades.column("metric") == [LINE, LINE]
    uid = "spcmon-ingest-health"
    letters = panel(answers, uid, "Latest dead letters")
    assert letters.column("reason") == ["payload is not valid JSON"]
    assert letters.column("payload (start)") == ["{oops"]
    assert panel(answers, uid, "Dead letters by source").column("dead letters") == [1]
    latest = panel(answers, uid, "Data per characteristic")
    assert set(latest.column("characteristic")) == {IMR, XBAR}
