"""Reading the plant file: sources, nominal values and capable sigmas."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulators.plant import (
    TARGET_CAPABILITY,
    PlantConfigError,
    derive_nominal,
    derive_sigma,
    load_plant,
)


def _write_plant(tmp_path: Path, characteristic: str) -> Path:
    path = tmp_path / "plant.yaml"
    path.write_text(
        "plant: {id: p}\n"
        "lines:\n"
        "  - id: l1\n"
        "    processes:\n"
        "      - id: p1\n"
        "        characteristics:\n"
        f"          - {characteristic}\n"
    )
    return path


def test_demo_config_groups_characteristics_by_source(demo_config_path: Path) -> None:
    plant = load_plant(demo_config_path)

    opcua = {c.id: c.opcua_node_id for c in plant.opcua_characteristics()}
    mqtt = {c.id: (c.mqtt_topic, c.mqtt_field) for c in plant.mqtt_characteristics()}

    assert plant.plant_id == "demo"
    assert opcua == {
        "line1.turning.diameter": "ns=2;s=Demo/line1/turning/diameter",
        "line1.turning.length": "ns=2;s=Demo/line1/turning/length",
        "line1.grinding.roughness": "ns=2;s=Demo/line1/grinding/roughness",
    }
    assert mqtt == {
        "line2.vision.gap": ("demo/line2/vision/result", "features.gap_mm"),
        "line2.vision.offset": ("demo/line2/vision/result", "features.offset_mm"),
    }
    [inspection] = plant.inspections
    assert (inspection.station, inspection.topic, inspection.field) == (
        "line2.vision",
        "demo/line2/vision/result",
        "verdict",
    )


def test_two_sided_spec_gives_sigma_of_tolerance_over_six_times_capability(
    demo_config_path: Path,
) -> None:
    plant = load_plant(demo_config_path)
    diameter = next(c for c in plant.characteristics if c.id == "line1.turning.diameter")

    assert diameter.nominal == 25.00
    assert diameter.sigma == pytest.approx((25.05 - 24.95) / (6 * TARGET_CAPABILITY))
    assert TARGET_CAPABILITY == 1.5  # mid-Assurance: not on a grade threshold
    assert derive_sigma(-0.3, 0.3, 0.0) == pytest.approx(0.6 / 9.0)


def test_one_sided_spec_gives_sigma_from_the_distance_to_its_only_limit(
    demo_config_path: Path,
) -> None:
    plant = load_plant(demo_config_path)
    roughness = next(c for c in plant.characteristics if c.id == "line1.grinding.roughness")

    assert (roughness.lsl, roughness.usl, roughness.nominal) == (None, 0.80, 0.40)
    assert roughness.sigma == pytest.approx((0.80 - 0.40) / (3 * TARGET_CAPABILITY))
    assert derive_sigma(2.0, None, 5.0) == pytest.approx(3.0 / (3 * TARGET_CAPABILITY))


def test_nominal_is_the_target_else_the_spec_midpoint() -> None:
    assert derive_nominal(1.0, 3.0, 2.5) == 2.5
    assert derive_nominal(1.0, 3.0, None) == 2.0


def test_characteristic_without_limits_has_unit_sigma(tmp_path: Path) -> None:
    plant = load_plant(_write_plant(tmp_path, "{id: free, target: 7.0}"))

    [free] = plant.characteristics
    assert (free.nominal, free.sigma) == (7.0, 1.0)
    assert (free.opcua_node_id, free.mqtt_topic) == (None, None)


@pytest.mark.parametrize(
    ("characteristic", "expected"),
    [
        ("{id: c1, usl: 2.0}", "'c1'.*needs a target"),
        ("{id: c1, lsl: 2.0, usl: 1.0}", "'c1'.*usl .* must be greater than lsl"),
        ("{id: c1, usl: 2.0, target: 2.0}", "'c1'.*equals the nominal"),
        ("{id: c1, target: x}", "'c1'.*target must be a number"),
        ("{id: c1, target: 1, source: {opcua: {}}}", "'c1'.*source.opcua needs .*'node_id'"),
        ("{id: c1, target: 1, source: {mqtt: {topic: t}}}", "'c1'.*needs .*'field'"),
        ("{target: 1.0}", r"characteristics\[0\] needs a non-empty string 'id'"),
    ],
)
def test_bad_entries_are_rejected_with_a_message_naming_them(
    tmp_path: Path, characteristic: str, expected: str
) -> None:
    path = _write_plant(tmp_path, characteristic)

    with pytest.raises(PlantConfigError, match=expected) as caught:
        load_plant(path)

    assert str(path) in str(caught.value)


def test_duplicate_characteristic_ids_are_rejected(tmp_path: Path) -> None:
    path = _write_plant(tmp_path, "{id: same, target: 1}\n          - {id: same, target: 2}")

    with pytest.raises(PlantConfigError, match="'same' appears more than once"):
        load_plant(path)
