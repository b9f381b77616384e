"""Settings from the environment: empty variables, placeholder secrets."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.cli import settings_problems
from app.settings import Settings


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
