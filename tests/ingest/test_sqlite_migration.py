"""A SQLite file made by an earlier version gains the new columns in place, data kept."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingest.sqlite_schema import SCHEMA_VERSION
from ingest.sqlite_store import SqliteStore
from ingest.store import Acknowledgement, AlarmRecord

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


# alarms and alarm_events as schema version 3 made them: no acknowledgement columns
V3_ALARM_TABLES = """
CREATE TABLE alarms (
    id INTEGER PRIMARY KEY, characteristic TEXT NOT NULL, rule TEXT NOT NULL,
    chart TEXT NOT NULL, state TEXT NOT NULL, opened_us INTEGER NOT NULL,
    last_us INTEGER NOT NULL, count INTEGER NOT NULL, limit_version INTEGER NOT NULL,
    last_value REAL NOT NULL, message TEXT NOT NULL
);
CREATE TABLE alarm_events (
    id INTEGER PRIMARY KEY, alarm_id INTEGER NOT NULL REFERENCES alarms (id),
    recorded_us INTEGER NOT NULL, state TEXT NOT NULL, count INTEGER NOT NULL,
    last_value REAL NOT NULL
);
CREATE TABLE schema_version (version INTEGER NOT NULL);
INSERT INTO schema_version VALUES (3);
INSERT INTO alarms VALUES (7, 'c1', '1', 'i', 'open', 0, 1000000, 2, 1, 25.04, 'Rule 1');
INSERT INTO alarm_events VALUES (1, 7, 0, 'open', 1, 25.03);
INSERT INTO alarm_events VALUES (2, 7, 1000000, 'open', 2, 25.04);
"""
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.mark.anyio
async def test_a_version_3_file_keeps_its_alarms_and_then_stores_acknowledgements(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v3.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript(V3_ALARM_TABLES)
    ack = Acknowledgement("anna", EPOCH + timedelta(minutes=5), "insert worn", None, "replaced")
    store = SqliteStore(path)
    await store.open()
    try:
        alarm = await store.get_alarm(7)
        events = await store.alarm_events(7)
        assert alarm is not None
        acked = await store.save_alarm(replace(alarm, state="acknowledged", ack=ack))
    finally:
        await store.close()
    assert alarm == AlarmRecord(
        "c1", "1", "i", "open", EPOCH, EPOCH + timedelta(seconds=1), 2, 1, 25.04, "Rule 1", 7
    )
    assert [(e.count, e.actor, e.note) for e in events] == [(1, None, None), (2, None, None)]

    reopened = SqliteStore(path)
    await reopened.open()
    try:
        assert await reopened.get_alarm(7) == acked
        [*_, last] = await reopened.alarm_events(7)
    finally:
        await reopened.close()
    assert (last.recorded_at, last.actor, last.note) == (ack.at, "anna", "insert worn")
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
