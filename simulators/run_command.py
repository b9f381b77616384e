"""``python -m simulators run``: the whole simulated plant on the protocols chosen.

    python -m simulators run --config PLANT.yaml --scenario drift --seed 7 --speed 10x \\
        --opcua opc.tcp://127.0.0.1:4840 --mqtt mqtt://127.0.0.1:1883 \\
        --api http://127.0.0.1:8000 --ground-truth truth.json

One `Production` makes the parts; each output given gets them: ``--opcua`` serves the
OPC UA characteristics at that address, ``--mqtt`` publishes the vision stations' results
to that broker (with ``--sparkplug-group`` as Sparkplug B too), ``--api`` pushes cost
events and the verdicts and measurements ``--mes-data`` chooses to the service with the
key in ``SPCMON_SIM_API_KEY`` (role ``ingest``).
``--fast --parts N`` makes N parts as fast as the outputs take them, stamped backwards
from now (benchmarks); otherwise it runs until SIGINT/SIGTERM or ``--parts``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path

import httpx

from simulators import cli_args
from simulators.mes_pusher import MesPusher
from simulators.opcua_server import OpcuaLineSimulator
from simulators.plant import SimPlant, load_plant
from simulators.plant_run import Pace, PartSink, run_plant
from simulators.production import Production
from simulators.scenario import Scenario
from simulators.sinks import CameraSink, MesSink, OpcuaSink
from simulators.vision_camera import VisionCamera

_log = logging.getLogger(__name__)
API_KEY_VARIABLE = "SPCMON_SIM_API_KEY"


def add_run_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``run`` subcommand and its options."""
    run = commands.add_parser(
        "run",
        help="the whole plant: OPC UA, MQTT camera and MES push",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cli_args.add_scenario_options(run)
    run.add_argument(
        "--takt",
        type=cli_args.positive_float,
        default=1.0,
        help="seconds per part at speed 1x (default 1)",
    )
    run.add_argument(
        "--speed",
        type=cli_args.speed,
        default=1.0,
        help="run the line N times faster, e.g. 10x (default 1x)",
    )
    run.add_argument(
        "--fast",
        action="store_true",
        help="as fast as possible with simulated timestamps (needs --parts)",
    )
    run.add_argument(
        "--parts",
        type=cli_args.positive_int,
        default=None,
        help="stop after this many parts (default: run until stopped)",
    )
    run.add_argument(
        "--opcua",
        type=cli_args.opcua_listen_url,
        metavar="opc.tcp://HOST:PORT",
        help="serve the OPC UA characteristics here",
    )
    run.add_argument(
        "--mqtt",
        type=cli_args.broker_url,
        metavar="mqtt://HOST:PORT",
        help="publish the vision results to this broker",
    )
    cli_args.add_sparkplug_options(run)
    run.add_argument(
        "--api",
        type=cli_args.http_url,
        metavar="http://HOST:PORT",
        help=f"push to this service (key in ${API_KEY_VARIABLE})",
    )
    run.add_argument(
        "--mes-data",
        choices=["unsourced", "all", "costs"],
        default="unsourced",
        help="what the MES pushes besides cost events: unsourced (default: the measurements "
        "and verdicts no OPC UA or MQTT source carries), all, or costs only",
    )
    run.add_argument(
        "--dead-letters",
        type=Path,
        default=Path("mes-dead-letters.jsonl"),
        help="where the MES keeps what the service refused",
    )
    run.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace) -> int:
    """Check the options, then run the plant; return the exit code."""
    if not (args.opcua or args.mqtt or args.api):
        _log.error("nothing to send to: give --opcua, --mqtt and/or --api")
        return 2
    if args.sparkplug_group is not None and not args.mqtt:
        _log.error("--sparkplug-group needs --mqtt: the camera publishes Sparkplug B there")
        return 2
    if args.fast and args.parts is None:
        _log.error("--fast needs --parts: it stamps the parts backwards from now")
        return 2
    key = os.environ.get(API_KEY_VARIABLE)
    if args.api and not key:
        _log.error(
            "--api needs an ingest key in $%s (spcmon keys create ... --role ingest)",
            API_KEY_VARIABLE,
        )
        return 2
    return asyncio.run(_run(args, key))


async def _run(args: argparse.Namespace, key: str | None) -> int:
    plant = load_plant(args.config)
    scenario = cli_args.scenario_from(args)
    pace = Pace(takt_s=args.takt, speed=args.speed, fast=args.fast, parts=args.parts)
    production = Production(plant, scenario, takt_s=args.takt if args.fast else pace.interval_s)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    sinks: list[PartSink] = []
    try:
        async with contextlib.AsyncExitStack() as stack:
            await _open_outputs(stack, sinks, args, key, scenario, plant)
            _log.info(
                "plant %s, run id %s (in the serials): %s, seed %d, %s",
                plant.plant_id,
                production.run_id,
                scenario.fault.describe() if scenario.name != "in-control" else "in control",
                scenario.seed,
                _describe(pace),
            )

            def keep_truth(_: object) -> None:
                if args.ground_truth is not None and production.generator.parts_generated % 50 == 0:
                    production.generator.write_ground_truth(args.ground_truth)

            made = await run_plant(production, sinks, pace, stop, keep_truth)
    finally:  # an output that fails still leaves the truth of the parts made
        if args.ground_truth is not None:
            production.generator.write_ground_truth(args.ground_truth)
    for line, totals in production.totals.items():
        _log.info(
            "%s: %d parts, %d good, %d reworked, %d scrapped",
            line,
            totals.started,
            totals.good,
            totals.reworked,
            totals.scrapped,
        )
    _log.info("stopped after %d parts", made)
    return 0


async def _open_outputs(
    stack: contextlib.AsyncExitStack,
    sinks: list[PartSink],
    args: argparse.Namespace,
    key: str | None,
    scenario: Scenario,
    plant: SimPlant,
) -> None:
    """Open each output the options name on `stack`; add its sink to `sinks`."""
    if args.opcua:
        host, port = args.opcua
        server = OpcuaLineSimulator(args.config, port, scenario, takt_s=None, host=host)
        await stack.enter_async_context(server)
        sinks.append(OpcuaSink(server))
        _log.info("OPC UA line at %s", server.endpoint)
    if args.mqtt:
        sinks.append(_camera_sink(stack, args))
    if args.api:
        client = httpx.Client(
            base_url=args.api, headers={"Authorization": f"Bearer {key}"}, timeout=30.0
        )
        stack.callback(client.close)
        pusher = MesPusher(
            client,
            dead_letter_path=args.dead_letters,
            flush_interval_s=None if args.fast else 1.0,
        )
        stack.enter_context(pusher)
        sinks.append(MesSink(pusher, plant, args.mes_data))
        _log.info("MES pushing to %s (data: %s)", args.api, args.mes_data)


def _camera_sink(stack: contextlib.AsyncExitStack, args: argparse.Namespace) -> PartSink:
    host, port = args.mqtt
    camera = VisionCamera(args.config, host, port, cli_args.scenario_from(args), takt_s=None,
                          sparkplug=cli_args.sparkplug_from(args))  # fmt: skip
    stack.enter_context(camera)
    _log.info("vision camera publishing %s to mqtt://%s:%d", ", ".join(camera.stations), host,
              port)  # fmt: skip
    return CameraSink(camera)


def _describe(pace: Pace) -> str:
    if pace.fast:
        return f"{pace.parts} parts as fast as possible, {pace.takt_s} s apart in time"
    limit = f", {pace.parts} parts" if pace.parts else ""
    return f"a part every {pace.interval_s:g} s{limit}"
