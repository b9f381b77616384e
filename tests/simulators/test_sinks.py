"""The plant's outputs: what each one hands on of a part, read back where it arrives."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from asyncua.client.client import Client

from simulators.mes_pusher import MesPusher
from simulators.mes_wire import ENDPOINT
from simulators.opcua_server import OpcuaLineSimulator
from simulators.plant import load_plant
from simulators.plant_run import Pace, PartSink, run_plant
from simulators.production import Economics, PartRun, Production
from simulators.scenario import Scenario
from simulators.sinks import MesSink, OpcuaSink
from tests.support.mosquitto import free_port

ROUGHNESS_NODE = "ns=2;s=Demo/line1/grinding/roughness"


async def _roughness_times(config: Path, production: Production) -> list[tuple[PartRun, Any]]:
    """Each part, and the SourceTimestamp of the grinding tag just after it was written."""
    server = OpcuaLineSimulator(config, free_port(), production.generator.scenario, takt_s=None)
    seen: list[tuple[PartRun, Any]] = []
    async with server, Client(server.endpoint, timeout=5) as client:
        node = client.get_node(ROUGHNESS_NODE)

        class Reader:
            name = "reader"

            async def send(self, run: PartRun) -> None:
                value = await node.read_data_value(raise_on_bad_status=False)
                seen.append((run, value.SourceTimestamp))

            async def finish(self, production: Production, at: datetime) -> None:
                pass

        sinks: list[PartSink] = [OpcuaSink(server), Reader()]
        await run_plant(production, sinks, Pace(1.0, fast=True, parts=30))
    return seen


def test_the_opcua_output_writes_no_value_of_a_station_a_scrapped_part_never_reached(
    demo_config_path: Path,
) -> None:
    # turning scraps every part it finds out of spec: grinding never measures those
    diameter = ("line1.turning.diameter",)
    scenario = Scenario("mean-shift", seed=8, start_part=0, size=4.0, affected=diameter)
    production = Production(load_plant(demo_config_path), scenario, Economics(rework_share=0.0))

    seen = asyncio.run(_roughness_times(demo_config_path, production))

    ground = [any(s.station == "line1.grinding" for s in run.stations) for run, _ in seen]
    assert 0 < sum(ground) < len(seen)
    last_ground = None
    for (run, stamp), reached in zip(seen, ground, strict=True):
        last_ground = run.at if reached else last_ground
        if last_ground is not None:  # the tag keeps the last part grinding measured
            assert stamp == last_ground


class _Accepting:
    """A push client that accepts every batch and keeps its body."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def post(self, url: str, *, json: Any) -> httpx.Response:
        assert url == ENDPOINT
        self.bodies.append(json)
        rows = sum(len(json[k]) for k in ("measurements", "verdicts", "cost_events"))
        return httpx.Response(202, json={"accepted": rows, "rejected": []})


def test_the_mes_output_sends_cost_events_in_the_economics_currency(
    demo_config_path: Path, tmp_path: Path
) -> None:
    plant = load_plant(demo_config_path)
    scenario = Scenario("mean-shift", seed=3, start_part=0, size=4.0)
    production = Production(plant, scenario, Economics(currency="EUR", value_every=10))
    client = _Accepting()
    pusher = MesPusher(client, dead_letter_path=tmp_path / "dead.jsonl", flush_interval_s=None)

    asyncio.run(run_plant(production, [MesSink(pusher, plant, "costs")], Pace(fast=True, parts=40)))

    costs = [row for body in client.bodies for row in body["cost_events"]]
    assert {row["category"] for row in costs} >= {"scrap", "output_value"}
    assert {row["currency"] for row in costs} == {"EUR"}
