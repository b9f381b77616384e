"""The throwaway PostgreSQL server of tests/support/postgres.py: start, connect, stop, restart."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import psycopg
import pytest

from tests.support.postgres import (
    DURABLE_SETTINGS,
    ENV_BINDIR,
    postgres_unavailable,
    running_postgres,
)

# Where PostgreSQL is missing these fail with running_postgres()'s reason: the test
# command installs it, so a missing server is a broken set-up, not something to skip.


def _one(dsn: str, sql: str) -> object:
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        row = conn.execute(sql).fetchone()
        assert row is not None
        return row[0]


def test_start_connect_stop_and_start_again_keeps_data() -> None:
    with running_postgres() as pg:
        assert pg.is_running()
        assert pg.dsn == f"postgresql://spcmon@127.0.0.1:{pg.port}/spcmon"
        with psycopg.connect(pg.dsn) as conn:
            who = conn.execute("SELECT current_user, current_database()").fetchone()
            assert who == ("spcmon", "spcmon")
            assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
            assert conn.execute("SHOW fsync").fetchone() == ("off",)
            conn.execute("CREATE TABLE kept (v int)")
            conn.execute("INSERT INTO kept VALUES (42)")
        # The unix socket is in the server's own directory, not /var/run/postgresql.
        assert (pg.socket_dir / f".s.PGSQL.{pg.port}").exists()
        if os.geteuid() == 0:  # initdb refuses root: the cluster belongs to the server's user
            assert pg.data_dir.stat().st_uid == pwd.getpwnam("nobody").pw_uid

        port = pg.port
        pg.stop()
        assert not pg.is_running()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(pg.dsn, connect_timeout=2)

        pg.start()
        assert pg.port == port
        assert _one(pg.dsn, "SELECT v FROM kept") == 42
        base_dir = pg.base_dir
    assert not base_dir.exists()  # the private directory is removed on exit


def test_kill_then_start_recovers_committed_rows() -> None:
    with running_postgres(settings=DURABLE_SETTINGS) as pg:
        assert _one(pg.dsn, "SHOW fsync") == "on"
        with psycopg.connect(pg.dsn) as conn:
            conn.execute("CREATE TABLE t AS SELECT generate_series(1, 1000) AS v")
        pg.kill()
        assert not pg.is_running()
        pg.start()
        assert _one(pg.dsn, "SELECT count(*) FROM t") == 1000
        assert "database system was interrupted" in pg.log_tail(200)  # crash recovery ran


def test_missing_binaries_say_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_BINDIR, str(tmp_path))  # an empty directory: no initdb in it
    reason = postgres_unavailable()
    assert reason is not None
    assert "not found" in reason
    assert "apt-get install postgresql" in reason
    with pytest.raises(RuntimeError, match="not found"), running_postgres():
        pass
