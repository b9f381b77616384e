"""Fixtures of the ingest tests: a real SQLite store on a temporary file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ingest.sqlite_store import SqliteStore


@pytest.fixture
async def sqlite_store(tmp_path: Path, anyio_backend: str) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(tmp_path / "spcmon.sqlite3")
    await store.open()
    yield store
    await store.close()
