"""Shared fixtures: real peers (mosquitto) on free ports."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.support.mosquitto import Broker, running_mosquitto
from tests.support.pglite import PgliteServer, pglite_available, running_pglite
from tests.support.postgres import PostgresServer, postgres_unavailable, running_postgres

# Deterministic by default: the same examples on every run, so CI is reproducible and a
# failure replays. `HYPOTHESIS_PROFILE=explore ./scripts/test` searches new random ones.
settings.register_profile("default", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# The tests use a 25-point Phase I (quicker to fill); the product's default is 300, which
# the alerting needs (README "Alerts"). Set before any Settings is built; subprocesses
# (the demo, the CLI) inherit it.
os.environ.setdefault("SPCMON_SPC__BASELINE_SIZE", "25")

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_CONFIG = REPO_ROOT / "deploy" / "examples" / "demo-plant.yaml"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Broker]:
    """A fresh mosquitto broker for one test."""
    with running_mosquitto(tmp_path / "mosquitto") as broker:
        yield broker


@pytest.fixture
def demo_config_path() -> Path:
    return DEMO_CONFIG


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the session; tests make their own databases on it.

    PostgreSQL is part of the product, so a missing server is a failure, not a skip
    (``./scripts/test`` installs it).
    """
    if reason := postgres_unavailable():
        pytest.fail(reason)
    with running_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def pglite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgliteServer]:
    """PostgreSQL 17 with TimescaleDB (PGlite, WASM) for the session: one client at a time.

    The TimescaleDB path is part of the product, so a missing PGlite fails the run
    (``./scripts/bootstrap --test`` installs it from the lock file).
    """
    if reason := pglite_available():
        pytest.fail(reason)
    with running_pglite(tmp_path_factory.mktemp("pglite") / "pgdata") as server:
        yield server
