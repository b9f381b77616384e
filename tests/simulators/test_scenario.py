"""Scenario values: reproducible from the seed, with a shift of known start and size."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from simulators.plant import SimCharacteristic, SimPlant, load_plant
from simulators.scenario import Scenario, ValueGenerator


@pytest.fixture
def plant(demo_config_path: Path) -> SimPlant:
    return load_plant(demo_config_path)


def _parts(generator: ValueGenerator, count: int) -> list[dict[str, float]]:
    return [generator.next_part() for _ in range(count)]


def _column(parts: list[dict[str, float]], char: SimCharacteristic) -> np.ndarray:
    return np.array([part[char.id] for part in parts])


def test_same_seed_gives_identical_values(plant: SimPlant) -> None:
    scenario = Scenario("mean-shift", seed=42, shift_after_parts=5)

    first = _parts(ValueGenerator(scenario, plant.characteristics), 20)
    second = _parts(ValueGenerator(scenario, plant.characteristics), 20)

    assert first == second
    assert set(first[0]) == {c.id for c in plant.characteristics}


def test_different_seeds_give_different_values(plant: SimPlant) -> None:
    one = _parts(ValueGenerator(Scenario("in-control", seed=1), plant.characteristics), 5)
    two = _parts(ValueGenerator(Scenario("in-control", seed=2), plant.characteristics), 5)

    assert all(a[key] != b[key] for a, b in zip(one, two, strict=True) for key in a)


def test_mean_shift_starts_exactly_at_shift_after_parts(plant: SimPlant) -> None:
    chars = plant.characteristics
    calm = _parts(ValueGenerator(Scenario("in-control", seed=7), chars), 60)
    shifted = ValueGenerator(Scenario("mean-shift", seed=7, shift_after_parts=50), chars)
    moved = _parts(shifted, 60)

    for index, (before, after) in enumerate(zip(calm, moved, strict=True)):
        for char in chars:
            expected = 2.0 * char.sigma if index >= 50 else 0.0
            assert after[char.id] - before[char.id] == pytest.approx(expected, abs=1e-12)
    assert shifted.shift_active(49) is False
    assert shifted.shift_active(50) is True


def test_post_shift_mean_is_nominal_plus_shift_sigma_times_sigma(plant: SimPlant) -> None:
    count = 4000
    generator = ValueGenerator(
        Scenario("mean-shift", seed=3, shift_sigma=1.5, shift_after_parts=10),
        plant.characteristics,
    )
    parts = _parts(generator, 10 + count)[10:]

    for char in plant.characteristics:
        values = _column(parts, char)
        standard_error = char.sigma / math.sqrt(count)
        assert abs(values.mean() - (char.nominal + 1.5 * char.sigma)) < 4 * standard_error
        assert values.std(ddof=1) == pytest.approx(char.sigma, rel=0.05)


def test_in_control_values_stay_centred_on_nominal(plant: SimPlant) -> None:
    count = 4000
    parts = _parts(ValueGenerator(Scenario("in-control", seed=5), plant.characteristics), count)

    for char in plant.characteristics:
        standard_error = char.sigma / math.sqrt(count)
        assert abs(_column(parts, char).mean() - char.nominal) < 4 * standard_error


def test_only_the_listed_characteristics_shift(plant: SimPlant) -> None:
    chars = plant.characteristics
    calm = ValueGenerator(Scenario("in-control", seed=9), chars).next_part()
    scenario = Scenario("mean-shift", seed=9, shift_after_parts=0, shifted=("line2.vision.gap",))
    moved = ValueGenerator(scenario, chars).next_part()

    changed = {key for key in calm if moved[key] != calm[key]}
    assert changed == {"line2.vision.gap"}


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


def test_unknown_scenario_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="scenario must be one of"):
        Scenario("drift", seed=1)  # type: ignore[arg-type]


def test_ground_truth_records_when_the_shift_started(plant: SimPlant, tmp_path: Path) -> None:
    generator = ValueGenerator(
        Scenario("mean-shift", seed=1, shift_sigma=2.0, shift_after_parts=3),
        plant.characteristics,
    )
    assert generator.ground_truth()["shift"]["started_at"] is None
    start = datetime(2026, 11, 22, 19, 0, 0, 123456, tzinfo=UTC)

    _parts(generator, 3)
    generator.next_part(at=start)
    generator.next_part(at=datetime(2030, 1, 1, tzinfo=UTC))
    path = tmp_path / "truth.json"
    generator.write_ground_truth(path)

    truth = json.loads(path.read_text())
    assert truth["scenario"] == "mean-shift"
    assert truth["seed"] == 1
    assert truth["parts_generated"] == 5
    assert truth["shift"] == {
        "start_part_index": 3,
        "started_at": "2026-11-22T19:00:00.123456Z",
        "size_sigma": 2.0,
    }
    diameter = truth["characteristics"]["line1.turning.diameter"]
    assert diameter["nominal"] == 25.0
    assert diameter["sigma"] == pytest.approx(0.1 / (6 * 1.67))
    assert diameter["shifted_mean"] == pytest.approx(25.0 + 2.0 * diameter["sigma"])
    assert diameter["shifted"] is True


def test_in_control_ground_truth_has_no_shift(plant: SimPlant) -> None:
    generator = ValueGenerator(Scenario("in-control", seed=1), plant.characteristics)
    _parts(generator, 200)

    truth = generator.ground_truth()

    assert truth["shift"] is None
    assert not any(c["shifted"] for c in truth["characteristics"].values())
