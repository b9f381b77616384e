"""`spcmon demo`: a broker, two simulated lines and the service, on this machine only.

Starts Debian's mosquitto (the MQTT broker the loss-free guarantees are tested against)
and both simulators as child processes on free loopback ports, then serves the API and
dashboard in this process. Ctrl-C stops everything.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import uvicorn

from app.main import create_app
from app.settings import HttpSettings, MqttSettings, OpcuaSettings, Settings

_log = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_CONFIG = REPO_ROOT / "deploy" / "examples" / "demo-plant.yaml"
MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/bin/mosquitto")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _mosquitto() -> str:
    for path in MOSQUITTO_PATHS:
        if Path(path).exists():
            return path
    found = shutil.which("mosquitto")
    if found is None:
        raise SystemExit(
            "mosquitto is not installed: run `make demo` (it installs it) or "
            "`sudo apt-get install mosquitto`"
        )
    return found


def _wait_for_port(port: int, what: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"{what} did not start listening on port {port}; see its log")


@contextmanager
def _child(args: list[str], log_path: Path, what: str, port: int) -> Iterator[None]:
    with log_path.open("wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        try:
            _wait_for_port(port, f"{what} (log: {log_path})")
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()


def run_demo(http_port: int, data_dir: Path, shift_after: int, takt_s: float, seed: int) -> None:
    """Run the whole demo until interrupted."""
    if data_dir.exists():
        shutil.rmtree(data_dir)  # every demo run starts from a fresh baseline
    data_dir.mkdir(parents=True)
    mqtt_port, opcua_port = free_port(), free_port()
    (data_dir / "mosquitto.conf").write_text(
        f"listener {mqtt_port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
        f"persistence_location {data_dir.resolve()}/\nmax_inflight_messages 0\n"
    )
    scenario = [
        "--scenario",
        "mean-shift",
        "--shift-sigma",
        "2.5",
        "--shift-after",
        str(shift_after),
        "--seed",
        str(seed),
        "--takt",
        str(takt_s),
    ]
    sim = [sys.executable, "-m", "simulators"]
    endpoint = f"opc.tcp://127.0.0.1:{opcua_port}/spcmon/sim"
    settings = Settings(
        config=DEMO_CONFIG,
        data_dir=data_dir,
        mqtt=MqttSettings(url=f"mqtt://127.0.0.1:{mqtt_port}", client_id="spcmon-demo"),
        opcua=OpcuaSettings(endpoint=endpoint),
        http=HttpSettings(port=http_port),
    )
    with ExitStack() as stack:
        stack.enter_context(
            _child(
                [_mosquitto(), "-c", str(data_dir / "mosquitto.conf")],
                data_dir / "mosquitto.log",
                "mosquitto",
                mqtt_port,
            )
        )
        stack.enter_context(
            _child(
                [
                    *sim,
                    "opcua",
                    "--config",
                    str(DEMO_CONFIG),
                    "--port",
                    str(opcua_port),
                    *scenario,
                    "--ground-truth",
                    str(data_dir / "ground-truth-opcua.json"),
                ],
                data_dir / "sim-opcua.log",
                "OPC UA simulator",
                opcua_port,
            )
        )
        stack.enter_context(
            _child(
                [
                    *sim,
                    "camera",
                    "--config",
                    str(DEMO_CONFIG),
                    "--broker",
                    f"mqtt://127.0.0.1:{mqtt_port}",
                    *scenario,
                ],
                data_dir / "sim-camera.log",
                "vision camera",
                mqtt_port,
            )
        )
        url = f"http://127.0.0.1:{http_port}/"
        print(f"\nspcmon demo: dashboard {url}  API {url}docs  metrics {url}metrics")
        print(
            f"  simulated lines shift by 2.5 sigma after part {shift_after} "
            f"(~{shift_after * takt_s:.0f} s); Ctrl-C stops.\n",
            flush=True,
        )
        uvicorn.run(create_app(settings), host="127.0.0.1", port=http_port, log_level="warning")
