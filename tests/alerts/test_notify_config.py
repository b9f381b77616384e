"""The notifiers file: a good one builds the notifiers, a bad one names entry and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from alerts.notify import (
    DingTalkNotifier,
    EmailNotifier,
    MqttNotifier,
    NotifierConfigError,
    WebhookNotifier,
    WeComNotifier,
    load_notifiers,
    parse_notifiers,
)

pytestmark = pytest.mark.anyio
EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "examples" / "notifiers.yaml"
ENV = {
    "SPCMON_WEBHOOK_SECRET": "from-env-webhook",
    "SPCMON_DINGTALK_TOKEN": "from-env-dingtalk-token",
    "SPCMON_DINGTALK_SECRET": "from-env-dingtalk-secret",
    "SPCMON_WECOM_KEY": "from-env-wecom",
    "SPCMON_SMTP_PASSWORD": "from-env-smtp",
    "SPCMON_ANDON_MQTT_PASSWORD": "from-env-mqtt",
}


def _problems(raw: Any, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(NotifierConfigError) as caught:
        parse_notifiers(raw, "test", ENV if env is None else env)
    return caught.value.problems


async def test_the_example_file_builds_one_notifier_of_each_kind() -> None:
    notifiers = load_notifiers(EXAMPLE, ENV)
    kinds = [type(n) for n in notifiers]
    assert kinds == [WebhookNotifier, DingTalkNotifier, WeComNotifier, EmailNotifier, MqttNotifier]
    assert len({n.name for n in notifiers}) == 5
    assert {n.min_severity for n in notifiers} <= {"info", "warning", "critical"}
    for notifier in notifiers:
        await notifier.aclose()


def test_an_empty_file_means_no_notifiers(tmp_path: Path) -> None:
    path = tmp_path / "n.yaml"
    path.write_text("notifiers: []\n")
    assert load_notifiers(path, {}) == []
    path.write_text("")
    assert load_notifiers(path, {}) == []


def test_errors_name_the_entry_the_field_and_the_problem() -> None:
    raw = {
        "notifiers": [
            {"type": "webhook", "name": "mes", "url": "ftp://x", "secret_env": "S"},
            {
                "type": "email",
                "name": "mail",
                "host": "h",
                "port": "smtp",
                "sender": "a@b",
                "recipients": ["c@d"],
            },
            {"type": "pager", "name": "p"},
            {"type": "wecom", "name": "w", "key_env": "K", "key": "inline-secret"},
            {"type": "mqtt", "name": "andon", "host": "h", "topic": "a/{cell}"},
            {"type": "dingtalk", "name": "d", "min_severity": "fatal", "access_token_env": "T"},
        ]
    }
    problems = _problems(raw)
    assert len(problems) == 6
    first, port, kind, extra, topic, severity = problems
    assert first.startswith("notifiers[0] ('mes'), field 'url': must start with http://")
    assert port.startswith("notifiers[1] ('mail'), field 'port': Input should be a valid integer")
    assert kind.startswith("notifiers[2] ('p'), field 'type': Input tag 'pager'")
    assert extra == "notifiers[3] ('w'), field 'key': Extra inputs are not permitted"
    assert topic.startswith("notifiers[4] ('andon'), field 'topic': uses ['cell']")
    assert severity.startswith("notifiers[5] ('d'), field 'min_severity': Input should be")


def test_a_missing_secret_environment_variable_is_named() -> None:
    raw = {
        "notifiers": [
            {"type": "webhook", "name": "mes", "url": "https://x/h", "secret_env": "SPCMON_NOT_SET"}
        ]
    }
    assert _problems(raw) == [
        "notifiers[0] ('mes'), field 'secret_env': environment variable SPCMON_NOT_SET "
        "is not set (or empty)"
    ]


def test_tokens_and_keys_are_refused_inside_urls() -> None:
    raw = {
        "notifiers": [
            {
                "type": "dingtalk",
                "name": "d",
                "access_token_env": "T",
                "url": "https://oapi.dingtalk.com/robot/send?access_token=abc",
            },
            {
                "type": "wecom",
                "name": "w",
                "key_env": "K",
                "url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc",
            },
        ]
    }
    d, w = _problems(raw, {"T": "t", "K": "k"})
    assert d.startswith("notifiers[0] ('d'), field 'url': holds an access_token")
    assert w.startswith("notifiers[1] ('w'), field 'url': holds the robot key")


def test_names_must_be_distinct() -> None:
    entry = {"type": "wecom", "name": "same", "key_env": "K"}
    assert _problems({"notifiers": [entry, entry]}, {"K": "k"}) == [
        "notifiers[1] ('same'), field 'name': 'same' is used more than once"
    ]


def test_file_level_problems_are_reported(tmp_path: Path) -> None:
    with pytest.raises(NotifierConfigError, match="cannot read the file"):
        load_notifiers(tmp_path / "missing.yaml", {})
    bad = tmp_path / "bad.yaml"
    bad.write_text("notifiers:\n  - type: webhook\n   name: x\n")
    with pytest.raises(NotifierConfigError, match="YAML syntax error at line 3"):
        load_notifiers(bad, {})
    assert _problems(["a list"]) == ["(top level): expected a mapping with 'notifiers'"]
    assert _problems({"notifier": []}) == ["notifier: Extra inputs are not permitted"]


def test_the_example_file_holds_no_secret() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    for value in ENV.values():
        assert value not in text
    for entry in yaml.safe_load(text)["notifiers"]:
        assert not {"secret", "password", "key", "access_token", "token"} & set(entry)
