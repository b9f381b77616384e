"""``python -m simulators score``: score a run's ground truth against the service's signals.

    SPCMON_SIM_API_KEY=spc_... python -m simulators score --truth truth.json \\
        --api http://127.0.0.1:8000 [--sources location,ewma] [--json]

Reads every characteristic of the ground truth from the service's chart and alarms API
(a viewer key is enough; none when the service allows anonymous reads) and prints the
detection report (`simulators.scorer` defines every figure) as Markdown, or JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from simulators import cli_args
from simulators.score_report import render_markdown
from simulators.scorer import ALL_SOURCES, detector, parse_ground_truth, score
from simulators.service_reader import ServiceReadError, read_signals

_log = logging.getLogger(__name__)
API_KEY_VARIABLE = "SPCMON_SIM_API_KEY"


def add_score_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``score`` subcommand and its options."""
    cmd = commands.add_parser(
        "score",
        help="detection delays and false alarms of a run, from the service's API",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmd.add_argument("--truth", type=Path, required=True, help="the run's ground truth JSON")
    cmd.add_argument("--api", type=cli_args.http_url, required=True, metavar="http://HOST:PORT")
    cmd.add_argument(
        "--sources",
        type=_sources,
        default=None,
        help=f"signals that count, comma-separated from {sorted(ALL_SOURCES)} (default all)",
    )
    cmd.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    cmd.add_argument(
        "--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    cmd.set_defaults(handler=score_command)


def score_command(args: argparse.Namespace) -> int:
    """Read the truth and the service's signals, print the report; return the exit code."""
    try:
        truth = parse_ground_truth(json.loads(args.truth.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        _log.error("--truth %s: %s", args.truth, exc)
        return 2
    key = os.environ.get(API_KEY_VARIABLE)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(base_url=args.api, headers=headers, timeout=60.0) as client:
        try:
            observed = read_signals(client, truth)
        except (ServiceReadError, httpx.HTTPError) as exc:
            _log.error("reading %s: %s", args.api, exc)
            return 1
    report = score(truth, observed, args.sources)
    if args.json:
        print(json.dumps(dataclasses.asdict(report), default=_json_default, indent=2))
    else:
        print(render_markdown(report), end="")
    return 0


def _sources(text: str) -> frozenset[str]:
    names = {name.strip() for name in text.split(",") if name.strip()}
    unknown = sorted(names - ALL_SOURCES - {"rules"})
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown sources {unknown or [text]}; choose from {sorted(ALL_SOURCES | {'rules'})}"
        )
    return detector(names)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, frozenset | set | tuple):
        return sorted(value) if isinstance(value, frozenset | set) else list(value)
    raise TypeError(f"not JSON-able: {type(value).__name__}")
