"""A SQLite file made by an earlier version gains the new columns in place, data kept."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ingest.sqlite_store import SqliteStore

OLD_TABLES = """
CREATE TABLE characteristics (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, unit TEXT NOT NULL, line TEXT NOT NULL,
    process TEXT NOT NULL, lsl REAL, usl REAL, target REAL, chart TEXT NOT NULL,
    subgroup_size INTEGER NOT NULL, rules TEXT NOT NULL, source_kind TEXT,
    source_address TEXT, origin TEXT NOT NULL
);
CREATE TABLE limit_sets (
    characteristic TEXT NOT NULL, version INTEGER NOT NULL, center REAL NOT NULL,
    ucl REAL NOT NULL, lcl REAL NOT NULL, sigma REAL NOT NULL, mr_center REAL NOT NULL,
    mr_ucl REAL NOT NULL, baseline_n INTEGER NOT NULL, created_us INTEGER NOT NULL,
    reason TEXT NOT NULL, PRIMARY KEY (characteristic, version)
);
INSERT INTO characteristics VALUES
    ('c1', 'C1', 'mm', 'l1', 'p1', 1.0, 2.0, 1.5, 'imr', 1, '["1"]', NULL, NULL, 'config');
INSERT INTO limit_sets VALUES ('c1', 1, 1.5, 1.8, 1.2, 0.1, 0.11, 0.37, 25, 0, 'baseline');
"""


@pytest.mark.anyio
async def test_an_earlier_file_gains_the_new_columns_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_TABLES)
    store = SqliteStore(path)
    await store.open()
    try:
        [record] = await store.list_characteristics()
        stored = await store.active_limits("c1")
    finally:
        await store.close()
    assert record.id == "c1"
    assert (record.ewma, record.cusum) == (None, None)
    assert stored is not None
    assert stored.limits.ucl == 1.8
    assert stored.limits.dispersion_lcl == 0.0
