"""Scenario values: reproducible from the seed, each fault with its stated statistics."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from simulators.faults import FaultSpec
from simulators.plant import SimCharacteristic, SimPlant, load_plant
from simulators.scenario import Scenario, ValueGenerator

DIAMETER = "line1.turning.diameter"


@pytest.fixture
def plant(demo_config_path: Path) -> SimPlant:
    return load_plant(demo_config_path)


@pytest.fixture
def diameter(plant: SimPlant) -> SimCharacteristic:
    return next(c for c in plant.characteristics if c.id == DIAMETER)


def _parts(generator: ValueGenerator, count: int) -> list[dict[str, float]]:
    return [generator.next_part() for _ in range(count)]


def _series(scenario: Scenario, char: SimCharacteristic, count: int) -> np.ndarray:
    generator = ValueGenerator(scenario, [char])
    return np.array([generator.next_part()[char.id] for _ in range(count)])


def _z(values: np.ndarray, char: SimCharacteristic) -> np.ndarray:
    """Values in sigma units from the nominal."""
    return (values - char.nominal) / char.sigma


def test_same_seed_gives_identical_values(plant: SimPlant) -> None:
    scenario = Scenario("mean-shift", seed=42, start_part=5)
    one = _parts(ValueGenerator(scenario, plant.characteristics), 10)
    two = _parts(ValueGenerator(scenario, plant.characteristics), 10)
    assert one == two


def test_different_seeds_give_different_values(plant: SimPlant) -> None:
    one = _parts(ValueGenerator(Scenario("in-control", seed=1), plant.characteristics), 5)
    two = _parts(ValueGenerator(Scenario("in-control", seed=2), plant.characteristics), 5)
    assert one != two


def test_in_control_values_have_the_nominal_mean_and_sigma(diameter: SimCharacteristic) -> None:
    z = _z(_series(Scenario("in-control", seed=5), diameter, 20_000), diameter)
    # standard errors: mean 1/sqrt(n) = 0.007, sd about 0.005; 5 standard errors allowed
    assert abs(z.mean()) < 0.035
    assert z.std(ddof=1) == pytest.approx(1.0, abs=0.025)


def test_a_faulty_run_shares_its_noise_with_the_in_control_run(
    diameter: SimCharacteristic,
) -> None:
    calm = _series(Scenario("in-control", seed=7), diameter, 60)
    moved = _series(Scenario("mean-shift", seed=7, start_part=50, size=1.5), diameter, 60)

    np.testing.assert_array_equal(moved[:50], calm[:50])
    np.testing.assert_allclose(moved[50:] - calm[50:], 1.5 * diameter.sigma, rtol=1e-9)


def test_the_mean_shift_has_its_stated_size(diameter: SimCharacteristic) -> None:
    z = _z(
        _series(Scenario("mean-shift", seed=3, start_part=0, size=-0.5), diameter, 20_000), diameter
    )
    assert z.mean() == pytest.approx(-0.5, abs=0.035)
    assert z.std(ddof=1) == pytest.approx(1.0, abs=0.025)


def test_drift_rises_at_its_rate_and_resets_at_each_tool_change(
    diameter: SimCharacteristic,
) -> None:
    scenario = Scenario("drift", seed=4, start_part=10, size=0.1, tool_change_every=50)
    offset = _z(_series(scenario, diameter, 110), diameter) - _z(
        _series(Scenario("in-control", seed=4), diameter, 110), diameter
    )
    assert np.allclose(offset[:10], 0.0)
    # part 10 is the first worn part (0.1 sigma), part 59 the 50th (5.0 sigma), then a new tool
    assert offset[10] == pytest.approx(0.1)
    assert offset[59] == pytest.approx(5.0)
    assert offset[60] == pytest.approx(0.1)
    slope = np.polyfit(np.arange(10, 60), offset[10:60], 1)[0]
    assert slope == pytest.approx(0.1)


def test_variance_and_stratification_scale_sigma_about_the_nominal(
    diameter: SimCharacteristic,
) -> None:
    wide = _z(
        _series(Scenario("variance", seed=8, start_part=0, size=2.0), diameter, 20_000), diameter
    )
    narrow = _z(
        _series(Scenario("stratification", seed=8, start_part=0), diameter, 20_000), diameter
    )
    assert wide.std(ddof=1) == pytest.approx(2.0, rel=0.025)
    assert abs(wide.mean()) < 0.07
    assert narrow.std(ddof=1) == pytest.approx(0.3, rel=0.025)


def test_mixture_is_two_streams_at_plus_and_minus_size(diameter: SimCharacteristic) -> None:
    z = _z(_series(Scenario("mixture", seed=9, start_part=0, size=3.0), diameter, 20_000), diameter)
    upper, lower = z[z > 0], z[z < 0]
    assert upper.mean() == pytest.approx(3.0, abs=0.05)
    assert lower.mean() == pytest.approx(-3.0, abs=0.05)
    assert upper.size / z.size == pytest.approx(0.5, abs=0.02)


def test_mixture_draws_one_stream_per_part_for_every_affected_characteristic(
    plant: SimPlant,
) -> None:
    chars = plant.characteristics
    calm = _parts(ValueGenerator(Scenario("in-control", seed=14), chars), 200)
    mixed = _parts(ValueGenerator(Scenario("mixture", seed=14, start_part=0), chars), 200)

    signs = {
        tuple(np.sign(part[c.id] - base[c.id]) for c in chars)
        for part, base in zip(mixed, calm, strict=True)
    }
    assert signs == {(1.0,) * len(chars), (-1.0,) * len(chars)}


def test_cycle_has_its_amplitude_and_period(diameter: SimCharacteristic) -> None:
    scenario = Scenario("cyclic", seed=10, start_part=0, size=2.0, period_parts=40)
    offset = _z(_series(scenario, diameter, 400), diameter) - _z(
        _series(Scenario("in-control", seed=10), diameter, 400), diameter
    )
    assert offset[10] == pytest.approx(2.0)  # a quarter period: the crest
    assert offset[30] == pytest.approx(-2.0)
    assert offset[50] == pytest.approx(2.0)


def test_outliers_hit_about_their_rate_with_their_size(diameter: SimCharacteristic) -> None:
    scenario = Scenario("outliers", seed=11, start_part=0, size=6.0, rate=0.05)
    offset = _z(_series(scenario, diameter, 10_000), diameter) - _z(
        _series(Scenario("in-control", seed=11), diameter, 10_000), diameter
    )
    hits = offset[np.abs(offset) > 1e-9]
    assert hits.size / offset.size == pytest.approx(0.05, abs=0.007)  # 3 standard errors
    np.testing.assert_allclose(np.abs(hits), 6.0)


def test_a_frozen_sensor_repeats_its_last_value_until_the_fault_ends(
    diameter: SimCharacteristic,
) -> None:
    values = _series(Scenario("freeze", seed=12, start_part=20, end_part=30), diameter, 40)
    assert np.all(values[20:30] == values[19])
    assert len(set(values[30:].tolist())) == 10


def test_bad_quality_and_lost_connection_mark_parts_without_changing_values(
    plant: SimPlant,
) -> None:
    calm = ValueGenerator(Scenario("in-control", seed=13), plant.characteristics)
    bad = ValueGenerator(
        Scenario("bad-quality", seed=13, start_part=2, end_part=4, affected=(DIAMETER,)),
        plant.characteristics,
    )
    lost = ValueGenerator(Scenario("lost-connection", seed=13, start_part=3), plant.characteristics)
    for index in range(40):
        expected = calm.next_readings().values
        b, gone = bad.next_readings(), lost.next_readings()
        assert b.values == expected == gone.values
        assert b.bad == (frozenset({DIAMETER}) if 2 <= index < 4 else frozenset())
        # a lost connection lasts 30 parts by default
        assert gone.lost == (frozenset(gone.values) if 3 <= index < 33 else frozenset())
        assert gone.delivered() == ({} if gone.lost else expected)


def test_only_the_affected_characteristics_move(plant: SimPlant) -> None:
    calm = ValueGenerator(Scenario("in-control", seed=9), plant.characteristics).next_part()
    scenario = Scenario("mean-shift", seed=9, start_part=0, affected=("line2.vision.gap",))
    moved = ValueGenerator(scenario, plant.characteristics).next_part()
    assert {k for k in calm if calm[k] != moved[k]} == {"line2.vision.gap"}


def test_forced_values_replace_generated_ones_without_changing_later_parts(
    plant: SimPlant,
) -> None:
    scenario = Scenario("in-control", seed=11)
    plain = _parts(ValueGenerator(scenario, plant.characteristics), 3)
    forced_generator = ValueGenerator(scenario, plant.characteristics)

    forced = forced_generator.next_part(overrides={"line2.vision.gap": 9.0})
    rest = _parts(forced_generator, 2)

    assert forced == {**plain[0], "line2.vision.gap": 9.0}
    assert rest == plain[1:]


def test_forcing_an_unknown_characteristic_is_rejected(plant: SimPlant) -> None:
    generator = ValueGenerator(Scenario("in-control", seed=1), plant.characteristics)

    with pytest.raises(ValueError, match="unknown characteristic ids \\['nope'\\]"):
        generator.next_part(overrides={"nope": 1.0})


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"kind": "tool-breakage"}, "fault kind must be one of"),
        ({"kind": "drift", "start": -1}, "start part must be >= 0"),
        ({"kind": "drift", "start": 5, "end": 5}, "end part \\(5\\) must be after its start"),
        ({"kind": "mean-shift", "size": math.inf}, "size must be a finite number"),
        ({"kind": "variance", "size": 0.0}, "variance factor must be > 0"),
        ({"kind": "drift", "tool_change_every": 0}, "tool_change_every must be >= 1"),
        ({"kind": "outliers", "rate": 1.5}, "outlier rate must be in"),
    ],
)
def test_bad_fault_parameters_are_named(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FaultSpec(**spec)  # type: ignore[arg-type]


def test_ground_truth_names_each_faulty_characteristic_with_its_times(
    plant: SimPlant, tmp_path: Path
) -> None:
    generator = ValueGenerator(
        Scenario("mean-shift", seed=1, size=2.0, start_part=3, end_part=5, affected=(DIAMETER,)),
        plant.characteristics,
        plant_id="demo",
        takt_s=0.5,
    )
    assert generator.ground_truth()["faults"][0]["started_at"] is None
    start = datetime(2026, 11, 22, 19, 0, 0, 123456, tzinfo=UTC)
    for index in range(7):
        generator.next_part(at=start + timedelta(seconds=0.5 * (index - 3)))
    path = tmp_path / "truth.json"
    generator.write_ground_truth(path)

    truth = json.loads(path.read_text())
    assert truth["format"] == "spcmon-ground-truth/1"
    assert (truth["scenario"], truth["seed"], truth["plant"], truth["takt_s"]) == (
        "mean-shift",
        1,
        "demo",
        0.5,
    )
    assert truth["parts_generated"] == 7
    assert truth["run_id"] is None  # a generator alone; a `Production` names its run
    assert truth["started_at"] == "2026-11-22T18:59:58.623456Z"
    assert truth["faults"] == [
        {
            "id": f"mean-shift:{DIAMETER}",
            "kind": "mean-shift",
            "characteristic": DIAMETER,
            "start_part": 3,
            "end_part": 5,
            "started_at": "2026-11-22T19:00:00.123456Z",
            "ended_at": "2026-11-22T19:00:01.123456Z",
            "params": {"size_sigma": 2.0},
            "description": "mean +2 sigma from part 3 to 5",
        }
    ]
    diameter = truth["characteristics"][DIAMETER]
    assert diameter["nominal"] == 25.0
    assert diameter["sigma"] == pytest.approx(0.1 / (6 * 1.5))
    assert (diameter["lsl"], diameter["usl"]) == (24.95, 25.05)


def test_in_control_ground_truth_has_no_fault(plant: SimPlant) -> None:
    generator = ValueGenerator(Scenario("in-control", seed=1), plant.characteristics)
    _parts(generator, 200)

    truth = generator.ground_truth()

    assert truth["faults"] == []
    assert set(truth["characteristics"]) == {c.id for c in plant.characteristics}
