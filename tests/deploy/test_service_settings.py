"""Every SPCMON_ variable that deploy/ sets for the service is a setting the service reads
(or a notifier secret its notifiers file names), and together they make valid settings.

pydantic-settings ignores an unknown top-level variable (``SPCMON_DATBASE__URL`` would be
lost silently), so the names are checked against the Settings model's fields, found
through its own prefix and nesting.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.settings import Settings
from tests.deploy.deploy_files import (
    DEPLOY,
    compose_doc,
    dockerfile_instructions,
    env_file,
    host_path,
    load_yaml,
    setting_field,
)

SPCMON_ENV_EXAMPLE = DEPLOY / "spcmon.env.example"
UNIT_ENV = DEPLOY / "systemd" / "spcmon.env.example"
NOTIFIER_FILES = (DEPLOY / "config" / "notifiers.yaml", DEPLOY / "examples" / "notifiers.yaml")


def _notifier_secrets() -> set[str]:
    names: set[str] = set()
    for path in NOTIFIER_FILES:
        for entry in load_yaml(path)["notifiers"]:
            names |= {v for k, v in entry.items() if k.endswith("_env")}
    return names


def _dockerfile_env() -> dict[str, str]:
    out: dict[str, str] = {}
    for keyword, args in dockerfile_instructions():
        if keyword == "ENV":
            for pair in args.split():
                name, _, value = pair.partition("=")
                out[name] = value
    return out


def _settings(monkeypatch: pytest.MonkeyPatch, env: Mapping[str, str]) -> Settings:
    for name in [n for n in os.environ if n.upper().startswith("SPCMON_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


def _unknown(names: set[str]) -> set[str]:
    return {n for n in names if n.startswith("SPCMON_") and setting_field(n) is None}


def test_setting_names_are_found_through_the_models_prefix_and_nesting() -> None:
    assert setting_field("SPCMON_DATABASE__URL") == ["database", "url"]
    assert setting_field("SPCMON_LOG_FORMAT") == ["log_format"]
    assert setting_field("SPCMON_DATBASE__URL") is None
    assert setting_field("SPCMON_DATABASE") is None  # a whole group
    assert setting_field("SPCMON_DATABASE__URL__X") is None


def test_the_compose_service_sets_only_settings_and_they_are_valid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service = compose_doc()["services"]["spcmon"]
    env = {**_dockerfile_env(), **{k: str(v) for k, v in service["environment"].items()}}
    assert _unknown(set(env)) == set()
    settings = _settings(monkeypatch, {k: v for k, v in env.items() if k.startswith("SPCMON_")})
    assert settings.database.url is not None
    assert settings.database.timescaledb == "require"
    assert settings.mqtt.url is not None
    assert settings.mqtt.password is not None
    # the files it names are mounted from the repository
    for path in (settings.config, settings.alerts.notifiers_file):
        assert path is not None
        mounted = host_path(service, str(path))
        assert mounted is not None, f"{path} is not mounted"
        assert mounted.is_file(), f"{path} -> {mounted} does not exist"
    data = next(m for m in service["volumes"] if str(m).endswith(f":{settings.data_dir}"))
    assert not data.startswith((".", "/")), "the data directory should be a named volume"
    assert settings.keys_file.parent == settings.data_dir


def test_the_optional_service_settings_are_settings_or_notifier_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = {k: str(v) for k, v in compose_doc()["services"]["spcmon"]["environment"].items()}
    offered = env_file(SPCMON_ENV_EXAMPLE, commented=True)
    assert offered, "spcmon.env.example offers nothing"
    assert _unknown(set(offered)) - _notifier_secrets() == set()
    for name, value in offered.items():  # each example value, alone, is accepted
        if name not in _notifier_secrets():
            _settings(monkeypatch, {**base, name: value})
    assert not env_file(SPCMON_ENV_EXAMPLE), "spcmon.env.example should set nothing by default"


def test_the_systemd_environment_sets_only_valid_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    active, commented = env_file(UNIT_ENV), env_file(UNIT_ENV, commented=True)
    assert _unknown(set(active) | set(commented)) == set()
    settings = _settings(monkeypatch, active)
    assert settings.data_dir == Path("/var/lib/spcmon")
    assert settings.http.host == "0.0.0.0"
    for name, value in commented.items():
        if "PASSWORD@" in value:  # a placeholder to fill: refused until it is
            with pytest.raises(ValidationError, match="placeholder password"):
                _settings(monkeypatch, {**active, name: value})
            value = value.replace("PASSWORD@", "Kq7-line1@")
        _settings(monkeypatch, {**active, name: value})
