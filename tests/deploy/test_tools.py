"""The shipped files through the tools that will read them: promtool (Debian's prometheus
package, installed by the bootstrap) and, where the Docker compose plugin exists,
`docker compose config`."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.deploy_files import COMPOSE, DEPLOY, ENV_EXAMPLE, compose_doc, mounts, stack_env

PROMETHEUS = DEPLOY / "prometheus"


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        # the test command installs it: missing is a failure, not a silent skip
        pytest.fail("promtool is not installed: run ./scripts/bootstrap --test (Debian prometheus)")
    return found


def _run(*command: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=60)


def test_promtool_accepts_the_alerting_rules() -> None:
    done = _run(_promtool(), "check", "rules", str(PROMETHEUS / "spcmon-rules.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_promtool_accepts_the_config_as_the_container_sees_it(tmp_path: Path) -> None:
    """prometheus.yml names container paths: lay out the compose mounts under a folder
    and point the config there, with the scrape key file the operator will create."""
    service = compose_doc()["services"]["prometheus"]
    text = (PROMETHEUS / "prometheus.yml").read_text(encoding="utf-8")
    for mount in sorted(mounts(service), key=lambda m: -len(m.target)):
        if not mount.is_bind or mount.target.endswith("prometheus.yml"):
            continue
        local = tmp_path / mount.target.lstrip("/")
        if mount.host_path.is_dir():
            shutil.copytree(mount.host_path, local, dirs_exist_ok=True)
        else:
            local.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(mount.host_path, local)
        text = text.replace(mount.target, str(local))
    key = tmp_path / "etc/prometheus/secrets/spcmon-viewer.key"
    assert str(key) in text, "the scrape key is read from the mounted secrets folder"
    key.write_text("spc_test_viewer_key\n", encoding="utf-8")
    config = tmp_path / "prometheus.yml"
    config.write_text(text, encoding="utf-8")

    done = _run(_promtool(), "check", "config", str(config))

    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 1 rule files found" in done.stdout


def test_docker_compose_validates_the_stack() -> None:
    docker = shutil.which("docker")
    plugin = docker and _run(docker, "compose", "version").returncode == 0
    if not plugin:  # Debian's docker-compose 1.x does not read the compose spec's `name:`
        pytest.skip("no `docker compose` plugin here (the Docker client alone cannot validate)")
    env = {**os.environ, **stack_env()}
    done = subprocess.run(
        [str(docker), "compose", "--env-file", str(ENV_EXAMPLE), "-f", str(COMPOSE), "config",
         "--quiet"],
        capture_output=True, text=True, env=env, cwd=DEPLOY, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
