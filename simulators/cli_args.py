"""Argument types and the scenario options shared by the simulators' subcommands."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from urllib.parse import urlsplit

from simulators.scenario import SCENARIO_NAMES, Scenario
from simulators.sparkplug import SparkplugOptions

DEFAULT_MQTT_PORT = 1883
DEFAULT_OPCUA_PORT = 4840
DEMO_PLANT = Path("deploy/examples/demo-plant.yaml")
#: The option that sets each `FaultSpec` field.
FAULT_FLAGS = {
    "kind": "--scenario",
    "start": "--start",
    "end": "--end",
    "size": "--size",
    "tool_change_every": "--tool-change-every",
    "period_parts": "--period",
    "rate": "--rate",
}


def add_scenario_options(parser: argparse.ArgumentParser) -> None:
    """--config, the scenario and its fault parameters, --seed, --ground-truth, --log-level."""
    parser.add_argument("--config", type=Path, default=DEMO_PLANT,
                        help=f"plant YAML file (default {DEMO_PLANT})")  # fmt: skip
    parser.add_argument("--scenario", choices=SCENARIO_NAMES, default="in-control")
    parser.add_argument("--seed", type=non_negative_int, default=1, help="random seed (default 1)")
    parser.add_argument(
        "--start",
        "--shift-after",
        dest="start",
        type=non_negative_int,
        default=100,
        help="index of the first faulty part (default 100)",
    )
    parser.add_argument(
        "--end",
        type=non_negative_int,
        default=None,
        help="first part after the fault (default: to the end; data-health faults: 20-30 parts)",
    )
    parser.add_argument(
        "--size",
        "--shift-sigma",
        dest="size",
        type=finite_float,
        default=None,
        help="the fault's magnitude: shift in sigma (default 2), drift sigma/part (0.05), "
        "sigma factor (variance 2, stratification 0.3), mixture/outlier sigma (2/5), "
        "cycle amplitude sigma (1.5)",
    )
    parser.add_argument(
        "--affected",
        "--shifted",
        dest="affected",
        action="append",
        default=[],
        metavar="CHARACTERISTIC_ID",
        help="fault only this characteristic (repeatable; default all)",
    )
    parser.add_argument(
        "--tool-change-every",
        type=positive_int,
        default=None,
        help="drift: parts between tool changes (default: none)",
    )
    parser.add_argument(
        "--period", type=positive_int, default=40, help="cyclic: parts per cycle (default 40)"
    )
    parser.add_argument(
        "--rate",
        type=finite_float,
        default=0.02,
        help="outliers: share of the parts hit (default 0.02)",
    )
    parser.add_argument("--ground-truth", type=Path, help="write the ground truth JSON here")
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )


def add_sparkplug_options(parser: argparse.ArgumentParser) -> None:
    """--sparkplug-group and --sparkplug-node: the camera as a Sparkplug B edge node too."""
    parser.add_argument("--sparkplug-group", metavar="GROUP_ID", type=_sparkplug_id,
                        help="also publish Sparkplug B under spBv1.0/GROUP_ID/...")  # fmt: skip
    parser.add_argument("--sparkplug-node", metavar="EDGE_NODE_ID", type=_sparkplug_id,
                        default="camera", help="the edge node id (default camera)")  # fmt: skip


def sparkplug_from(args: argparse.Namespace) -> SparkplugOptions | None:
    """The Sparkplug options the parsed arguments ask for, or None (JSON only)."""
    if getattr(args, "sparkplug_group", None) is None:
        return None
    return SparkplugOptions(group_id=args.sparkplug_group, edge_node_id=args.sparkplug_node)


def _sparkplug_id(text: str) -> str:
    if not text or any(c in text for c in "+/#"):
        raise argparse.ArgumentTypeError(
            f"a Sparkplug id must be non-empty without + / #: {text!r}"
        )
    return text


def scenario_from(args: argparse.Namespace) -> Scenario:
    """The `Scenario` the parsed options describe.

    Raises FaultParameterError (a ValueError) whose ``field`` `FAULT_FLAGS` maps to a flag.
    """
    return Scenario(
        name=args.scenario,
        seed=args.seed,
        start_part=args.start,
        size=args.size,
        affected=tuple(args.affected),
        end_part=args.end,
        tool_change_every=args.tool_change_every,
        period_parts=args.period,
        rate=args.rate,
    )


def finite_float(text: str) -> float:
    """A finite float, else an argparse error naming the text."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be finite, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite float > 0."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return value


def speed(text: str) -> float:
    """A speed factor: ``10x`` or ``10`` (> 0)."""
    return positive_float(text[:-1] if text.lower().endswith("x") else text)


def non_negative_int(text: str) -> int:
    """An integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1."""
    value = non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text!r}")
    return value


def port(text: str) -> int:
    """A TCP port 1-65535."""
    value = non_negative_int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port 1-65535, got {text!r}")
    return value


def broker_url(text: str) -> tuple[str, int]:
    """``mqtt://host[:port]`` -> (host, port)."""
    parts = urlsplit(text)
    if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"expected mqtt://host[:port], got {text!r}")
    try:
        return parts.hostname, parts.port or DEFAULT_MQTT_PORT
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad port in {text!r}") from None


def opcua_listen_url(text: str) -> tuple[str, int]:
    """``opc.tcp://host[:port]`` (where the simulated server listens) -> (host, port)."""
    parts = urlsplit(text)
    if parts.scheme != "opc.tcp" or not parts.hostname:
        raise argparse.ArgumentTypeError(f"expected opc.tcp://host[:port], got {text!r}")
    try:
        return parts.hostname, parts.port or DEFAULT_OPCUA_PORT
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad port in {text!r}") from None


def http_url(text: str) -> str:
    """``http(s)://host[:port][/prefix]`` of the service, without a trailing slash."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"expected http://host[:port], got {text!r}")
    return text.rstrip("/")
