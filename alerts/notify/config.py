"""The notifiers file: which channels exist, and the settings of each.

```yaml
notifiers:
  - type: webhook            # webhook | dingtalk | wecom | email | mqtt
    name: mes-webhook        # distinct; names the notifier in stats and dead letters
    min_severity: warning    # info | warning | critical (default info)
    url: https://mes.example/spc-events
    secret_env: SPCMON_WEBHOOK_SECRET
```

Secrets (webhook secrets, robot tokens and keys, passwords) are never written in the
file: an entry names the environment variable holding each (``*_env``), read at load.
Every problem is reported with the entry index, its name, the field and what is wrong.
"""

from __future__ import annotations

import os
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from alerts.notify import dingtalk, wecom
from alerts.notify.dingtalk import DingTalkNotifier
from alerts.notify.email import EmailNotifier, Security
from alerts.notify.errors import NotifierConfigError
from alerts.notify.model import Notifier
from alerts.notify.mqtt import TOPIC_FIELDS, MqttNotifier
from alerts.notify.webhook import WebhookNotifier
from alerts.notify.wecom import WeComNotifier

Severity = Literal["info", "warning", "critical"]
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
Seconds = Annotated[float, Field(gt=0)]
Port = Annotated[int, Field(ge=1, le=65535)]


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    min_severity: Severity = "info"
    timeout_s: Seconds = 10.0

    def env_vars(self) -> dict[str, str | None]:
        """The ``*_env`` fields of this entry and the variables they name."""
        return {f: getattr(self, f) for f in type(self).model_fields if f.endswith("_env")}


def _http_url(url: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return url


class WebhookSettings(_Entry):
    """Generic webhook; the body is signed with the secret in ``secret_env``."""

    type: Literal["webhook"]
    url: str
    secret_env: EnvName

    _check_url = field_validator("url")(_http_url)

    def build(self, secrets: Mapping[str, str | None]) -> Notifier:
        return WebhookNotifier(
            self.name,
            self.url,
            secrets["secret_env"] or "",
            min_severity=self.min_severity,
            timeout_s=self.timeout_s,
        )


class DingTalkSettings(_Entry):
    """DingTalk custom robot; ``secret_env`` (optional) turns on 加签 signing."""

    type: Literal["dingtalk"]
    url: str = dingtalk.DEFAULT_URL
    access_token_env: EnvName
    secret_env: EnvName | None = None

    @field_validator("url")
    @classmethod
    def _no_token_in_url(cls, url: str) -> str:
        if "access_token=" in url:
            raise ValueError(
                "holds an access_token: give the bare URL and name the token's "
                "environment variable in access_token_env"
            )
        return _http_url(url)

    def build(self, secrets: Mapping[str, str | None]) -> Notifier:
        return DingTalkNotifier(
            self.name,
            secrets["access_token_env"] or "",
            secret=secrets["secret_env"],
            url=self.url,
            min_severity=self.min_severity,
            timeout_s=self.timeout_s,
        )


class WeComSettings(_Entry):
    """WeCom group robot; its key comes from ``key_env``."""

    type: Literal["wecom"]
    url: str = wecom.DEFAULT_URL
    key_env: EnvName

    @field_validator("url")
    @classmethod
    def _no_key_in_url(cls, url: str) -> str:
        if "key=" in url:
            raise ValueError(
                "holds the robot key: give the bare URL and name the key's "
                "environment variable in key_env"
            )
        return _http_url(url)

    def build(self, secrets: Mapping[str, str | None]) -> Notifier:
        return WeComNotifier(
            self.name,
            secrets["key_env"] or "",
            url=self.url,
            min_severity=self.min_severity,
            timeout_s=self.timeout_s,
        )


class EmailSettings(_Entry):
    """SMTP e-mail; login when ``username`` is set (password from ``password_env``)."""

    type: Literal["email"]
    host: str = Field(min_length=1)
    port: Port = 587
    security: Security = "starttls"
    username: str | None = None
    password_env: EnvName | None = None
    sender: str = Field(min_length=3)
    recipients: list[str] = Field(min_length=1)
    timeout_s: Seconds = 20.0

    def build(self, secrets: Mapping[str, str | None]) -> Notifier:
        return EmailNotifier(
            self.name,
            self.host,
            self.sender,
            self.recipients,
            port=self.port,
            security=self.security,
            username=self.username,
            password=secrets["password_env"],
            min_severity=self.min_severity,
            timeout_s=self.timeout_s,
        )


class MqttSettings(_Entry):
    """MQTT topic (QoS 1); ``topic`` may use ``{line}``, ``{process}``, ``{kind}``,
    ``{severity}``. ``timeout_s`` bounds the wait for the broker's acknowledgement."""

    type: Literal["mqtt"]
    host: str = Field(min_length=1)
    port: Port = 1883
    topic: str = "spcmon/andon/{line}"
    client_id: str = Field("spcmon-notify", min_length=1)
    username: str | None = None
    password_env: EnvName | None = None
    keepalive_s: int = Field(30, ge=5)

    @field_validator("topic")
    @classmethod
    def _topic_template(cls, topic: str) -> str:
        if not topic or "+" in topic or "#" in topic:
            raise ValueError("must be a non-empty topic without the wildcards + and #")
        try:
            names = {f for _, f, _, _ in string.Formatter().parse(topic) if f is not None}
        except ValueError as exc:
            raise ValueError(f"is not a valid template: {exc}") from None
        if unknown := names - set(TOPIC_FIELDS):
            raise ValueError(f"uses {sorted(unknown)}; the placeholders are {TOPIC_FIELDS}")
        return topic

    def build(self, secrets: Mapping[str, str | None]) -> Notifier:
        return MqttNotifier(
            self.name,
            self.host,
            port=self.port,
            topic=self.topic,
            client_id=self.client_id,
            username=self.username,
            password=secrets["password_env"],
            keepalive_s=self.keepalive_s,
            publish_timeout_s=self.timeout_s,
            min_severity=self.min_severity,
        )


NotifierSettings = Annotated[
    WebhookSettings | DingTalkSettings | WeComSettings | EmailSettings | MqttSettings,
    Field(discriminator="type"),
]


class NotifiersFile(BaseModel):
    """The whole file: a list of notifier entries."""

    model_config = ConfigDict(extra="forbid")

    notifiers: list[NotifierSettings] = Field(default_factory=list)


def _where(raw: Any, index: int) -> str:
    entries = raw.get("notifiers") if isinstance(raw, dict) else None
    entry = entries[index] if isinstance(entries, list) and index < len(entries) else None
    name = entry.get("name") if isinstance(entry, dict) else None
    return f"notifiers[{index}]" + (f" ({name!r})" if name else "")


def _problem(raw: Any, err: Mapping[str, Any]) -> str:
    loc = list(err["loc"])
    msg = str(err["msg"]).removeprefix("Value error, ")
    if len(loc) < 2 or loc[0] != "notifiers" or not isinstance(loc[1], int):
        return f"{'.'.join(map(str, loc)) or '(top level)'}: {msg}"
    fields = loc[3:] if len(loc) > 2 else []  # loc[2] is the union tag (e.g. "email")
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        fields = ["type"]
    field = ".".join(map(str, fields)) or "(entry)"
    return f"{_where(raw, loc[1])}, field {field!r}: {msg}"


def _resolve_secrets(
    where: str, entry: NotifierSettings, env: Mapping[str, str], problems: list[str]
) -> dict[str, str | None]:
    """The values of the entry's ``*_env`` variables; a problem for each one unset."""
    secrets: dict[str, str | None] = {}
    for field, var in entry.env_vars().items():
        secrets[field] = env.get(var) if var else None
        if var and not secrets[field]:
            problems.append(
                f"{where}, field {field!r}: environment variable {var} is not set (or empty)"
            )
    return secrets


def parse_notifiers(
    raw: Any, source: str = "<memory>", environ: Mapping[str, str] | None = None
) -> list[Notifier]:
    """Validate a parsed document and build its notifiers; ``NotifierConfigError`` lists
    every problem. Secrets are read from ``environ`` (default: ``os.environ``)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise NotifierConfigError(source, ["(top level): expected a mapping with 'notifiers'"])
    try:
        parsed = NotifiersFile.model_validate(raw)
    except ValidationError as exc:
        raise NotifierConfigError(source, [_problem(raw, e) for e in exc.errors()]) from exc
    env = os.environ if environ is None else environ
    problems: list[str] = []
    seen: set[str] = set()
    secrets: list[dict[str, str | None]] = []
    for index, entry in enumerate(parsed.notifiers):
        where = _where(raw, index)
        if entry.name in seen:
            problems.append(f"{where}, field 'name': {entry.name!r} is used more than once")
        seen.add(entry.name)
        secrets.append(_resolve_secrets(where, entry, env, problems))
    if problems:  # checked before building, so no client is opened for a bad file
        raise NotifierConfigError(source, problems)
    return [entry.build(values) for entry, values in zip(parsed.notifiers, secrets, strict=True)]


def load_notifiers(path: Path, environ: Mapping[str, str] | None = None) -> list[Notifier]:
    """Read the YAML notifiers file at ``path`` and build its notifiers (not yet started)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise NotifierConfigError(str(path), [f"cannot read the file: {exc.strerror}"]) from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown place"
        raise NotifierConfigError(
            str(path), [f"YAML syntax error at {where}: {exc.problem}"]
        ) from exc
    return parse_notifiers(raw, str(path), environ)
