"""End to end: a simulated plant whose true quality grades are known, graded by the service.

The real service (uvicorn on a free port, SQLite store in tmp_path) receives the real plant
simulator's parts through the MES push (`MesSink` + `MesPusher`, fast pace: 1,000 parts per
line stamped backwards from now), plus one customer claim; the grades are then read over
HTTP as a viewer.

The plant (tests/fixtures/grades-plant.yaml) has two lines of two single-characteristic
stations each. Every characteristic is a deviation in um with the tolerance -4.5..+4.5; the
simulator runs it at sigma = (usl - lsl) / (6 x 1.5) = 9 / 9 = 1.0 um around its target
(simulators/plant.py), so:

line A -- centred targets, in control:
    true Cpk = 4.5 / (3 x 1.0) = 1.50, mid-band of Assurance [1.33, 1.67).
    Out of spec: P(|z| > 4.5) = 6.8e-6 per value, so 1,000 parts x 2 stations
    expect 0.014 NOK parts: first-pass yield 100 % (grade 5), 0 defects (sigma level,
    grade 5), no scrap or rework (internal loss 0 %, grade 5), no claim (external 0 % of
    200,000 CNY, grade 5). Line A: grade 3 Assurance, limited by ``cpk``. (Even one NOK
    part would leave this so: 1 in 2,000 inspections is 500 DPMO, sigma grade 3, a tie
    that the order cpk, yield, sigma, ... gives to ``cpk``.)
line B -- centred targets; the scenario ("variance", factor 0.6 from part 0 on line B's
    characteristics only) runs both at sigma 0.6 um, a stationary in-control process:
    true Cpk = 4.5 / (3 x 0.6) = 2.50 (grade 5). Values out of spec: 7.5 sigma away,
    none. Output value 1,000 good parts x 200 CNY = 200,000 CNY; a 1,500 CNY claim is an
    external loss rate of 0.75 %, mid-band of Prevention [0.5 %, 1.0 %). Every other
    metric is at grade 5. Line B: grade 4 Prevention, limited by ``external_loss_rate``.
plant -- its Cpk and rolled yield are its weakest line's (line A: Cpk 1.50, grade 3);
    its losses pool every scope: external 1,500 / 400,000 = 0.375 % (< 0.5 %, grade 5).
    Plant: grade 3 Assurance, limited by ``cpk``.

Estimation noise. Bissell: SE(Cpk) ~ sqrt(1/(9n) + Cpk^2 / (2(n - 1))) is 0.035 at Cpk
1.5 and 0.056 at 2.50 for n = 1,000, with sigma from the sample standard deviation. The
service takes sigma within from the average moving range (MR-bar / d2), less efficient:
simulated (4,000 runs of n = 1,000) its SE is 0.044 at 1.5 and 0.072 at 2.50. Line A's
band edges lie 0.17 = 3.8 SE from 1.50; line B's grade-5 edge lies 0.50 = 6.9 SE below
2.50. The grades take the Cpk over the grading period: all 1,000 points, not the engine's
rolling window of 100 (whose SE, 0.14 at 1.5, would be too wide for a band of +-0.17).
The test reads every value from the API. The seed is fixed, so the run is reproducible;
the margins say it is not a lucky one.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np
import pytest
import uvicorn

from app import Settings, create_app
from app.auth import Role
from simulators.mes_pusher import MesPusher
from simulators.plant import SimPlant, load_plant
from simulators.plant_run import Pace, run_plant
from simulators.production import Economics, Production
from simulators.scenario import Scenario
from simulators.sinks import MesSink
from tests.support.api import key_headers
from tests.support.mosquitto import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

PLANT_FILE = Path(__file__).parent / "fixtures" / "grades-plant.yaml"
PLANT_ID = "grading-e2e"
PARTS = 1_000
SEED = 20_231_229  # fixed: the same parts on every run
LINE_A = ("lineA.turning.bore", "lineA.grinding.shoulder")
LINE_B = ("lineB.pressing.depth", "lineB.vision.gap")
B_SIGMA_FACTOR = 0.6
CLAIM_CNY = 1_500.0
ECONOMICS = Economics()  # 200 CNY a good part, reported every 100 good parts

CPK_A = 1.50  # design values, checked against the plant file below
CPK_B = 4.5 / (3 * B_SIGMA_FACTOR)  # 2.50
SE_CPK_A = 0.044  # moving-range Cpk, n = 1,000 (module docstring)
SE_CPK_B = 0.072
BAND = 3.5  # standard errors

T = TypeVar("T")


def _scenario() -> Scenario:
    """Line B tighter (sigma x 0.6) from the first part; line A untouched, in control."""
    return Scenario("variance", SEED, start_part=0, size=B_SIGMA_FACTOR, affected=LINE_B)


def _true_cpk(plant: SimPlant, characteristic: str, sigma_factor: float = 1.0) -> float:
    char = next(c for c in plant.characteristics if c.id == characteristic)
    assert char.lsl is not None
    assert char.usl is not None
    sigma = char.sigma * sigma_factor
    return min(char.usl - char.nominal, char.nominal - char.lsl) / (3 * sigma)


def test_the_plant_file_gives_the_capabilities_the_grades_are_designed_on() -> None:
    plant = load_plant(PLANT_FILE)
    assert [c.sigma for c in plant.characteristics] == pytest.approx([1.0] * 4)
    for char in LINE_A:
        assert _true_cpk(plant, char) == pytest.approx(CPK_A)
    for char in LINE_B:
        assert _true_cpk(plant, char) == pytest.approx(1.5)  # what the plant alone gives
        assert _true_cpk(plant, char, B_SIGMA_FACTOR) == pytest.approx(CPK_B)
    scenario = _scenario()
    assert [scenario.affects(c) for c in LINE_A + LINE_B] == [False, False, True, True]
    # each design value sits inside its grade's band by at least 3.5 standard errors
    assert 1.33 + BAND * SE_CPK_A < CPK_A < 1.67 - BAND * SE_CPK_A
    assert CPK_B - BAND * SE_CPK_B > 2.00
    # and the claim sits inside Prevention's external-loss band [0.5 %, 1.0 %)
    output = PARTS * ECONOMICS.unit_value
    assert 0.005 < CLAIM_CNY / output < 0.010
    assert CLAIM_CNY / (2 * output) < 0.005  # plant: Excellence on external loss


def _bissell_se(cpk: float, n: int) -> float:
    return math.sqrt(1 / (9 * n) + cpk**2 / (2 * (n - 1)))


@pytest.mark.parametrize(
    ("cpk", "se", "sigma"), [(CPK_A, SE_CPK_A, 1.0), (CPK_B, SE_CPK_B, B_SIGMA_FACTOR)]
)
def test_the_standard_errors_relied_on_hold_for_a_moving_range_cpk(
    cpk: float, se: float, sigma: float
) -> None:
    """Cpk with sigma = MR-bar / d2, of 1,000 values, over 2,000 simulated runs."""
    rng = np.random.default_rng(1)
    lsl, usl = -4.5, 4.5
    x = rng.normal(usl - 3 * cpk * sigma, sigma, size=(2_000, PARTS))
    mean, sigma_within = x.mean(axis=1), np.abs(np.diff(x, axis=1)).mean(axis=1) / 1.128
    estimates = np.minimum(usl - mean, mean - lsl) / (3 * sigma_within)
    assert float(estimates.mean()) == pytest.approx(cpk, abs=0.01)
    assert float(estimates.std()) == pytest.approx(se, rel=0.08)
    assert _bissell_se(cpk, PARTS) < se  # Bissell's (sample sd) is the optimistic one


@asynccontextmanager
async def _running_service(settings: Settings) -> AsyncIterator[str]:
    """The service on a free port in this event loop; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            if task.done():
                task.result()  # raises what stopped it
            assert time.monotonic() < deadline, "the service did not start in 60 s"
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def _eventually(check: Callable[[], Awaitable[T]], timeout_s: float = 30.0) -> T:
    """Poll ``check`` until it returns something truthy, or return its last answer."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.1)


def _metrics(entity: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["metric"]: m for m in entity["metrics"]}


def _grade_of(entity: dict[str, Any]) -> tuple[Any, ...]:
    """(grade, English name, Chinese name, limiting metric, insufficient metrics)."""
    keys = ("grade", "grade_en", "grade_zh", "limiting_metric", "insufficient")
    return tuple(entity[k] for k in keys)


def _metric_grades(entity: dict[str, Any]) -> dict[str, int | None]:
    return {m["metric"]: m["grade"] for m in entity["metrics"]}


def _output_values(sqlite_path: Path) -> dict[str, float]:
    """The output value the store holds per scope (read-only, beside the service)."""
    with closing(sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)) as db:
        rows = db.execute(
            "SELECT scope, sum(amount) FROM cost_events WHERE category = 'output_value' "
            "GROUP BY scope"
        ).fetchall()
    return {scope: float(total) for scope, total in rows}


Get = Callable[[str], Awaitable[dict[str, Any]]]


async def _check_nothing_is_graded_yet(get: Get) -> None:
    """Before any part: no grade anywhere, Cpk "insufficient data"."""
    body = await get("/api/v1/grades")
    assert body["plant"]["id"] == PLANT_ID
    assert [line["id"] for line in body["lines"]] == ["lineA", "lineB"]
    for entity in (body["plant"], *body["lines"]):
        assert entity["grade"] is None, entity
        assert (entity["grade_en"], entity["grade_zh"]) == (None, None)
        assert "cpk" in entity["insufficient"]
    bore = await get(f"/api/v1/grades/characteristic/{LINE_A[0]}")
    assert (bore["grade"], bore["grade_en"], bore["limiting_metric"]) == (None, None, None)
    assert "cpk" in bore["insufficient"]
    cpk = _metrics(bore)["cpk"]
    assert (cpk["value"], cpk["basis"], cpk["grade"], cpk["note"]) == (
        None,
        0,
        None,
        "insufficient data",
    )


async def _run_the_plant(url: str, ingest: dict[str, str], dead_letters: Path) -> Production:
    """1,000 parts per line through the MES push (fast pace), then a claim on line B."""
    plant = load_plant(PLANT_FILE)
    production = Production(plant, _scenario(), ECONOMICS, takt_s=1.0, run_id="gradee2e")
    with httpx.Client(base_url=url, headers=ingest, timeout=30.0) as client:
        pusher = MesPusher(client, dead_letter_path=dead_letters, flush_interval_s=None)
        try:
            made = await run_plant(
                production,
                [MesSink(pusher, plant, "all")],  # no broker, no OPC UA: the MES sends it all
                Pace(takt_s=1.0, fast=True, parts=PARTS),
            )
            # the parts are stamped up to when the run began: now follows them all
            claimed_at = datetime.now(UTC)
            pusher.add_cost_event("lineB", "claim", CLAIM_CNY, claimed_at, note="lot 7 claim")
            await asyncio.to_thread(pusher.flush)  # the service answers on this event loop
        finally:
            await asyncio.to_thread(pusher.close)
    assert made == PARTS
    stats = pusher.stats
    assert (stats.rows_rejected, stats.rows_dead_lettered) == (0, 0)
    assert stats.rows_accepted == stats.rows_added
    assert not await asyncio.to_thread(dead_letters.exists)
    # as designed: every part good at first pass on both lines, nothing reworked or scrapped
    for line in ("lineA", "lineB"):
        totals = production.totals[line]
        assert (totals.inspected, totals.first_pass_ok) == (2 * PARTS, 2 * PARTS), line
        assert (totals.good, totals.reworked, totals.scrapped) == (PARTS, 0, 0), line
    return production


async def test_the_api_reports_the_grade_and_limiting_metric_the_scenario_was_built_for(
    tmp_path: Path,
) -> None:
    settings = Settings(config=PLANT_FILE, data_dir=tmp_path / "data")
    viewer = key_headers(settings, Role.VIEWER)
    ingest = key_headers(settings, Role.INGEST)

    async with (
        _running_service(settings) as url,
        httpx.AsyncClient(base_url=url, headers=viewer, timeout=30.0) as api,
    ):

        async def get(path: str) -> dict[str, Any]:
            answer = await api.get(path)
            assert answer.status_code == 200, answer.text
            body: dict[str, Any] = answer.json()
            return body

        await _check_nothing_is_graded_yet(get)
        production = await _run_the_plant(url, ingest, tmp_path / "mes-dead-letters.jsonl")

        # the output value the simulator recorded is what the store holds
        output = await asyncio.to_thread(_output_values, settings.sqlite_path)
        assert output == {line: t.output_value for line, t in production.totals.items()}
        assert output == dict.fromkeys(("lineA", "lineB"), PARTS * ECONOMICS.unit_value)

        async def all_points_in() -> bool:
            """The engine evaluates what the push stored: every part in the Cpk basis."""
            for char in LINE_A + LINE_B:
                graded = await get(f"/api/v1/grades/characteristic/{char}")
                if _metrics(graded)["cpk"]["basis"] < PARTS:
                    return False
            return True

        assert await _eventually(all_points_in), "the engine never took in every part"

        # --- characteristics: Cpk near its design value, and the grade it gives -----------
        cpk_of: dict[str, float] = {}
        for char, design, se, level in [
            *((c, CPK_A, SE_CPK_A, 3) for c in LINE_A),
            *((c, CPK_B, SE_CPK_B, 5) for c in LINE_B),
        ]:
            graded = await get(f"/api/v1/grades/characteristic/{char}")
            cpk = _metrics(graded)["cpk"]
            cpk_of[char] = cpk["value"]
            assert abs(cpk["value"] - design) < BAND * se, (char, cpk)
            assert cpk["basis"] == PARTS
            assert (graded["grade"], graded["limiting_metric"], graded["insufficient"]) == (
                level,
                "cpk",
                [],
            ), char
        bore = await get(f"/api/v1/grades/characteristic/{LINE_A[0]}")
        assert _grade_of(bore) == (3, "Assurance", "保证级", "cpk", [])
        assert _metrics(bore)["cpk"]["next_target"] == 1.67
        gap = await get(f"/api/v1/grades/characteristic/{LINE_B[1]}")
        assert _grade_of(gap) == (5, "Excellence", "卓越级", "cpk", [])

        # --- a process: its Cpk, first-pass yield and sigma level ---------------------------
        turning = await get("/api/v1/grades/process/lineA.turning")
        assert _grade_of(turning) == (3, "Assurance", "保证级", "cpk", [])
        assert turning["children"] == {LINE_A[0]: 3}
        assert _metric_grades(turning) == {"cpk": 3, "rolled_first_pass_yield": 5, "sigma_level": 5}
        yield_ = _metrics(turning)["rolled_first_pass_yield"]
        assert (yield_["value"], yield_["basis"]) == (1.0, PARTS)

        # --- line A: Assurance, limited by Cpk ---------------------------------------------
        line_a = await get("/api/v1/grades/line/lineA")
        assert _grade_of(line_a) == (3, "Assurance", "保证级", "cpk", [])
        assert line_a["children"] == {"lineA.grinding": 3, "lineA.turning": 3}
        assert _metric_grades(line_a) == {
            "cpk": 3,
            "rolled_first_pass_yield": 5,
            "sigma_level": 5,
            "internal_loss_rate": 5,
            "external_loss_rate": 5,
        }
        metrics = _metrics(line_a)
        assert metrics["cpk"]["value"] == pytest.approx(min(cpk_of[c] for c in LINE_A))
        assert metrics["rolled_first_pass_yield"]["value"] == 1.0
        assert metrics["sigma_level"]["basis"] == 2 * PARTS  # both stations' inspections
        assert metrics["internal_loss_rate"]["value"] == 0.0
        assert metrics["external_loss_rate"]["value"] == 0.0  # of a tracked output value

        # --- line B: Prevention, limited by the claim (external loss rate) ------------------
        line_b = await get("/api/v1/grades/line/lineB")
        assert _grade_of(line_b) == (4, "Prevention", "预防级", "external_loss_rate", [])
        assert line_b["children"] == {"lineB.pressing": 5, "lineB.vision": 5}
        assert _metric_grades(line_b) == {
            "cpk": 5,
            "rolled_first_pass_yield": 5,
            "sigma_level": 5,
            "internal_loss_rate": 5,
            "external_loss_rate": 4,
        }
        metrics = _metrics(line_b)
        assert metrics["cpk"]["value"] == pytest.approx(min(cpk_of[c] for c in LINE_B))
        external = metrics["external_loss_rate"]
        assert external["value"] == pytest.approx(CLAIM_CNY / output["lineB"])  # 0.75 %
        assert (external["basis"], external["next_target"]) == (1, 0.005)

        # --- the plant: its weakest line's grade, limited by Cpk ---------------------------
        body = await get("/api/v1/grades")
        plant = body["plant"]
        assert plant["id"] == PLANT_ID
        assert _grade_of(plant) == (3, "Assurance", "保证级", "cpk", [])
        assert plant["children"] == {"lineA": 3, "lineB": 4}
        metrics = _metrics(plant)
        assert metrics["cpk"]["value"] == pytest.approx(_metrics(line_a)["cpk"]["value"])
        # losses pool every scope: 1,500 / 400,000 = 0.375 % < 0.5 %, Excellence
        assert metrics["external_loss_rate"]["value"] == pytest.approx(
            CLAIM_CNY / (output["lineA"] + output["lineB"])
        )
        assert metrics["external_loss_rate"]["grade"] == 5
        assert [_grade_of(line) for line in body["lines"]] == [
            _grade_of(line_a),
            _grade_of(line_b),
        ]

        # --- a period without data: nothing graded, though today's data are in ------------
        for path in ("line/lineA", f"characteristic/{LINE_B[0]}"):
            old = await get(f"/api/v1/grades/{path}?period=2020-01-01/2020-01-02")
            assert old["period"]["label"] == "2020-01-01/2020-01-02"
            assert (old["grade"], old["grade_en"], old["grade_zh"]) == (None, None, None), path
            assert "cpk" in old["insufficient"], path
            assert _metrics(old)["cpk"]["basis"] == 0
