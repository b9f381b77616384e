"""End to end: simulated OPC UA line + vision camera over a real mosquitto -> the service.

Everything is real: an asyncua server, Debian's mosquitto, paho publishers, the service
on a real HTTP port with its SQLite store, read back over HTTP and from the database file.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
import uvicorn
from paho.mqtt.enums import CallbackAPIVersion

from app import Settings, create_app
from app.settings import AuthSettings, MqttSettings, OpcuaSettings
from simulators import OpcuaLineSimulator, Scenario, VisionCamera
from tests.support.mosquitto import Broker, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]
GAP = "line2.vision.gap"
DIAMETER = "line1.turning.diameter"
VISION_TOPIC = "demo/line2/vision/result"


@asynccontextmanager
async def running_service(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            yield client
    finally:
        server.should_exit = True
        await task


async def eventually(check: Callable[[], Any], timeout_s: float = 20.0) -> Any:
    """Poll an async check until it returns something truthy."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.1)


def publish_raw(broker: Broker, topic: str, payload: bytes) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="e2e-raw")
    client.connect(broker.host, broker.port)
    client.loop_start()
    client.publish(topic, payload, qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


async def test_shifted_series_from_simulated_lines_raises_a_violation_in_status(
    tmp_path: Path, mosquitto: Broker, demo_config_path: Path
) -> None:
    scenario = Scenario("in-control", seed=3)
    async with OpcuaLineSimulator(demo_config_path, free_port(), scenario, takt_s=None) as sim:
        settings = Settings(
            config=demo_config_path,
            data_dir=tmp_path / "data",
            mqtt=MqttSettings(url=mosquitto.url, client_id="spcmon-e2e"),
            opcua=OpcuaSettings(endpoint=sim.endpoint, publishing_interval_ms=50),
            auth=AuthSettings(anonymous_read=True),
        )
        async with running_service(settings) as api:

            async def collectors_up() -> bool:
                health = (await api.get("/healthz")).json()
                return bool(health["collectors"]) and all(health["collectors"].values())

            assert await eventually(collectors_up), (await api.get("/healthz")).json()

            diameters = []
            for _ in range(30):
                diameters.append((await sim.publish_part())[DIAMETER])
                await asyncio.sleep(0.02)

            camera = VisionCamera(demo_config_path, mosquitto.host, mosquitto.port, scenario, None)
            camera.start()
            try:
                for _ in range(25):
                    camera.publish_part()
                for _ in range(3):
                    camera.publish_part({GAP: 1.65})  # 7.5 sigma above nominal: beyond UCL
                assert camera.wait_published(10)
            finally:
                camera.stop()
            publish_raw(mosquitto, VISION_TOPIC, b'{"serial": "x-1", "features": ')

            async def gap_alarm() -> dict[str, Any] | None:
                status = (await api.get(f"/api/v1/characteristics/{GAP}/status")).json()
                alarms = status["open_alarms"]
                return alarms[0] if alarms else None

            alarm = await eventually(gap_alarm)
            assert alarm is not None, "the shift never showed in the status"
            # one incident, opened by the CUSUM, holds every signal of the shift: the 3
            # points beyond the UCL made it critical
            assert (alarm["rule"], alarm["severity"]) == ("cusum", "critical")
            assert alarm["count"] >= 3
            assert alarm["last_value"] == 1.65

            async def diameter_status() -> dict[str, Any] | None:
                status = (await api.get(f"/api/v1/characteristics/{DIAMETER}/status")).json()
                return status if status["capability"] and status["capability"]["n"] >= 30 else None

            status = await eventually(diameter_status)
            assert status is not None
            assert status["limits"]["version"] == 1
            assert status["capability"]["cpk"] is not None

    with sqlite3.connect(settings.sqlite_path) as db:
        gap_rows = db.execute("SELECT count(*) FROM measurements WHERE characteristic=?", (GAP,))
        assert gap_rows.fetchone()[0] == 28
        assert db.execute("SELECT count(*) FROM verdicts").fetchone()[0] == 28
        stored = {
            row[0]
            for row in db.execute(
                "SELECT value FROM measurements WHERE characteristic=?", (DIAMETER,)
            )
        }
        assert set(diameters) <= stored
        letters = db.execute("SELECT source, reason, payload FROM dead_letters").fetchall()
    assert [(s, json.dumps(p)) for s, _, p in letters] == [
        (f"mqtt:{VISION_TOPIC}", json.dumps('{"serial": "x-1", "features": '))
    ]
    assert letters[0][1].startswith("payload: not valid JSON")
