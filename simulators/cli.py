"""Command line: run a simulated OPC UA line or vision camera until SIGINT/SIGTERM.

    python -m simulators opcua --config PATH --port 4840 --scenario mean-shift \\
        --shift-sigma 2 --shift-after 150 --seed 1 --takt 0.2 [--ground-truth out.json]
    python -m simulators camera --config PATH --broker mqtt://127.0.0.1:1883 ...
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import signal
import threading
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from simulators.opcua_server import OpcuaLineSimulator
from simulators.plant import SimPlant, load_plant
from simulators.scenario import SCENARIO_NAMES, Scenario
from simulators.vision_camera import VisionCamera

_log = logging.getLogger(__name__)

DEFAULT_MQTT_PORT = 1883


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv`, run the chosen simulator until SIGINT/SIGTERM; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    plant = _load_or_exit(parser, args.config)
    _check_shifted(parser, plant, args.shifted)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("asyncua").setLevel(max(logging.WARNING, logging.getLogger().level))
    scenario = Scenario(
        name=args.scenario,
        seed=args.seed,
        shift_sigma=args.shift_sigma,
        shift_after_parts=args.shift_after,
        shifted=tuple(args.shifted),
    )
    try:
        if args.command == "opcua":
            return asyncio.run(_serve_opcua(args, scenario))
        return _serve_camera(args, scenario)
    except (OSError, ValueError) as exc:
        _log.error("%s simulator failed: %s", args.command, exc)
        return 1


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with its `opcua` and `camera` subcommands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, required=True, help="plant YAML file")
    common.add_argument("--scenario", choices=SCENARIO_NAMES, default="in-control")
    common.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    common.add_argument(
        "--shift-sigma",
        type=_finite_float,
        default=2.0,
        help="mean shift in sigmas (mean-shift scenario; default 2)",
    )
    common.add_argument(
        "--shift-after",
        type=_non_negative_int,
        default=100,
        help="index of the first shifted part (default 100)",
    )
    common.add_argument(
        "--shifted",
        action="append",
        default=[],
        metavar="CHARACTERISTIC_ID",
        help="shift only this characteristic (repeatable; default all)",
    )
    common.add_argument("--takt", type=_positive_float, default=0.2, help="seconds per part")
    common.add_argument("--ground-truth", type=Path, help="write the ground truth JSON here")
    common.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    parser = argparse.ArgumentParser(
        prog="python -m simulators",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    opcua = commands.add_parser("opcua", parents=[common], help="serve an OPC UA line")
    opcua.add_argument("--port", type=_port, default=4840)
    opcua.add_argument("--host", default="127.0.0.1", help="address to listen on")
    camera = commands.add_parser("camera", parents=[common], help="publish vision results")
    camera.add_argument(
        "--broker",
        type=_broker_url,
        default=("127.0.0.1", DEFAULT_MQTT_PORT),
        help="mqtt://host[:port] (default mqtt://127.0.0.1:1883)",
    )
    return parser


async def _serve_opcua(args: argparse.Namespace, scenario: Scenario) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    sim = OpcuaLineSimulator(
        args.config,
        args.port,
        scenario,
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


def _serve_camera(args: argparse.Namespace, scenario: Scenario) -> int:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    host, port = args.broker
    camera = VisionCamera(
        args.config,
        host,
        port,
        scenario,
        args.takt,
        ground_truth_path=args.ground_truth,
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
    if args.scenario == "mean-shift":
        which = ", ".join(args.shifted) if args.shifted else "all characteristics"
        text += f", {args.shift_sigma} sigma shift of {which} from part {args.shift_after}"
    return text


def _load_or_exit(parser: argparse.ArgumentParser, path: Path) -> SimPlant:
    try:
        return load_plant(path)
    except (OSError, ValueError) as exc:
        parser.error(f"argument --config: {exc}")


def _check_shifted(parser: argparse.ArgumentParser, plant: SimPlant, shifted: list[str]) -> None:
    known = {c.id for c in plant.characteristics}
    unknown = sorted(set(shifted) - known)
    if unknown:
        parser.error(
            f"argument --shifted: unknown characteristic ids {unknown}; "
            f"the config has {sorted(known)}"
        )


def _positive_float(text: str) -> float:
    value = _finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return value


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be finite, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def _port(text: str) -> int:
    value = _non_negative_int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port 1-65535, got {text!r}")
    return value


def _broker_url(text: str) -> tuple[str, int]:
    parts = urlsplit(text)
    if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"expected mqtt://host[:port], got {text!r}")
    try:
        port = parts.port or DEFAULT_MQTT_PORT
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad port in {text!r}") from None
    return parts.hostname, port
