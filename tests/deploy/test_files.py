"""deploy/ hangs together: every file parses, every mount and path points at a file that
exists (or at the operator's secrets folder, which says what goes there), and the stack's
wiring agrees with itself (ports, job names, rules file, variables of .env.example).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.deploy_files import (
    COMPOSE,
    DEPLOY,
    ENV_EXAMPLE,
    SECRETS,
    compose_doc,
    compose_variables,
    env_file,
    host_path,
    interpolate,
    load_yaml,
    mounts,
    stack_env,
)
from tests.deploy.grafana import dashboard_files, datasource_types, load, panels, queries

YAML_FILES = sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])
JSON_FILES = sorted(DEPLOY.rglob("*.json"))
TS_COMPOSE = DEPLOY / "timescaledb" / "compose.yaml"


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_file_parses_to_a_mapping(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    if path == COMPOSE:
        text = interpolate(text, stack_env())
    assert isinstance(yaml.safe_load(text), dict)


@pytest.mark.parametrize("path", JSON_FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_json_file_parses_to_an_object(path: Path) -> None:
    assert isinstance(json.loads(path.read_text(encoding="utf-8")), dict)


def test_every_compose_variable_is_in_env_example_and_every_entry_is_used() -> None:
    used = compose_variables(COMPOSE.read_text())
    offered = set(env_file(ENV_EXAMPLE))
    assert used - offered == set(), "compose reads variables .env.example does not offer"
    assert offered - used == set(), ".env.example offers variables compose never reads"


def test_the_stack_refuses_to_start_without_its_secrets() -> None:
    env = {k: v for k, v in stack_env().items() if "PASSWORD" not in k}
    with pytest.raises(KeyError, match="PASSWORD"):
        interpolate(COMPOSE.read_text(), env)
    for name, value in env_file(ENV_EXAMPLE).items():
        if "PASSWORD" in name:
            assert value == "", f"{name}: .env.example must not ship a password"


def test_every_bind_mount_is_a_shipped_file_or_the_operators_secrets_folder() -> None:
    for name, service in compose_doc()["services"].items():
        for mount in mounts(service):
            if not mount.is_bind:
                assert mount.source in compose_doc()["volumes"], f"{name}: {mount.source}"
                continue
            assert mount.read_only, f"{name}: {mount.source} should be mounted read-only"
            path = mount.host_path
            assert path.exists(), f"{name}: {mount.source} does not exist"
            if SECRETS in (path, *path.parents):
                assert path.is_dir(), f"{name}: mount the secrets folder, not one secret"


def test_the_service_is_built_from_the_repository_with_deploy_dockerfile() -> None:
    spcmon = compose_doc()["services"]["spcmon"]
    context = (DEPLOY / spcmon["build"]["context"]).resolve()
    assert (context / spcmon["build"]["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
    assert (context / "pyproject.toml").is_file()
    env_files = [Path(e["path"]) for e in spcmon.get("env_file", [])]
    for path in env_files:  # optional files: their example must be shipped
        assert (DEPLOY / f"{path}.example").is_file(), f"{path}.example is missing"


def test_the_same_timescaledb_image_as_the_standalone_compose_file() -> None:
    standalone = load_yaml(TS_COMPOSE)["services"]["timescaledb"]["image"]
    assert compose_doc()["services"]["timescaledb"]["image"] == standalone


def test_services_listen_on_loopback_except_mqtt_tls() -> None:
    env = stack_env()
    for name, service in compose_doc()["services"].items():
        for port in service.get("ports", []):
            address, _, container = str(port).rpartition(":")
            address = address.rsplit(":", 1)[0] if address.count(":") else ""
            if container == "8883":
                continue  # the devices' TLS listener: reachable by design
            assert address == "127.0.0.1", f"{name}: {port} is not bound to loopback"
    assert env["SPCMON_API_BIND"] == env["GRAFANA_BIND"] == "127.0.0.1"


def test_the_service_reaches_the_database_and_broker_by_their_service_names() -> None:
    services = compose_doc()["services"]
    env = services["spcmon"]["environment"]
    assert "@timescaledb:5432/" in env["SPCMON_DATABASE__URL"]
    assert env["SPCMON_MQTT__URL"] == "mqtt://mosquitto:1883"
    conf = (DEPLOY / "mosquitto" / "mosquitto.conf").read_text()
    listeners = re.findall(r"^listener (\d+)", conf, re.M)
    assert listeners == ["1883", "8883"]
    published = [str(p).rsplit(":", 1)[1] for p in services["mosquitto"]["ports"]]
    assert published == ["8883"], "only the TLS listener may be published"
    assert services["spcmon"]["depends_on"]["timescaledb"]["condition"] == "service_healthy"


def _container_files(text: str, prefix: str) -> set[str]:
    return set(re.findall(rf"({re.escape(prefix)}[\w./-]+)", text))


def test_mosquitto_files_are_mounted_and_its_secrets_are_documented() -> None:
    service = compose_doc()["services"]["mosquitto"]
    conf_path = host_path(service, "/mosquitto/config/mosquitto.conf")
    assert conf_path == DEPLOY / "mosquitto" / "mosquitto.conf"
    conf = conf_path.read_text()
    readme = (SECRETS / "README.md").read_text()
    for path in _container_files(conf, "/mosquitto/"):
        if path.endswith("/"):
            continue  # the persistence directory: a volume
        host = host_path(service, path)
        assert host is not None, f"{path} is not mounted into mosquitto"
        if SECRETS in host.parents:
            assert f"`{host.name}`" in readme, f"secrets/README.md does not explain {host.name}"
        else:
            assert host.is_file(), f"{path} -> {host} does not exist"


def test_prometheus_loads_the_shipped_rules_and_scrapes_the_service_with_a_key() -> None:
    services = compose_doc()["services"]
    prometheus = services["prometheus"]
    config_path = host_path(prometheus, "/etc/prometheus/prometheus.yml")
    assert config_path is not None
    config = load_yaml(config_path)
    rules = [host_path(prometheus, f) for f in config["rule_files"]]
    assert rules == [DEPLOY / "prometheus" / "spcmon-rules.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    spcmon = jobs["spcmon"]
    assert spcmon["static_configs"][0]["targets"] == ["spcmon:8000"]
    key = host_path(prometheus, spcmon["authorization"]["credentials_file"])
    assert key is not None
    assert SECRETS in key.parents
    assert f"`{key.name}`" in (SECRETS / "README.md").read_text()
    alertmanagers = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert alertmanagers == ["alertmanager:9093"]
    assert "alertmanager" in services


def test_every_job_a_rule_selects_is_scraped() -> None:
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    rules = load_yaml(DEPLOY / "prometheus" / "spcmon-rules.yml")
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    exprs += [q.text for f in dashboard_files() for q in queries(load(f))]
    selected = {job for e in exprs for job in re.findall(r'\bjob="([^"]+)"', e)}
    assert selected
    assert selected <= jobs


def test_alertmanager_routes_every_team_the_rules_name_to_a_receiver() -> None:
    config = load_yaml(DEPLOY / "alertmanager" / "alertmanager.yml")
    receivers = {r["name"] for r in config["receivers"]}
    routes = {m: r["receiver"] for r in config["route"]["routes"] for m in r["matchers"]}
    assert config["route"]["receiver"] in receivers
    rules = load_yaml(DEPLOY / "prometheus" / "spcmon-rules.yml")
    for rule in (r for g in rules["groups"] for r in g["rules"]):
        route = routes.get(f'team="{rule["labels"]["team"]}"')
        assert route in receivers, f"{rule['alert']}: team {rule['labels']['team']} unrouted"
    for inhibit in config["inhibit_rules"]:  # they name alerts that exist
        for matcher in (*inhibit["source_matchers"], *inhibit["target_matchers"]):
            name = re.fullmatch(r'alertname="(\w+)"', matcher)
            assert name is None or name[1] in {r["alert"] for g in rules["groups"]
                                               for r in g["rules"]}, matcher  # fmt: skip


def test_grafana_provisions_the_dashboards_folder_and_both_data_sources() -> None:
    grafana = compose_doc()["services"]["grafana"]
    provider = load_yaml(DEPLOY / "grafana" / "provisioning" / "dashboards" / "spcmon.yaml")
    folder = host_path(grafana, provider["providers"][0]["options"]["path"])
    assert folder == DEPLOY / "grafana" / "dashboards"
    home = host_path(grafana, grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert home is not None
    assert home.is_file()
    datasources = host_path(grafana, "/etc/grafana/provisioning/datasources")
    assert datasources is not None
    assert any(datasources.glob("*.yaml"))
    types = datasource_types()
    assert set(types.values()) == {"prometheus", "grafana-postgresql-datasource"}
    pg = next(d for d in load_yaml(DEPLOY / "grafana/provisioning/datasources/spcmon.yaml")
              ["datasources"] if d["type"] != "prometheus")  # fmt: skip
    password = pg["secureJsonData"]["password"].lstrip("$").strip("{}")
    assert password in grafana["environment"], "the reader's password is not passed in"
    assert password in compose_doc()["services"]["timescaledb"]["environment"]


def test_every_dashboard_query_names_a_provisioned_data_source() -> None:
    types = datasource_types()
    uids: set[str] = set()
    for path in dashboard_files():
        dashboard = load(path)
        assert dashboard["uid"] not in uids
        uids.add(dashboard["uid"])
        for panel in panels(dashboard):
            if panel["type"] in ("row", "text"):
                continue
            ds: dict[str, Any] = panel["datasource"]
            assert types.get(ds["uid"]) == ds["type"], f"{path.name}: {panel['title']}"
            assert panel["targets"], f"{path.name}: {panel['title']} has no query"
        for query in queries(dashboard):
            assert query.datasource_uid in types, f"{path.name}: {query.where}"
    assert {"spcmon-plant-overview", "spcmon-characteristic", "spcmon-ingest-health"} <= uids
