"""The `spcmon` command line."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from datetime import tzinfo
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from pydantic import ValidationError

if TYPE_CHECKING:
    import httpx

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
    if args.core_dir is not None:
        return _serve_behind_front(settings, args.core_dir)
    try:
        load_checked_plant(settings)  # refuse a bad plant file before anything starts
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    if settings.alerts.notifiers_file is not None:
        from alerts.notify import NotifierConfigError, load_notifiers

        try:  # the same for the notifiers file: every problem named, not a traceback
            load_notifiers(settings.alerts.notifiers_file)
        except NotifierConfigError as exc:
            print(exc, file=sys.stderr)
            return 2
    if settings.mqtt.tls:
        from ingest.mqtt import MqttConfigError, MqttTls, check_tls

        mq = settings.mqtt
        try:  # an unreadable certificate or key: named now, not on the first connect
            check_tls(MqttTls(*(str(f) if f else None for f in (mq.ca_file, mq.cert_file,
                                                                 mq.key_file))))  # fmt: skip
        except MqttConfigError as exc:
            print(f"cannot start: {exc}", file=sys.stderr)
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
    from app.log_format import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    host, port = args.host or settings.http.host, args.port or settings.http.port
    if settings.http.status_front:
        from app.status_front import STOP_TIMEOUT_S, FrontServer, StatusFront

        front = StatusFront(settings, args.config)
        server = FrontServer(
            front,
            uvicorn.Config(front, host=host, port=port, log_config=None,
                           access_log=settings.http.access_log, lifespan="on",
                           timeout_graceful_shutdown=int(STOP_TIMEOUT_S)),
        )  # fmt: skip
        front.on_core_exit = lambda: setattr(server, "should_exit", True)
        server.run()
        if front.core_failed:  # the service's own code (2: a bad setting) unless it was 0
            return front.core_exit_code if front.core_exit_code > 0 else 1
        return 0 if server.started else 1
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_config=None,  # keep our handlers: text or JSON lines as configured
        access_log=settings.http.access_log,
    )
    return 0


def _serve_behind_front(settings: Settings, core_dir: Path) -> int:
    """The service as the status front's child: on its Unix sockets, until the front goes."""
    import uvicorn

    from app.core_process import FEED_SOCKET, HTTP_SOCKET, remove_sockets, stop_when_parent_goes
    from app.log_format import configure_logging
    from app.main import create_app

    configure_logging(settings.log_level, settings.log_format)
    stop_when_parent_goes()

    def remove_then_stop(sig: int, frame: FrameType | None) -> None:
        # uvicorn ends a signalled stop by raising the signal again with this handler back
        remove_sockets(core_dir)  # the front may be gone (killed): nobody else would
        signal.signal(sig, signal.SIG_DFL)
        signal.raise_signal(sig)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, remove_then_stop)
    uvicorn.run(
        create_app(settings, status_feed=core_dir / FEED_SOCKET),
        uds=str(core_dir / HTTP_SOCKET),
        log_config=None,
        access_log=False,  # the front logs each request once
        proxy_headers=True,
        forwarded_allow_ips="*",  # a private socket: only the front can connect
    )
    remove_sockets(core_dir)
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
    if args.notifiers is not None:
        from alerts.notify import NotifierConfigError, load_notifiers

        try:
            notifiers = load_notifiers(args.notifiers)
        except NotifierConfigError as exc:
            print(exc, file=sys.stderr)
            return 2
        print(f"{args.notifiers}: OK ({', '.join(n.name for n in notifiers) or 'no notifiers'})")
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


def _keys_create(args: argparse.Namespace) -> int:
    from app.auth import KeyFileError, KeyRing, Role
    from app.settings import Settings

    ring = KeyRing(Settings().keys_file)
    try:
        key, token = ring.create(args.name, Role(args.role))
    except (ValueError, KeyFileError) as exc:
        print(f"cannot create the key: {exc}", file=sys.stderr)
        return 2
    print(token)
    print(
        f"key {key.name!r} ({key.role.value}) stored hashed in {ring.path}; this is the only "
        "time it is shown: give it to its user now",
        file=sys.stderr,
    )
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    from app.auth import KeyRing
    from app.settings import Settings

    ring = KeyRing(Settings().keys_file)
    keys = ring.keys()
    if not keys:
        print(f"no API keys in {ring.path} (create one with 'spcmon keys create')")
    for key in keys:
        print(f"{key.name}\t{key.role.value}\tcreated {key.created_at:%Y-%m-%d %H:%M} UTC")
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    from app.auth import KeyFileError, KeyRing
    from app.settings import Settings

    ring = KeyRing(Settings().keys_file)
    try:
        revoked = ring.revoke(args.name)
    except KeyFileError as exc:
        print(exc, file=sys.stderr)
        return 1
    if not revoked:
        print(f"no key named {args.name!r} in {ring.path}", file=sys.stderr)
        return 2
    print(f"key {args.name!r} revoked; it is refused from the next request on")
    return 0


def _api_client(args: argparse.Namespace) -> httpx.Client:
    import os

    import httpx

    key = args.key or os.environ.get("SPCMON_API_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=args.api, headers=headers, timeout=60.0)


def _import(args: argparse.Namespace) -> int:
    from app.transfer import TransferError, import_aqdef, import_csv, is_aqdef, write_rejections

    if not args.file.is_file():
        print(f"no such file: {args.file}", file=sys.stderr)
        return 2
    try:
        with _api_client(args) as client:
            if is_aqdef(args.file):
                report = import_aqdef(
                    args.file, client, progress=not args.quiet, historical=not args.live,
                    mapping=dict(args.map), map_file=args.map_file, zone=args.tz,
                    encoding=args.encoding,
                )  # fmt: skip
            else:
                report = import_csv(
                    args.file, client, progress=not args.quiet, historical=not args.live
                )
    except TransferError as exc:
        print(f"import stopped: {exc}", file=sys.stderr)
        return 1
    print(f"{report.accepted} measurements accepted, {len(report.rejected)} rejected")
    for line in report.summary():
        print(line)
    if report.rejected:
        out = write_rejections(report, args.file)
        print(f"rejected rows (line, reason) written to {out}", file=sys.stderr)
        return 3
    return 0


def _export(args: argparse.Namespace) -> int:
    from datetime import datetime

    from app.transfer import TransferError, export_csv

    try:
        start, end = datetime.fromisoformat(args.start), datetime.fromisoformat(args.end)
    except ValueError as exc:
        print(f"--start/--end: {exc} (use ISO 8601 with an offset)", file=sys.stderr)
        return 2
    if start.tzinfo is None or end.tzinfo is None:
        print("--start/--end: give a UTC offset, e.g. 2026-11-02T00:00:00Z", file=sys.stderr)
        return 2
    out = args.output.open("w", newline="", encoding="utf-8") if args.output else sys.stdout
    try:
        with _api_client(args) as client:
            rows = export_csv(client, args.characteristic, start, end, out)
    except TransferError as exc:
        print(f"export stopped: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.output:
            out.close()
    print(f"{rows} measurements exported", file=sys.stderr)
    return 0


def _opcua_browse(args: argparse.Namespace) -> int:
    import asyncio

    from app.settings import Settings
    from ingest.opcua_browse import BrowseError, browse

    security = Settings().opcua.security()  # SPCMON_OPCUA__SECURITY_POLICY etc., as serve
    try:
        nodes, cut = asyncio.run(browse(args.url, args.node, args.depth, security=security))
    except BrowseError as exc:
        print(f"browse failed: {exc}", file=sys.stderr)
        return 1
    for n in nodes:
        detail = f"  {n.data_type} = {n.value}" if n.node_class == "Variable" else ""
        print(f"{'  ' * n.depth}{n.browse_name}  [{n.node_class}]  {n.node_id}{detail}")
    if cut:
        print(f"listing cut at {len(nodes)} nodes: browse from a deeper --node", file=sys.stderr)
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from simulators.cli import main as simulators_main

    return simulators_main(args.simulator_args)


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
    serve.add_argument("--core-dir", type=Path, help=argparse.SUPPRESS)  # the front's child
    serve.set_defaults(func=_serve)
    demo = sub.add_parser("demo", help="simulated lines + broker + service on this machine")
    demo.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    demo.add_argument("--data-dir", type=Path, default=Path("data/demo"))
    demo.add_argument("--shift-after", type=int, default=250, help="part index of the shift")
    demo.add_argument("--takt", type=float, default=0.2, help="seconds per part")
    demo.add_argument("--seed", type=int, default=1)
    demo.set_defaults(func=_demo)
    config = sub.add_parser("config", help="plant configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser("check", help="validate a plant config file")
    check.add_argument("path", type=Path)
    check.add_argument("--notifiers", type=Path, help="also check a notifiers file (YAML)")
    check.set_defaults(func=_check_config)
    db = sub.add_parser("db", help="database tools (PostgreSQL / TimescaleDB)")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_sub.add_parser(
        "upgrade", help="apply pending schema migrations to SPCMON_DATABASE__URL (idempotent)"
    )
    upgrade.set_defaults(func=_db_upgrade)
    keys = sub.add_parser("keys", help="API keys (stored hashed in SPCMON_AUTH__KEYS_FILE)")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key and print it (shown once)")
    create.add_argument("--name", required=True, help="who uses it, e.g. mes-line1")
    create.add_argument(
        "--role",
        required=True,
        choices=["viewer", "operator", "engineer", "ingest", "admin"],
        help="viewer reads; operator also acknowledges alarms; engineer also edits limits "
        "and characteristics; ingest only pushes measurements; admin does everything",
    )
    create.set_defaults(func=_keys_create)
    keys_sub.add_parser("list", help="list the keys (names and roles)").set_defaults(
        func=_keys_list
    )
    revoke = keys_sub.add_parser("revoke", help="delete a key by name")
    revoke.add_argument("name")
    revoke.set_defaults(func=_keys_revoke)
    _transfer_parsers(sub)
    opcua = sub.add_parser("opcua", help="OPC UA tools")
    opcua_sub = opcua.add_subparsers(dest="opcua_command", required=True)
    browse = opcua_sub.add_parser(
        "browse", help="list a server's nodes with their ids (for the plant file's sources)"
    )
    browse.add_argument("url", help="opc.tcp://host:port/path")
    browse.add_argument("--node", default="i=85", help="start node (default: Objects)")
    browse.add_argument("--depth", type=int, default=4, help="levels below it (default 4)")
    browse.set_defaults(func=_opcua_browse)
    simulate = sub.add_parser(
        "simulate",
        help="the simulated plant: spcmon simulate [run|score|opcua|camera] ... (then --help)",
    )
    simulate.add_argument("simulator_args", nargs=argparse.REMAINDER)
    simulate.set_defaults(func=_simulate)
    return parser


def _transfer_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    api = argparse.ArgumentParser(add_help=False)
    api.add_argument("--api", default="http://127.0.0.1:8000", help="the service's base URL")
    api.add_argument("--key", help="API key (default: SPCMON_API_KEY)")
    imp = sub.add_parser(
        "import",
        parents=[api],
        help="push a CSV file of measurements (characteristic,time,value[,part,lot]) or an "
        "AQDEF file (.dfq, or .dfd with its .dfx) through the API; safe to re-run",
    )
    imp.add_argument("file", type=Path)
    imp.add_argument("--quiet", action="store_true", help="no progress bar")
    imp.add_argument(
        "--live",
        action="store_true",
        help="treat the rows as live data: violations raise alarms (default: history)",
    )
    aqdef = imp.add_argument_group("AQDEF files")
    aqdef.add_argument(
        "--map", action="append", default=[], type=_map_option, metavar="K2001=ID",
        help="send the characteristic with this K2001 number (or K2002 description) to this "
        "characteristic id (repeatable; default: K2001, then K2002, equal to an id or name)",
    )  # fmt: skip
    aqdef.add_argument(
        "--map-file", type=Path, help="mappings as YAML {K2001: id} or CSV aqdef,characteristic"
    )
    aqdef.add_argument(
        "--tz", type=_zone_option, help="time zone of times without an offset, e.g. "
        "Europe/Berlin (default: this machine's local time)",
    )  # fmt: skip
    aqdef.add_argument("--encoding", help="the file's encoding (default: UTF-8, else cp1252)")
    imp.set_defaults(func=_import)
    exp = sub.add_parser("export", parents=[api], help="write measurements as CSV")
    exp.add_argument("--characteristic", required=True)
    exp.add_argument("--start", required=True, help="ISO 8601 with offset")
    exp.add_argument("--end", required=True, help="ISO 8601 with offset (exclusive)")
    exp.add_argument("--output", type=Path, help="file (default: standard output)")
    exp.set_defaults(func=_export)


def _map_option(text: str) -> tuple[str, str]:
    key, sep, target = text.partition("=")
    if not (sep and key.strip() and target.strip()):
        raise argparse.ArgumentTypeError(f"{text!r}: give K2001=ID, e.g. D1=line1.turning.diameter")
    return key.strip(), target.strip()


def _zone_option(text: str) -> tzinfo:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise argparse.ArgumentTypeError(
            f"unknown time zone {text!r} (e.g. Europe/Berlin)"
        ) from None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `spcmon` console script."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["simulate"]:  # handed over whole: argparse's REMAINDER drops leading options
        from simulators.cli import main as simulators_main

        return simulators_main(argv[1:])
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
