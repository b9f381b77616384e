"""`spcmon demo` as a user runs it: broker, simulators and service as real processes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.mosquitto import free_port

pytestmark = pytest.mark.e2e


def _get(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return json.load(response)
    except (urllib.error.URLError, ConnectionError):
        return None


def _shift_start(data_dir: Path) -> datetime | None:
    """When the simulated plant injected the shift (its ground truth), once it has."""
    try:
        faults = json.loads((data_dir / "ground-truth.json").read_text())["faults"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    started = faults[0].get("started_at") if faults else None
    return datetime.fromisoformat(started) if started else None


def _rule_1_alarms(status: dict[str, Any], since: datetime | None) -> list[dict[str, Any]]:
    """Critical incidents (a point beyond a limit) with a signal at or after ``since``."""
    if since is None:
        return []
    return [
        a for a in status["open_alarms"]
        if a["severity"] == "critical" and datetime.fromisoformat(a["last_at"]) >= since
    ]  # fmt: skip


def test_demo_serves_live_cpk_and_flags_the_injected_shift(tmp_path: Path) -> None:
    port = free_port()
    data_dir = tmp_path / "demo"
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "demo", "--port", str(port), "--data-dir",
         str(data_dir), "--takt", "0.05", "--shift-after", "300"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    status_url = f"http://127.0.0.1:{port}/api/v1/characteristics/line1.turning.diameter/status"
    status = None
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            status = _get(status_url)
            # wait for a critical incident signalled after the shift: other alarms (false
            # ones included: the in-control ARL is finite) may come earlier
            if status and status["capability"] and _rule_1_alarms(status, _shift_start(data_dir)):
                break
            assert proc.poll() is None, proc.communicate()[0].decode()
            time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGINT)
        output = proc.communicate(timeout=30)[0].decode()
    assert status is not None, output
    assert status["limits"]["version"] == 1, output
    assert status["capability"]["cpk"] is not None
    assert _rule_1_alarms(status, _shift_start(data_dir)), status
    assert f"dashboard http://127.0.0.1:{port}/" in output
    truth = json.loads((data_dir / "ground-truth.json").read_text())
    assert {f["start_part"] for f in truth["faults"]} == {300}
    assert not (data_dir / "mes-dead-letters.jsonl").exists()  # the MES push was accepted
    # the baseline was taken before the shift: limits centred on the nominal 25.00 mm
    assert abs(status["limits"]["center"] - 25.0) < 0.01, status["limits"]
