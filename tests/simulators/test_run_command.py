"""``python -m simulators run`` end to end: the camera on a real mosquitto, the MES push into
the real service over HTTP, the ground truth on disk."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from app import Settings, create_app
from app.auth import KeyRing, Role
from app.settings import MqttSettings
from simulators.cli import main
from simulators.plant import load_plant
from simulators.production import Production
from simulators.scenario import Scenario
from tests.simulators.test_vision_camera import TOPIC, _Subscriber
from tests.support.mosquitto import Broker, free_port


@pytest.fixture
def settings(tmp_path: Path, demo_config_path: Path, mosquitto: Broker) -> Settings:
    return Settings(
        config=demo_config_path,
        data_dir=tmp_path / "data",
        mqtt=MqttSettings(url=mosquitto.url, client_id="spcmon-run-test"),
    )


@pytest.fixture
def service_url(settings: Settings) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive(), "the service did not start"
        assert time.monotonic() < deadline, "the service did not start in 60 s"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def _camera_results(config: Path, run_id: str, parts: int) -> list[tuple[str, str]]:
    """(serial, inspection) of every vision result of the test's run, made again."""
    scenario = Scenario("mean-shift", seed=5, start_part=40, size=4.0)
    production = Production(load_plant(config), scenario, run_id=run_id)
    return [
        (station.serial, "first" if check.first_pass else "reinspection")
        for run in (production.next_part() for _ in range(parts))
        for station in run.stations
        if station.station == "line2.vision"
        for check in station.inspections
    ]


def _key(settings: Settings, role: Role) -> str:
    return KeyRing(settings.keys_file).create(f"run-{role.value}", role)[1]


def test_a_fast_run_feeds_the_camera_topic_and_the_mes_push_of_the_service(
    service_url: str, settings: Settings, mosquitto: Broker, demo_config_path: Path,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    subscriber = _Subscriber(mosquitto, TOPIC)
    truth_path, dead = tmp_path / "truth.json", tmp_path / "dead.jsonl"
    monkeypatch.setenv("SPCMON_SIM_API_KEY", _key(settings, Role.INGEST))
    args = ["run", "--config", str(demo_config_path), "--mqtt", mosquitto.url, "--api",
            service_url, "--fast", "--parts", "150", "--scenario", "mean-shift", "--start", "40",
            "--size", "4", "--seed", "5", "--ground-truth", str(truth_path), "--dead-letters",
            str(dead), "--log-level", "WARNING"]  # fmt: skip
    try:
        assert main(args) == 0
        truth = json.loads(truth_path.read_text())
        expected = _camera_results(demo_config_path, truth["run_id"], 150)
        messages = subscriber.take(len(expected), timeout=10)
        with pytest.raises(queue.Empty):  # and nothing more
            subscriber.messages.get(timeout=0.5)
    finally:
        subscriber.close()

    assert truth["parts_generated"] == 150
    assert {f["start_part"] for f in truth["faults"]} == {40}
    assert [(m["serial"], m["inspection"]) for m in messages] == expected
    first = [m for m in messages if m["inspection"] == "first"]
    assert len(first) == 150
    assert all(m["verdict"] == ("NOK" if m["defects"] else "OK") for m in messages)
    assert not dead.exists() or dead.read_text() == ""
    viewer = {"Authorization": f"Bearer {_key(settings, Role.VIEWER)}"}
    with httpx.Client(base_url=service_url, headers=viewer, timeout=30) as api:
        deadline = time.monotonic() + 20
        query = {"characteristic": "line2.vision.gap", "start": truth["started_at"]}
        while True:  # the camera's messages reach the service through its MQTT collector
            stored = api.get("/api/v1/measurements", params=query).json()["items"]
            if len(stored) >= len(messages) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        grade = api.get("/api/v1/grades/process/line2.vision", params={"period": "1d"})
    # the service's MQTT collector stores a re-inspection's features too (see the README)
    assert (
        len(stored)
        == len(messages)
        == 150 + sum(m["inspection"] == "reinspection" for m in messages)
    )
    assert grade.status_code == 200, grade.text
    metrics = {m["metric"]: m for m in grade.json()["metrics"]}
    fpy = metrics["rolled_first_pass_yield"]["value"]
    assert fpy is not None
    assert 0 < fpy < 1  # a 4 sigma shift from part 40 makes NOK parts: verdicts were pushed


@pytest.mark.parametrize(
    ("pace", "parts"),
    [(["--fast"], 30), (["--takt", "0.01"], 600)],  # refused at the end; in the background
    ids=["fast", "live"],
)
def test_a_key_the_service_refuses_stops_the_run_with_an_error_and_the_truth(
    service_url: str, demo_config_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture, pace: list[str], parts: int,
) -> None:  # fmt: skip
    monkeypatch.setenv("SPCMON_SIM_API_KEY", "spc_nope_nope")
    truth = tmp_path / "truth.json"
    args = ["run", "--config", str(demo_config_path), "--api", service_url, *pace,
            "--parts", str(parts), "--dead-letters", str(tmp_path / "dead.jsonl"),
            "--ground-truth", str(truth)]  # fmt: skip

    assert main(args) == 1
    assert "the API key is missing or not valid" in caplog.text
    assert 0 < json.loads(truth.read_text())["parts_generated"] <= parts
