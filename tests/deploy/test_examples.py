"""The example plant and notifier files pass the service's own validator, and the broker's
ACL lets the service read every topic they name and some device write it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from paho.mqtt.client import topic_matches_sub

from app.cli import main
from ingest.plant import load_plant_config
from tests.deploy.deploy_files import DEPLOY, compose_doc, env_file, load_yaml, stack_env

EXAMPLES = DEPLOY / "examples"
ACL = DEPLOY / "mosquitto" / "acl"
PLANT_FILES = sorted(p for p in EXAMPLES.glob("*.yaml") if "plant" in load_yaml(p))
# the demo runs its own anonymous broker (scripts/demo): not the stack's
STACK_PLANTS = [p for p in PLANT_FILES if p.name != "demo-plant.yaml"]
NOTIFIER_FILES = [DEPLOY / "config" / "notifiers.yaml", EXAMPLES / "notifiers.yaml"]


def acl_grants(path: Path = ACL) -> dict[str, list[tuple[str, str]]]:
    """user -> [(access, topic filter)] of a mosquitto ACL file (no patterns used here)."""
    grants: dict[str, list[tuple[str, str]]] = {}
    user = None
    for raw in path.read_text().splitlines():
        words = raw.split()
        if not words or words[0].startswith("#"):  # mosquitto: comments are whole lines
            continue
        if words[0] == "user":
            user = words[1]
            grants.setdefault(user, [])
        elif words[0] == "topic":
            assert user is not None, f"{path}: a topic line before any user: {raw}"
            access, topic = (words[1], words[2]) if len(words) == 3 else ("readwrite", words[1])
            grants[user].append((access, topic))
        else:
            raise AssertionError(f"{path}: line not understood by this test: {raw}")
    return grants


def may(grants: list[tuple[str, str]], access: str, topic: str) -> bool:
    return any(
        a in (access, "readwrite") and topic_matches_sub(t, topic) for a, t in grants
    )  # fmt: skip


def mqtt_topics(path: Path) -> set[str]:
    plant = load_plant_config(path)
    topics = set()
    for line in plant.lines:
        for process in line.processes:
            if process.inspection is not None:
                topics.add(process.inspection.mqtt.topic)
            for c in process.characteristics:
                if c.source is not None and c.source.mqtt is not None:
                    topics.add(c.source.mqtt.topic)
    return topics


def test_there_is_a_production_example_besides_the_demo() -> None:
    assert STACK_PLANTS
    assert len(PLANT_FILES) == len(STACK_PLANTS) + 1


@pytest.mark.parametrize("path", PLANT_FILES, ids=lambda p: p.name)
def test_every_example_plant_passes_spcmon_config_check(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "check", str(path)]) == 0, capsys.readouterr().err
    assert f"{path}: OK" in capsys.readouterr().out


@pytest.mark.parametrize("path", NOTIFIER_FILES, ids=lambda p: p.parent.name + "/" + p.name)
def test_every_notifiers_file_passes_spcmon_config_check(
    path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for entry in load_yaml(path)["notifiers"]:  # the secrets they name, as the operator sets
        for key, name in entry.items():
            if key.endswith("_env"):
                monkeypatch.setenv(name, "T3stSecret")
    plant = EXAMPLES / "demo-plant.yaml"
    assert main(["config", "check", str(plant), "--notifiers", str(path)]) == 0, (
        capsys.readouterr().err
    )


def test_the_stacks_plant_file_is_an_example_that_passes() -> None:
    plant = (DEPLOY / stack_env()["SPCMON_PLANT_FILE"]).resolve()
    assert plant in PLANT_FILES


@pytest.mark.parametrize("path", STACK_PLANTS, ids=lambda p: p.name)
def test_the_acl_lets_the_service_read_what_the_stack_plant_names(path: Path) -> None:
    grants = acl_grants()
    service_user = compose_doc()["services"]["spcmon"]["environment"]["SPCMON_MQTT__USERNAME"]
    topics = mqtt_topics(path)
    assert topics, f"{path.name} names no MQTT topic"
    for topic in topics:
        assert may(grants[service_user], "read", topic), f"{service_user} cannot read {topic}"
        writers = [u for u, g in grants.items() if u != service_user and may(g, "write", topic)]
        assert writers, f"no device login may publish {topic}"


def test_the_acl_lets_the_service_publish_its_andon_notifications() -> None:
    grants = acl_grants()
    for entry in load_yaml(DEPLOY / "config" / "notifiers.yaml")["notifiers"]:
        if entry["type"] != "mqtt":
            continue
        topic = entry["topic"].format(line="shaft1", process="turning", kind="incident",
                                      severity="critical")  # fmt: skip
        assert may(grants[entry["username"]], "write", topic)
        readers = [u for u, g in grants.items() if may(g, "read", topic)]
        assert set(readers) - {entry["username"]}, f"nobody reads {topic}"
        assert entry["host"] in compose_doc()["services"]


def test_the_service_publishes_with_the_password_it_is_given() -> None:
    env = compose_doc()["services"]["spcmon"]["environment"]
    for entry in load_yaml(DEPLOY / "config" / "notifiers.yaml")["notifiers"]:
        if entry.get("password_env", "").startswith("SPCMON_"):
            assert entry["password_env"] in env or entry["password_env"] in env_file(
                DEPLOY / "spcmon.env.example", commented=True
            )
