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


def test_serve_refuses_a_bad_notifiers_file_before_starting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], demo_config_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    notifiers = tmp_path / "notifiers.yaml"
    notifiers.write_text("notifiers:\n  - {type: webhook, name: hook, url: 'http://h', "
                         "secret_env: SPCMON_NOT_SET_HERE}\n")  # fmt: skip
    monkeypatch.delenv("SPCMON_NOT_SET_HERE", raising=False)
    monkeypatch.setenv("SPCMON_ALERTS__NOTIFIERS_FILE", str(notifiers))
    assert main(["serve", "--config", str(demo_config_path), "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "notifiers[0] ('hook'), field 'secret_env'" in err
    assert "SPCMON_NOT_SET_HERE is not set" in err
    assert "Traceback" not in err


def test_a_bad_setting_is_named_by_its_environment_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], demo_config_path: Path
) -> None:
    monkeypatch.setenv("SPCMON_MQTT__URL", "tcp://broker")
    assert main(["serve", "--config", str(demo_config_path), "--port", "1"]) == 2
    assert (
        "SPCMON_MQTT__URL: expected mqtt://host[:port] or mqtts://host[:port], got 'tcp://broker'"
        in (capsys.readouterr().err)
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


def test_keys_create_prints_the_key_once_and_it_opens_the_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from app.auth import KeyRing, Role

    monkeypatch.setenv("SPCMON_DATA_DIR", str(tmp_path))
    assert main(["keys", "create", "--name", "mes-line1", "--role", "ingest"]) == 0
    out = capsys.readouterr()
    token = out.out.strip()
    key = KeyRing(tmp_path / "api-keys.json").verify(token)
    assert key is not None
    assert (key.name, key.role) == ("mes-line1", Role.INGEST)
    assert "only time it is shown" in out.err
    assert main(["keys", "create", "--name", "mes-line1", "--role", "viewer"]) == 2
    assert "a key named 'mes-line1' exists" in capsys.readouterr().err
    assert main(["keys", "list"]) == 0
    assert "mes-line1\tingest" in capsys.readouterr().out
    assert main(["keys", "revoke", "mes-line1"]) == 0
    assert KeyRing(tmp_path / "api-keys.json").verify(token) is None
    assert main(["keys", "revoke", "mes-line1"]) == 2


def test_json_logs_are_one_object_per_line_with_the_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json
    import logging

    from app.log_format import configure_logging

    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    configure_logging("INFO", "json")
    try:
        raise ValueError("bad reading")
    except ValueError:
        logging.getLogger("ingest.mqtt").exception("payload refused on %s", "t/1")
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    entry = json.loads(capsys.readouterr().err.strip())
    assert entry["level"] == "ERROR"
    assert entry["logger"] == "ingest.mqtt"
    assert entry["message"] == "payload refused on t/1"
    assert "ValueError: bad reading" in entry["exception"]
