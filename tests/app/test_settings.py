"""Settings from the environment: empty variables, placeholder secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.cli import settings_problems
from app.settings import OpcuaSettings, Settings
from ingest.opcua import OpcuaSecurity


def test_an_empty_variable_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    # compose passes an optional value through as "" when .env leaves it out
    monkeypatch.setenv("SPCMON_OPCUA__ENDPOINT", "")
    monkeypatch.setenv("SPCMON_ALERTS__NOTIFIERS_FILE", "")
    monkeypatch.setenv("SPCMON_DATABASE__URL", "")
    settings = Settings()
    assert settings.opcua.endpoint is None
    assert settings.alerts.notifiers_file is None
    assert settings.database.url is None


def test_a_placeholder_database_password_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPCMON_DATABASE__URL", "postgresql://spcmon:changeme@db:5432/spcmon")
    with pytest.raises(ValidationError, match="placeholder password") as caught:
        Settings()
    shown = settings_problems(caught.value)  # what `spcmon` prints
    assert "SPCMON_DATABASE__URL: holds a placeholder password" in shown
    assert "changeme" not in shown  # the secret is not echoed
    monkeypatch.setenv("SPCMON_DATABASE__URL", "postgresql://spcmon:Kq7-line1@db:5432/spcmon")
    assert Settings().database.url is not None


def test_opcua_security_settings_name_what_is_missing(tmp_path: Path) -> None:
    cert, key = tmp_path / "spcmon.der", tmp_path / "spcmon.pem"
    cert.write_bytes(b"x")
    key.write_bytes(b"x")
    secured = OpcuaSettings(
        security_policy="Basic256Sha256", certificate=cert, private_key=key, trust_dir=tmp_path,
        username="spcmon", password="Kq7-line1",
    )  # fmt: skip
    security = secured.security()
    assert (security.policy, security.mode, security.trust_dir) == (
        "Basic256Sha256", "SignAndEncrypt", str(tmp_path),
    )  # fmt: skip
    assert security.password == "Kq7-line1"
    cases = [
        ({"security_policy": "Basic256Sha256"}, "needs SPCMON_OPCUA__CERTIFICATE"),
        ({"trust_dir": tmp_path}, "need a SPCMON_OPCUA__SECURITY_POLICY"),
        ({"certificate": tmp_path / "nope.der"}, "no such file"),
        ({"trust_dir": cert}, "no such folder"),
        ({"password": "changeme"}, "placeholder"),
        ({"security_policy": "Basic128Rsa15"}, "Basic256Sha256"),
    ]
    for fields, message in cases:
        with pytest.raises(ValidationError, match=message):
            OpcuaSettings(**fields)


def test_the_sparkplug_host_id_is_one_topic_level(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPCMON_SPARKPLUG__HOST_ID", "plant/spcmon")
    with pytest.raises(ValidationError, match="one MQTT topic level"):
        Settings()
    monkeypatch.setenv("SPCMON_SPARKPLUG__HOST_ID", "spcmon-plant1")
    assert Settings().sparkplug.host_id == "spcmon-plant1"


def test_a_security_policy_without_a_trust_list_is_refused(tmp_path: Path) -> None:
    # without a trust list or a pinned certificate any server would do, login included
    cert, key = tmp_path / "spcmon.der", tmp_path / "spcmon.pem"
    cert.write_bytes(b"x")
    key.write_bytes(b"x")
    with pytest.raises(ValidationError, match="SPCMON_OPCUA__TRUST_DIR"):
        OpcuaSettings(security_policy="Basic256Sha256", certificate=cert, private_key=key)
    with pytest.raises(ValueError, match="needs a trust_dir or a server_certificate"):
        OpcuaSecurity("Basic256Sha256", certificate=str(cert), private_key=str(key))
    pinned = OpcuaSecurity(
        "Basic256Sha256", certificate=str(cert), private_key=str(key),
        server_certificate=str(cert), password="Kq7-line1",
    )  # fmt: skip
    assert "Kq7-line1" not in repr(pinned)
