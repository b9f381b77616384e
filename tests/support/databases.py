"""Fresh PostgreSQL databases on a shared test server, cloned from a migrated template.

Creating a database from a template that already carries the schema takes a few tens of
milliseconds, so every test gets an empty database of its own.
"""

from __future__ import annotations

import itertools
from urllib.parse import urlsplit, urlunsplit

import psycopg

from ingest.pg_migrate import Conn, TimescaleMode, migration_lock, upgrade
from ingest.pg_store import PostgresStore

_counter = itertools.count()
_TEMPLATE = "spcmon_migrated"


def with_database(dsn: str, name: str) -> str:
    """The same server's DSN with another database name."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def fresh_database(server_dsn: str) -> str:
    """A new empty database with the current schema; returns its DSN."""
    template = with_database(server_dsn, _TEMPLATE)
    async with await psycopg.AsyncConnection.connect(server_dsn, autocommit=True) as conn:
        exists = await (
            await conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (_TEMPLATE,))
        ).fetchone()
        if exists is None:
            await conn.execute(f"CREATE DATABASE {_TEMPLATE}")
            store = PostgresStore(template)
            await store.open()  # applies the migrations to the template
            await store.close()
        name = f"test_{next(_counter)}"
        await conn.execute(f"DROP DATABASE IF EXISTS {name}")
        await conn.execute(f"CREATE DATABASE {name} TEMPLATE {_TEMPLATE}")
    return with_database(server_dsn, name)


async def blank_database(server_dsn: str) -> str:
    """A new database without our schema; returns its DSN."""
    name = f"blank_{next(_counter)}"
    async with await psycopg.AsyncConnection.connect(server_dsn, autocommit=True) as conn:
        await conn.execute(f"DROP DATABASE IF EXISTS {name}")
        await conn.execute(f"CREATE DATABASE {name}")
    return with_database(server_dsn, name)


async def migrate_to(conn: Conn, version: int, timescale: TimescaleMode = "off") -> None:
    """Apply the migrations up to ``version`` only, on the connection's search path: the
    database an earlier release left behind."""
    async with migration_lock(conn):
        state = await upgrade(conn, timescale, target=version)
    assert state.version == version


def fresh_schema_name() -> str:
    """A schema name not used before in this test run (for single-database servers)."""
    return f"test_{next(_counter)}"
