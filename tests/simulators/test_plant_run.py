"""The whole simulated plant run: paces, the OPC UA output read by a client, the MES output
stored by the real service, and the ``run`` command's checks."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asyncua.client.client import Client
from fastapi.testclient import TestClient

from app import Settings, create_app
from app.auth import Role
from simulators.cli import main
from simulators.mes_pusher import MesPusher
from simulators.opcua_server import OpcuaLineSimulator
from simulators.plant import load_plant
from simulators.plant_run import Pace, PartSink, run_plant
from simulators.production import PartRun, Production
from simulators.scenario import Scenario
from simulators.sinks import MesSink, OpcuaSink
from tests.support.api import key_headers
from tests.support.mosquitto import free_port

DIAMETER_NODE = "ns=2;s=Demo/line1/turning/diameter"


class _Recorder:
    name = "recorder"

    def __init__(self) -> None:
        self.runs: list[PartRun] = []
        self.finished: datetime | None = None

    async def send(self, run: PartRun) -> None:
        self.runs.append(run)

    async def finish(self, production: Production, at: datetime) -> None:
        self.finished = at


class _Broken:
    name = "broken output"

    async def send(self, run: PartRun) -> None:
        raise OSError("cable cut")

    async def finish(self, production: Production, at: datetime) -> None:
        raise OSError("cable cut")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    demo = Path(__file__).resolve().parents[2] / "deploy" / "examples" / "demo-plant.yaml"
    settings = Settings(config=demo, data_dir=tmp_path_factory.mktemp("plant-run") / "data")
    with TestClient(create_app(settings), headers=key_headers(settings, Role.ADMIN)) as client:
        yield client


def test_the_fast_pace_stamps_parts_one_takt_apart_ending_now(demo_config_path: Path) -> None:
    production = Production(load_plant(demo_config_path), Scenario("in-control", seed=1))
    recorder = _Recorder()
    before = datetime.now(UTC)

    made = asyncio.run(run_plant(production, [_Broken(), recorder], Pace(2.0, fast=True, parts=30)))

    times = [r.at for r in recorder.runs]
    assert made == 30 == len(times)
    assert all(b - a == timedelta(seconds=2) for a, b in itertools.pairwise(times))
    assert before - timedelta(seconds=61) < times[0] < before - timedelta(seconds=59)
    assert recorder.finished == times[0] + timedelta(seconds=60)  # a broken output is skipped


def test_the_live_pace_makes_a_part_every_takt_over_speed(demo_config_path: Path) -> None:
    production = Production(load_plant(demo_config_path), Scenario("in-control", seed=1))
    recorder = _Recorder()

    made = asyncio.run(run_plant(production, [recorder], Pace(1.0, speed=20, parts=6)))

    # parts are due on a fixed schedule, one every 1 s / 20 = 50 ms from the first: never
    # early, and a late one (a loaded machine) is followed by a shorter gap, not a drift
    since_first = [(r.at - recorder.runs[0].at).total_seconds() for r in recorder.runs]
    assert made == 6
    assert all(t >= 0.05 * i - 0.005 for i, t in enumerate(since_first)), since_first
    assert since_first[-1] < 0.25 + 0.5, since_first  # not a second per part


def test_a_pace_that_cannot_work_is_refused() -> None:
    with pytest.raises(ValueError, match="fast pace needs a number of parts"):
        Pace(fast=True)
    with pytest.raises(ValueError, match="speed must be > 0"):
        Pace(speed=0)


async def _opcua_reads(config: Path, scenario: Scenario) -> list[tuple[float | None, bool]]:
    plant = load_plant(config)
    production = Production(plant, scenario)
    server = OpcuaLineSimulator(config, free_port(), scenario, takt_s=None)
    reads: list[tuple[float | None, bool]] = []
    async with server, Client(server.endpoint, timeout=5) as client:
        node = client.get_node(DIAMETER_NODE)

        class Reader:
            name = "reader"

            async def send(self, run: PartRun) -> None:
                value = await node.read_data_value(raise_on_bad_status=False)
                reads.append((value.Value.Value, value.StatusCode.is_good()))

            async def finish(self, production: Production, at: datetime) -> None:
                pass

        sinks: list[PartSink] = [OpcuaSink(server), Reader()]
        await run_plant(production, sinks, Pace(1.0, fast=True, parts=6))
        expected = production.generator
        assert expected.parts_generated == 6
    return reads


def test_the_opcua_output_writes_each_part_and_marks_bad_quality(demo_config_path: Path) -> None:
    scenario = Scenario("bad-quality", seed=2, start_part=2, end_part=4)
    plain = Production(load_plant(demo_config_path), Scenario("in-control", seed=2))
    expected = [plain.next_part().readings.values["line1.turning.diameter"] for _ in range(6)]

    reads = asyncio.run(_opcua_reads(demo_config_path, scenario))

    # OPC UA Part 4, 7.7.1: the server nulls the value of a Bad data value
    assert [value for value, _ in reads] == pytest.approx(
        [*expected[:2], None, None, *expected[4:]]
    )
    assert [good for _, good in reads] == [True, True, False, False, True, True]


def test_the_mes_output_pushes_verdicts_costs_and_the_chosen_measurements(
    service: TestClient, demo_config_path: Path, tmp_path: Path
) -> None:
    plant = load_plant(demo_config_path)
    scenario = Scenario("mean-shift", seed=3, start_part=0, size=4.0)
    production = Production(plant, scenario)
    pusher = MesPusher(service, dead_letter_path=tmp_path / "dead.jsonl", flush_interval_s=None)
    sink = MesSink(pusher, plant, "all")

    recorder = _Recorder()
    made = asyncio.run(run_plant(production, [sink, recorder], Pace(1.0, fast=True, parts=120)))

    stats = pusher.stats
    # a scrapped part is measured by no later station
    measured = sum(len(s.values) for r in recorder.runs for s in r.stations)
    totals = production.totals.values()
    inspections = sum(t.inspected + t.reworked for t in totals)  # first and re-inspections
    flushed = sum(1 for t in totals if t.good % 100)  # output value not yet reported at the end
    costs = sum(len(r.costs) for r in recorder.runs) + flushed
    assert costs - flushed - sum(t.good // 100 for t in totals) == sum(
        t.reworked + t.scrapped for t in totals
    )
    assert made == 120
    assert (stats.rows_dead_lettered, stats.rows_rejected) == (0, 0)
    assert stats.rows_accepted == measured + inspections + costs
    assert 0 < 120 * len(plant.characteristics) - measured <= production.totals["line1"].scrapped
    store = service.app.state.service.store  # type: ignore[attr-defined]
    start, end = production.generator.ground_truth()["started_at"], datetime.now(UTC)
    since = datetime.fromisoformat(start) - timedelta(seconds=1)
    first_pass = service.portal.call(store.first_pass_counts, since, end)  # type: ignore[union-attr]
    by_station = {c.process: c for c in first_pass}
    assert by_station["line2.vision"].inspected == production.totals["line2"].inspected
    money = service.portal.call(store.cost_totals, since, end)  # type: ignore[union-attr]
    scrap = sum(c.amount for c in money if c.category == "scrap")
    assert scrap == sum(t.losses["scrap"] for t in totals) > 0
    answer = service.get(
        "/api/v1/measurements",
        params={"characteristic": "line2.vision.gap", "start": start, "limit": 1000},
    )
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["items"]) == 120


def test_the_run_command_refuses_what_cannot_work(
    demo_config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = ["run", "--config", str(demo_config_path)]
    monkeypatch.delenv("SPCMON_SIM_API_KEY", raising=False)
    assert main(base) == 2  # no output given
    assert main([*base, "--api", "http://127.0.0.1:9", "--fast"]) == 2  # fast without parts
    assert main([*base, "--api", "http://127.0.0.1:9"]) == 2  # no key
