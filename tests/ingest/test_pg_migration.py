"""A PostgreSQL database left at schema version 1 is upgraded in place, its alarms kept.

Run in both modes (plain PostgreSQL, and TimescaleDB on PGlite, where each test works in
a schema of its own): migration 2 is shared by both.
"""

from __future__ import annotations

from dataclasses import astuple, replace

import psycopg
import pytest
from psycopg import sql

from ingest.pg_schema import LATEST_VERSION
from ingest.pg_store import PgOptions, PostgresStore
from ingest.store import Acknowledgement, AlarmEvent, AlarmRecord
from tests.ingest.records import T0
from tests.support.databases import blank_database, fresh_schema_name, migrate_to
from tests.support.pglite import PgliteServer
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.anyio

Old = tuple[str, PgOptions]
"""The DSN and store options of a database at schema version 1."""

OLD_ALARM = AlarmRecord(
    characteristic="c1",
    rule="1",
    chart="i",
    state="open",
    opened_at=T0,
    last_at=T0,
    count=1,
    limit_version=1,
    last_value=25.04,
    message="Rule 1: point above UCL",
)


async def _at_version_1(dsn: str, options: PgOptions) -> None:
    """Schema version 1 with one open alarm and its event, written as version 1 did."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        if options.schema is not None:
            name = sql.Identifier(options.schema)
            await conn.execute(sql.SQL("CREATE SCHEMA {}").format(name))
            await conn.execute(sql.SQL("SET search_path TO {}, public").format(name))
        await migrate_to(conn, 1, options.timescaledb)
        await conn.execute(
            "INSERT INTO alarms (characteristic, rule, chart, state, opened_at, last_at, "
            "count, limit_version, last_value, message) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
            astuple(OLD_ALARM)[:10],  # the fields before id, in the columns' order
        )
        await conn.execute(
            "INSERT INTO alarm_events (alarm_id, recorded_at, state, count, last_value) "
            "SELECT id, last_at, state, count, last_value FROM alarms"
        )


@pytest.fixture(params=["postgresql", "timescaledb"])
async def old(request: pytest.FixtureRequest, anyio_backend: str) -> Old:
    if request.param == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres")
        dsn, options = await blank_database(server.dsn), PgOptions(timescaledb="off")
    else:
        pglite: PgliteServer = request.getfixturevalue("pglite")
        dsn = pglite.dsn
        options = PgOptions(max_connections=1, timescaledb="require", schema=fresh_schema_name())
    await _at_version_1(dsn, options)
    return dsn, options


async def test_a_version_1_database_is_upgraded_to_the_latest_and_keeps_its_alarms(
    old: Old,
) -> None:
    store = PostgresStore(*old)
    await store.open()
    try:
        assert store.schema_state is not None
        assert (store.schema_state.version, store.schema_state.applied) == (
            LATEST_VERSION,
            list(range(2, LATEST_VERSION + 1)),
        )
        [alarm] = await store.list_alarms()
        assert alarm.id is not None
        assert alarm == replace(OLD_ALARM, id=alarm.id)  # no acknowledgement yet
        assert await store.get_alarm(alarm.id) == alarm
        assert await store.alarm_events(alarm.id) == [AlarmEvent(alarm.id, T0, "open", 1, 25.04)]
    finally:
        await store.close()


async def test_an_upgraded_database_stores_acknowledgements_and_is_not_migrated_again(
    old: Old,
) -> None:
    first = PostgresStore(*old)
    await first.open()
    try:
        [alarm] = await first.list_alarms()
        assert alarm.id is not None
        ack = Acknowledgement("anna", T0, "insert worn", "tool wear", None)
        acked = await first.save_alarm(replace(alarm, state="acknowledged", ack=ack))
    finally:
        await first.close()

    second = PostgresStore(*old)
    await second.open()
    try:
        assert second.schema_state is not None
        assert (second.schema_state.version, second.schema_state.applied) == (LATEST_VERSION, [])
        assert await second.get_alarm(alarm.id) == acked
        events = await second.alarm_events(alarm.id)
        assert [(e.state, e.actor, e.note) for e in events] == [
            ("open", None, None),
            ("acknowledged", "anna", "insert worn"),
        ]
    finally:
        await second.close()
