"""Command line of the simulators (also ``spcmon simulate ...``).

    python -m simulators run --config PLANT.yaml --scenario drift --seed 7 --speed 10x \\
        --opcua opc.tcp://127.0.0.1:4840 --mqtt mqtt://127.0.0.1:1883 --api http://...
    python -m simulators score --truth truth.json --api http://127.0.0.1:8000
    python -m simulators opcua --config PLANT.yaml --port 4840 --scenario mean-shift ...
    python -m simulators camera --config PLANT.yaml --broker mqtt://127.0.0.1:1883 ...

Options without a subcommand, or no arguments at all, mean ``run``; ``--config`` defaults to
the demo plant (deploy/examples/demo-plant.yaml, from the current directory). ``opcua`` and
``camera`` run one kind of equipment alone, each with its own scenario and part counter.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import threading
from collections.abc import Sequence

from simulators import cli_args
from simulators.faults import FaultParameterError
from simulators.mes_pusher import PusherConfigError
from simulators.opcua_server import OpcuaLineSimulator
from simulators.plant import SimPlant, load_plant
from simulators.plant_run import OutputRefused
from simulators.run_command import add_run_parser
from simulators.scenario import Scenario
from simulators.score_command import add_score_parser
from simulators.vision_camera import VisionCamera

_log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv`, run the chosen command; return the exit code."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("--") and argv[0] != "--help"):
        argv = ["run", *argv]
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("asyncua").setLevel(max(logging.WARNING, logging.getLogger().level))
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
    if hasattr(args, "config"):
        plant = _load_or_exit(parser, args)
        _check_affected(parser, plant, args.affected)
        try:
            cli_args.scenario_from(args)
        except FaultParameterError as exc:
            parser.error(f"argument {cli_args.FAULT_FLAGS[exc.field]}: {exc}")
    try:
        code: int = args.handler(args)
        return code
    except (OSError, ValueError, ConnectionError, OutputRefused, PusherConfigError) as exc:
        _log.error("%s failed: %s", args.command, exc)
        return 1


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with its subcommands."""
    common = argparse.ArgumentParser(add_help=False)
    cli_args.add_scenario_options(common)
    common.add_argument(
        "--takt", type=cli_args.positive_float, default=0.2, help="seconds per part"
    )
    parser = argparse.ArgumentParser(
        prog="python -m simulators",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    add_run_parser(commands)
    add_score_parser(commands)
    opcua = commands.add_parser("opcua", parents=[common], help="serve one OPC UA line")
    opcua.add_argument("--port", type=cli_args.port, default=cli_args.DEFAULT_OPCUA_PORT)
    opcua.add_argument("--host", default="127.0.0.1", help="address to listen on")
    opcua.set_defaults(handler=lambda args: asyncio.run(_serve_opcua(args)))
    camera = commands.add_parser("camera", parents=[common], help="publish vision results")
    camera.add_argument(
        "--broker",
        type=cli_args.broker_url,
        default=("127.0.0.1", cli_args.DEFAULT_MQTT_PORT),
        help="mqtt://host[:port] (default mqtt://127.0.0.1:1883)",
    )
    cli_args.add_sparkplug_options(camera)
    camera.set_defaults(handler=_serve_camera)
    return parser


async def _serve_opcua(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    sim = OpcuaLineSimulator(
        args.config,
        args.port,
        cli_args.scenario_from(args),
        args.takt,
        host=args.host,
        ground_truth_path=args.ground_truth,
    )
    async with sim:
        _log.info(
            "OPC UA line simulator serving %d characteristics of plant %s at %s (%s)",
            len(sim.characteristics),
            sim.plant_id,
            sim.endpoint,
            _describe(args),
        )
        await stop.wait()
    _log.info("stopped after %d parts", sim.parts_published)
    return 0


def _serve_camera(args: argparse.Namespace) -> int:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    host, port = args.broker
    camera = VisionCamera(
        args.config,
        host,
        port,
        cli_args.scenario_from(args),
        args.takt,
        ground_truth_path=args.ground_truth,
        sparkplug=cli_args.sparkplug_from(args),
    )
    camera.start()
    try:
        _log.info(
            "vision camera publishing %s to mqtt://%s:%d (%s)",
            ", ".join(camera.stations),
            host,
            port,
            _describe(args),
        )
        while not stop.wait(0.5):
            pass
    finally:
        camera.stop()
    _log.info("stopped after %d parts", camera.parts_published)
    return 0


def _describe(args: argparse.Namespace) -> str:
    text = f"scenario {args.scenario}, seed {args.seed}, takt {args.takt} s"
    scenario: Scenario = cli_args.scenario_from(args)
    if scenario.name != "in-control":
        which = ", ".join(args.affected) if args.affected else "all characteristics"
        text += f", {scenario.fault.describe()} on {which}"
    return text


def _load_or_exit(parser: argparse.ArgumentParser, args: argparse.Namespace) -> SimPlant:
    try:
        return load_plant(args.config)
    except (OSError, ValueError) as exc:
        parser.error(f"argument --config: {exc}")


def _check_affected(parser: argparse.ArgumentParser, plant: SimPlant, affected: list[str]) -> None:
    known = {c.id for c in plant.characteristics}
    unknown = sorted(set(affected) - known)
    if unknown:
        parser.error(
            f"argument --affected: unknown characteristic ids {unknown}; "
            f"the config has {sorted(known)}"
        )
