"""The `spcmon` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

if TYPE_CHECKING:
    from app.settings import Settings
    from ingest.pg_store import PostgresStore


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.main import create_app
    from app.settings import Settings
    from app.wiring import load_checked_plant
    from ingest import ConfigError
    from ingest.errors import StoreError

    overrides = {"config": args.config} if args.config else {}
    settings = Settings(**overrides)
    try:
        load_checked_plant(settings)  # refuse a bad plant file before anything starts
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    if settings.database.url is not None:
        try:  # a database that cannot be reached is one clear line, not a traceback
            _upgrade_database(settings)
        except StoreError as exc:
            print(
                f"cannot start: {exc}\ncheck SPCMON_DATABASE__URL (host, port, user, password, "
                "database) and that the server is running",
                file=sys.stderr,
            )
            return 1
    uvicorn.run(
        create_app(settings),
        host=args.host or settings.http.host,
        port=args.port or settings.http.port,
    )
    return 0


def _check_config(args: argparse.Namespace) -> int:
    from app.settings import Settings
    from app.wiring import load_checked_plant
    from ingest import ConfigError

    try:
        plant = load_checked_plant(Settings(config=args.path))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    count = sum(1 for _ in plant.iter_characteristics())
    print(f"{args.path}: OK ({len(plant.lines)} lines, {count} characteristics)")
    return 0


def _upgrade_database(settings: Settings) -> PostgresStore:
    """Open the configured PostgreSQL store once (migrations, policies) and close it.

    Raises ``StoreError`` with the reason; the store returned tells what was applied.
    """
    import asyncio

    from app.storage import pg_options
    from ingest.pg_store import PostgresStore

    assert settings.database.url is not None
    store = PostgresStore(settings.database.url.get_secret_value(), pg_options(settings.database))

    async def upgrade() -> None:
        await store.open()  # applies pending migrations and the storage policies
        await store.close()

    asyncio.run(upgrade())
    return store


def _db_upgrade(args: argparse.Namespace) -> int:
    from app.settings import Settings
    from ingest.errors import StoreError

    settings = Settings()
    if settings.database.url is None:
        print(
            "SPCMON_DATABASE__URL is not set: nothing to upgrade (the embedded SQLite store "
            "brings its file up to date when the service starts)",
            file=sys.stderr,
        )
        return 2
    try:
        store = _upgrade_database(settings)
    except StoreError as exc:
        print(f"database upgrade failed: {exc}", file=sys.stderr)
        return 1
    state = store.schema_state
    assert state is not None  # set by open()
    applied = ", ".join(str(v) for v in state.applied) or "none (already up to date)"
    print(f"schema version {state.version}, {state.kind} mode; migrations applied: {applied}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from app.demo import run_demo

    run_demo(args.port, args.data_dir, args.shift_after, args.takt, args.seed)
    return 0


def settings_problems(exc: ValidationError) -> str:
    """Setting errors named by the environment variable that sets them."""
    lines = [
        f"  - SPCMON_{'__'.join(str(part).upper() for part in err['loc'])}: "
        f"{err['msg'].removeprefix('Value error, ')}"
        for err in exc.errors()
    ]
    return "invalid settings:\n" + "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spcmon", description="Real-time SPC monitoring")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the service (settings from SPCMON_* variables)")
    serve.add_argument("--config", type=Path, help="plant config file (YAML)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=_serve)
    demo = sub.add_parser("demo", help="simulated lines + broker + service on this machine")
    demo.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    demo.add_argument("--data-dir", type=Path, default=Path("data/demo"))
    demo.add_argument("--shift-after", type=int, default=150, help="part index of the shift")
    demo.add_argument("--takt", type=float, default=0.2, help="seconds per part")
    demo.add_argument("--seed", type=int, default=1)
    demo.set_defaults(func=_demo)
    config = sub.add_parser("config", help="plant configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser("check", help="validate a plant config file")
    check.add_argument("path", type=Path)
    check.set_defaults(func=_check_config)
    db = sub.add_parser("db", help="database tools (PostgreSQL / TimescaleDB)")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_sub.add_parser(
        "upgrade", help="apply pending schema migrations to SPCMON_DATABASE__URL (idempotent)"
    )
    upgrade.set_defaults(func=_db_upgrade)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `spcmon` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("asyncua").setLevel(logging.WARNING)  # it logs every publish at INFO
    try:
        return int(args.func(args))
    except ValidationError as exc:
        print(settings_problems(exc), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
