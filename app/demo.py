"""`spcmon demo`: a broker, two simulated lines and the service, on this machine only.

Starts Debian's mosquitto (the MQTT broker the loss-free guarantees are tested against)
and the simulated plant (``python -m simulators run``: OPC UA line, MQTT camera, MES push)
as a child process on free loopback ports, then serves the API and dashboard in this
process. Ctrl-C stops everything.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import uvicorn

from app.auth import KeyRing, Role
from app.local_broker import free_port, running_mosquitto, wait_for_port
from app.main import create_app
from app.settings import (
    AuthSettings,
    HttpSettings,
    MqttSettings,
    OpcuaSettings,
    Settings,
    SpcSettings,
)

_log = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_CONFIG = REPO_ROOT / "deploy" / "examples" / "demo-plant.yaml"
DEMO_BASELINE = 40  # Phase I points (X-bar charts: subgroups)


@contextmanager
def _child(
    args: list[str], log_path: Path, what: str, port: int, env: dict[str, str] | None = None
) -> Iterator[None]:
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT,
            env={**os.environ, **(env or {})},
        )  # fmt: skip
        try:
            wait_for_port(port, f"{what} (log: {log_path})")
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()


def _serve_in_thread(settings: Settings, port: int) -> tuple[uvicorn.Server, threading.Thread]:
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="spcmon-http", daemon=True)
    thread.start()
    while not server.started:  # the JIT warm-up happens here: ~3 s, ~10 s cold
        if not thread.is_alive():
            raise SystemExit("the service failed to start; see the messages above")
        time.sleep(0.1)
    return server, thread


def run_demo(http_port: int, data_dir: Path, shift_after: int, takt_s: float, seed: int) -> None:
    """Run the whole demo until interrupted.

    Order matters: the service is up (kernels compiled, collectors started) before the
    simulated lines make their first part, so the Phase I baseline is taken from the
    in-control start of the run and the injected shift comes after it.
    """
    if data_dir.exists():
        shutil.rmtree(data_dir)  # every demo run starts from a fresh baseline
    data_dir.mkdir(parents=True)
    scenario = ["--scenario", "mean-shift", "--size", "2.5", "--start", str(shift_after),
                "--seed", str(seed), "--takt", str(takt_s)]  # fmt: skip
    with ExitStack() as stack:
        try:
            broker = stack.enter_context(running_mosquitto(data_dir / "mosquitto"))
        except RuntimeError as exc:
            raise SystemExit(str(exc)) from exc
        opcua_port = free_port()
        settings = Settings(
            config=DEMO_CONFIG,
            data_dir=data_dir,
            mqtt=MqttSettings(url=broker.url, client_id="spcmon-demo"),
            opcua=OpcuaSettings(endpoint=f"opc.tcp://127.0.0.1:{opcua_port}/spcmon/sim"),
            http=HttpSettings(port=http_port),
            auth=AuthSettings(anonymous_read=True),  # the demo's dashboard reads without a key
            # limits within seconds; production keeps the default 100 (README "Alerts")
            spc=SpcSettings(baseline_size=DEMO_BASELINE),
        )
        _, ingest_key = KeyRing(settings.keys_file).create("demo-mes", Role.INGEST)
        server, thread = _serve_in_thread(settings, http_port)
        stack.callback(thread.join, 10)
        stack.callback(setattr, server, "should_exit", True)
        # one simulated plant: OPC UA tags of line 1, the vision camera of line 2 over MQTT,
        # and the MES pushing every station's verdicts and the scrap, rework and output value
        stack.enter_context(_child(
            [sys.executable, "-m", "simulators", "run", "--config", str(DEMO_CONFIG),
             "--opcua", f"opc.tcp://127.0.0.1:{opcua_port}", "--mqtt", broker.url,
             "--api", f"http://127.0.0.1:{http_port}", *scenario,
             "--dead-letters", str(data_dir / "mes-dead-letters.jsonl"),
             "--ground-truth", str(data_dir / "ground-truth.json")],
            data_dir / "simulated-plant.log", "simulated plant", opcua_port,
            env={"SPCMON_SIM_API_KEY": ingest_key},
        ))  # fmt: skip
        url = f"http://127.0.0.1:{http_port}/"
        print(f"\nspcmon demo: dashboard {url}  API {url}docs  metrics {url}metrics")
        print(f"  simulated lines shift by 2.5 sigma after part {shift_after} "
              f"(~{shift_after * takt_s:.0f} s); Ctrl-C stops.\n", flush=True)  # fmt: skip
        while thread.is_alive():
            time.sleep(0.5)
