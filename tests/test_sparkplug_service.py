"""End to end: the simulators' Sparkplug B camera -> a real mosquitto -> the service.

The demo plant with the vision gap read over Sparkplug B (the offset stays on the JSON
topic): the service's host application stores the camera's values as the gap's
measurements, and the camera's clean stop (DDEATH, NDEATH) raises a quiet-source early
warning at once, without waiting for the silence to last.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.settings import Settings
from app.wiring import Service
from simulators.scenario import Scenario
from simulators.sparkplug import SparkplugOptions
from simulators.vision_camera import VisionCamera
from tests.support.mosquitto import Broker

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]
GAP = "line2.vision.gap"


def _plant_with_sparkplug_gap(demo: Path, out: Path) -> Path:
    doc: dict[str, Any] = yaml.safe_load(demo.read_text(encoding="utf-8"))
    for line in doc["lines"]:
        for process in line["processes"]:
            for char in process["characteristics"]:
                if char["id"] == GAP:
                    char["source"] = {"sparkplug": {
                        "group": "demo", "node": "camera1", "device": "line2.vision",
                        "metric": "features/gap_mm",
                    }}  # fmt: skip
    out.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return out


async def _until(check: Any, what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_sparkplug_values_are_stored_and_a_dead_camera_warns_at_once(
    mosquitto: Broker, tmp_path: Path, demo_config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plant = _plant_with_sparkplug_gap(demo_config_path, tmp_path / "plant.yaml")
    monkeypatch.setenv("SPCMON_SPARKPLUG__HOST_ID", "spcmon-test")
    settings = Settings(config=plant, data_dir=tmp_path / "data", mqtt={"url": mosquitto.url})
    service = Service.build(settings)
    assert service.sparkplug is not None
    await service.start()
    camera = VisionCamera(
        demo_config_path, mosquitto.host, mosquitto.port, Scenario("in-control", 3), None,
        sparkplug=SparkplugOptions("demo", "camera1"),
    )  # fmt: skip
    try:

        async def online() -> bool:
            return bool(service.sparkplug and service.sparkplug.online)

        await _until(online, "the host's STATE online")
        await asyncio.to_thread(camera.start)
        for _ in range(5):
            camera.publish_part()

        async def stored() -> bool:
            return await service.store.count_measurements(GAP) >= 5

        await _until(stored, "the camera's gap values")
        [record] = [r for r in await service.store.list_characteristics() if r.id == GAP]
        assert (record.source_kind, record.source_address) == (
            "sparkplug",
            "demo/camera1/line2.vision#features/gap_mm",
        )
        await asyncio.to_thread(camera.stop)  # DDEATH, then NDEATH

        async def warned() -> bool:
            assert service.warnings is not None
            return any(
                w.kind == "quiet_source" and w.characteristic == GAP
                for w in service.warnings.active()
            )

        await _until(warned, "a quiet-source warning for the gap")
        assert GAP in service.sparkplug.stale_characteristics()
    finally:
        await service.stop()
