"""Fixtures shared by the API tests: the demo plant on a throwaway SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app import Settings, create_app
from tests.support.api import key_headers


@pytest.fixture
def settings(tmp_path: Path, demo_config_path: Path) -> Settings:
    """The demo plant's service settings, data in a fresh directory."""
    return Settings(config=demo_config_path, data_dir=tmp_path / "data")


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The running app, called with an admin key (files override it for other roles)."""
    with TestClient(create_app(settings), headers=key_headers(settings)) as test_client:
        yield test_client
