"""The simulated plant's production: serials, verdicts from the limits, rework, scrap, value."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from simulators.plant import SimPlant, load_plant
from simulators.production import Economics, PartRun, Production
from simulators.scenario import Scenario

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


@pytest.fixture
def plant(demo_config_path: Path) -> SimPlant:
    return load_plant(demo_config_path)


def _run(production: Production, count: int) -> list[PartRun]:
    return [production.next_part(T0 + timedelta(seconds=i)) for i in range(count)]


def test_every_line_makes_one_serialised_part_per_takt(plant: SimPlant) -> None:
    runs = _run(Production(plant, Scenario("in-control", seed=1), run_id="3f9a2c"), 3)

    serials = {(s.station, s.serial) for s in runs[2].stations}
    assert serials == {
        ("line1.turning", "line1-3f9a2c-000002"),
        ("line1.grinding", "line1-3f9a2c-000002"),
        ("line2.vision", "line2-3f9a2c-000002"),
    }
    assert all(s.at == T0 + timedelta(seconds=2) for s in runs[2].stations)
    turning = next(s for s in runs[0].stations if s.process == "turning")
    assert set(turning.values) == {"line1.turning.diameter", "line1.turning.length"}


def test_the_first_verdict_is_nok_exactly_when_a_value_is_out_of_spec(plant: SimPlant) -> None:
    # a 4 sigma shift puts about 31 % of the parts outside a Cp 1.5 tolerance
    production = Production(plant, Scenario("mean-shift", seed=2, start_part=0, size=4.0))
    chars = {c.id: c for c in plant.characteristics}
    nok = 0
    for run in _run(production, 300):
        for station in run.stations:
            first = station.inspections[0]
            values = station.values.items()
            out = sorted(i.rsplit(".", 1)[-1] for i, v in values if chars[i].is_out_of_spec(v))
            assert first.first_pass
            assert first.ok == (not out)
            assert sorted(first.defects) == out
            nok += not first.ok
    assert nok > 50


def test_a_nok_part_is_reworked_and_reinspected_or_scrapped_with_its_costs(
    plant: SimPlant,
) -> None:
    money = Economics(unit_value=250.0, rework_cost=20.0, rework_share=0.5, value_every=10_000)
    production = Production(plant, Scenario("mean-shift", seed=3, start_part=0, size=4.0), money)
    runs = _run(production, 400)

    for line, totals in production.totals.items():
        stations = [s for r in runs for s in r.stations if s.line == line]
        costs = [c for r in runs for c in r.costs if c.scope == line]
        second = [s.inspections[1] for s in stations if len(s.inspections) == 2]
        assert all(not s.first_pass for s in second)
        assert totals.reworked == len(second) == sum(c.category == "rework" for c in costs) > 0
        assert totals.scrapped == sum(c.category == "scrap" for c in costs) > 0
        assert all(c.amount == 20.0 for c in costs if c.category == "rework")
        assert all(c.amount == 250.0 for c in costs if c.category == "scrap")
        # a scrapped part is seen by no later station: good parts = started - scrapped
        assert totals.good == totals.started - totals.scrapped
        assert totals.inspected == sum(1 for s in stations if s.inspections)
    line1 = production.totals["line1"]
    assert 0.3 < line1.reworked / (line1.inspected - line1.first_pass_ok) < 0.7


def test_output_value_is_reported_every_n_good_parts_and_the_rest_on_flush(
    plant: SimPlant,
) -> None:
    money = Economics(unit_value=100.0, value_every=40)
    production = Production(plant, Scenario("in-control", seed=4), money)
    runs = _run(production, 100)
    value = [c for r in runs for c in r.costs if c.category == "output_value"]
    rest = production.flush_costs(T0 + timedelta(minutes=5))

    for line, totals in production.totals.items():
        reported = sum(c.amount for c in value + rest if c.scope == line)
        assert reported == totals.output_value == 100.0 * totals.good
        assert [c.amount for c in value if c.scope == line] == [4000.0] * (totals.good // 40)
    assert production.flush_costs(T0) == []


def test_bad_values_are_delivered_but_not_inspected_and_lost_ones_not_delivered(
    plant: SimPlant,
) -> None:
    bad = Production(plant, Scenario("bad-quality", seed=5, start_part=1, end_part=2))
    lost = Production(plant, Scenario("lost-connection", seed=5, start_part=1, end_part=2))
    bad_runs, lost_runs = _run(bad, 3), _run(lost, 3)

    flagged = bad_runs[1].stations
    assert all(s.bad == frozenset(s.values) and s.inspections == () for s in flagged)
    assert all(s.values == {} and s.inspections == () for s in lost_runs[1].stations)
    assert all(s.inspections and not s.bad for s in bad_runs[2].stations)


def test_the_same_seed_and_run_id_make_the_same_production(plant: SimPlant) -> None:
    scenario = Scenario("drift", seed=6, start_part=10, size=0.2)
    one = _run(Production(plant, scenario, run_id="r6"), 200)
    two = _run(Production(plant, scenario, run_id="r6"), 200)
    assert [r.stations for r in one] == [r.stations for r in two]
    assert [r.costs for r in one] == [r.costs for r in two]


def test_each_run_has_its_own_serials_and_names_its_run_id_in_the_ground_truth(
    plant: SimPlant,
) -> None:
    scenario = Scenario("in-control", seed=7)
    one, two = Production(plant, scenario), Production(plant, scenario)

    first, second = one.next_part(T0), two.next_part(T0)

    assert re.fullmatch(r"[0-9a-f]{6}", one.run_id)
    assert one.run_id != two.run_id
    assert {s.serial for s in first.stations} == {f"line{n}-{one.run_id}-000000" for n in (1, 2)}
    assert {s.serial for s in first.stations}.isdisjoint(s.serial for s in second.stations)
    assert one.generator.ground_truth()["run_id"] == one.run_id


@pytest.mark.parametrize("run_id", ["", "a-b", "x y", "a" * 17])
def test_a_run_id_that_would_garble_the_serials_is_refused(plant: SimPlant, run_id: str) -> None:
    with pytest.raises(ValueError, match="run_id"):
        Production(plant, Scenario("in-control", seed=1), run_id=run_id)


def test_bad_economics_are_named() -> None:
    with pytest.raises(ValueError, match="rework_share must be in"):
        Economics(rework_share=1.5)
