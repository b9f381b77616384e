"""The `python -m simulators` command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simulators import run_command
from simulators.cli import main
from simulators.mes_pusher import PusherConfigError
from tests.support.mosquitto import Broker, free_port

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("extra", "flag"),
    [
        (["opcua", "--port", "0"], "--port"),
        (["opcua", "--takt", "-1"], "--takt"),
        (["opcua", "--shift-after", "-3"], "--start/--shift-after"),
        (["opcua", "--scenario", "tool-breakage"], "--scenario"),
        (["camera", "--broker", "http://x"], "--broker"),
        (["camera", "--shifted", "no.such.id"], "--affected"),
        (["run", "--speed", "fast"], "--speed"),
        (["run", "--opcua", "http://x:1"], "--opcua"),
        (["run", "--api", "ftp://x"], "--api"),
        (["run", "--rate", "nan"], "--rate"),
        (["run", "--seed", "-1"], "--seed"),
        (["run", "--scenario", "cyclic", "--period", "1"], "--period"),
        (["run", "--scenario", "outliers", "--rate", "2"], "--rate"),
        (["run", "--scenario", "drift", "--end", "50", "--start", "100"], "--end"),
        (["camera", "--scenario", "variance", "--size", "0"], "--size"),
    ],
)
def test_bad_argument_is_an_error_naming_the_flag(
    demo_config_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], flag: str
) -> None:
    with pytest.raises(SystemExit) as caught:
        main([extra[0], "--config", str(demo_config_path), *extra[1:]])

    assert caught.value.code == 2
    assert f"argument {flag}" in capsys.readouterr().err


def test_missing_config_file_is_an_error_naming_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["opcua", "--config", str(tmp_path / "absent.yaml")])

    assert "argument --config" in capsys.readouterr().err


def _run_until_signalled(args: list[str], truth: Path, signum: int) -> tuple[int, str]:
    """Start the CLI, wait for its ground truth file (written once serving), signal it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "simulators", *args, "--ground-truth", str(truth)],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 15
        while not truth.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, stderr


def test_camera_command_publishes_until_sigterm_and_leaves_the_ground_truth(
    demo_config_path: Path, mosquitto: Broker, tmp_path: Path
) -> None:
    truth = tmp_path / "truth.json"
    args = ["camera", "--config", str(demo_config_path), "--broker", mosquitto.url]
    args += ["--scenario", "mean-shift", "--shift-after", "2", "--takt", "0.05", "--seed", "4"]

    code, stderr = _run_until_signalled(args, truth, signal.SIGTERM)

    assert code == 0, stderr
    assert f"publishing demo/line2/vision/result to {mosquitto.url}" in stderr
    document = json.loads(truth.read_text())
    assert document["seed"] == 4
    assert document["parts_generated"] > 2
    assert document["faults"][0]["started_at"].endswith("Z")


def test_opcua_command_serves_until_sigint(demo_config_path: Path, tmp_path: Path) -> None:
    truth = tmp_path / "truth.json"
    port = free_port()
    args = ["opcua", "--config", str(demo_config_path), "--port", str(port), "--takt", "0.05"]

    code, stderr = _run_until_signalled(args, truth, signal.SIGINT)

    assert code == 0, stderr
    assert f"at opc.tcp://127.0.0.1:{port}/spcmon/sim" in stderr
    assert json.loads(truth.read_text())["parts_generated"] > 0


def test_spcmon_simulate_hands_every_option_to_the_simulators(
    demo_config_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from app.cli import main as spcmon

    # options first, no subcommand: `run`, which then asks for an output
    assert spcmon(["simulate", "--config", str(demo_config_path), "--scenario", "drift"]) == 2
    assert "nothing to send to: give --opcua, --mqtt and/or --api" in caplog.text


def test_a_refusal_raised_past_the_run_is_an_error_not_a_traceback(
    demo_config_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refused(args: object) -> int:
        raise PusherConfigError("the service refused the push (403): the API key lacks ...")

    monkeypatch.setattr(run_command, "run_command", refused)

    assert main(["run", "--config", str(demo_config_path)]) == 1
    assert "run failed: the service refused the push (403)" in caplog.text


@pytest.mark.parametrize(
    "argv", [["python -m simulators"], ["python -m simulators", "--scenario", "drift"]]
)
def test_no_subcommand_from_the_shell_means_run_which_asks_for_an_output(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, argv: list[str]
) -> None:
    monkeypatch.chdir(REPO_ROOT)  # where the default --config lives
    monkeypatch.setattr(sys, "argv", argv)

    assert main() == 2
    assert "nothing to send to: give --opcua, --mqtt and/or --api" in caplog.text
