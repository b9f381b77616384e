"""Which store a service runs on: PostgreSQL (spooled) when a URL is set, else SQLite."""

from __future__ import annotations

from datetime import timedelta

from app.settings import DatabaseSettings, Settings
from ingest.pg_migrate import TimescalePolicies
from ingest.pg_store import PgOptions, PostgresStore
from ingest.spool import Spool, SpooledStore
from ingest.sqlite_store import SqliteStore
from ingest.store import Store


def pg_options(db: DatabaseSettings) -> PgOptions:
    """Pool and TimescaleDB options from the database settings."""
    return PgOptions(
        min_connections=1,
        max_connections=db.pool_size,
        timescaledb=db.timescaledb,
        schema=db.schema_name,
        policies=TimescalePolicies(
            expected_rate=db.expected_rate,
            compress_after=timedelta(days=db.compress_after_days),
            retention=db.retention,
        ),
    )


def build_store(settings: Settings) -> Store:
    """The configured store; a PostgreSQL store writes through a disk spool."""
    url = settings.database.url
    if url is None:
        return SqliteStore(settings.sqlite_path)
    inner = PostgresStore(url.get_secret_value(), pg_options(settings.database))
    return SpooledStore(inner, Spool(settings.spool_dir))
