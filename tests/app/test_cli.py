"""The `spcmon` command line answers a first-time user's mistakes with one clear message."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.cli import main

BAD_PLANT = """\
plant: {id: p}
lines:
  - id: l1
    processes:
      - id: p1
        characteristics:
          - {id: c1, lsl: 5, usl: 1}
"""


def test_serve_refuses_a_bad_plant_file_before_starting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "plant.yaml"
    path.write_text(BAD_PLANT)
    assert main(["serve", "--config", str(path), "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "lines[0] 'l1' > processes[0] 'p1' > characteristics[0] 'c1'" in err
    assert "lsl (5.0) must be below usl (1.0)" in err
    assert "Traceback" not in err


def test_a_bad_setting_is_named_by_its_environment_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], demo_config_path: Path
) -> None:
    monkeypatch.setenv("SPCMON_MQTT__URL", "tcp://broker")
    assert main(["serve", "--config", str(demo_config_path), "--port", "1"]) == 2
    assert "SPCMON_MQTT__URL: expected mqtt://host[:port], got 'tcp://broker'" in (
        capsys.readouterr().err
    )


def test_config_check_reports_a_subgroup_that_does_not_fit_the_window(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], demo_config_path: Path
) -> None:
    path = tmp_path / "plant.yaml"
    path.write_text(demo_config_path.read_text().replace("subgroup_size: 5", "subgroup_size: 3"))
    assert main(["config", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "'line1.turning.length' > subgroup_size: 3 does not divide" in err
    assert "SPCMON_SPC__WINDOW" in err


def test_config_check_accepts_the_demo_plant(
    capsys: pytest.CaptureFixture[str], demo_config_path: Path
) -> None:
    assert main(["config", "check", str(demo_config_path)]) == 0
    assert "OK (2 lines, 5 characteristics)" in capsys.readouterr().out
