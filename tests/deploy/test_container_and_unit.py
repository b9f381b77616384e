"""The image recipe and the systemd unit: what they copy exists and is not ignored, the
package's modules all go in, the service runs unprivileged, and the health check works.
No container engine or systemd runs here: the Dockerfile is read as text, the unit is
checked by ``systemd-analyze verify`` when it is installed.
"""

from __future__ import annotations

import fnmatch
import http.server
import os
import shlex
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.local_broker import free_port
from tests.deploy.deploy_files import (
    DEPLOY,
    REPO,
    compose_doc,
    dockerfile_instructions,
    env_file,
)

DOCKERIGNORE = DEPLOY / "Dockerfile.dockerignore"
HEALTHCHECK = DEPLOY / "healthcheck.py"
UNIT = DEPLOY / "systemd" / "spcmon.service"
UNIT_ENV = DEPLOY / "systemd" / "spcmon.env.example"


def _ignored(path: str) -> bool:
    """Whether the build context drops ``path`` (Docker's rules: last match wins, and a
    pattern that matches a parent directory matches what is inside)."""
    ignored = False
    parts = path.split("/")
    for raw in DOCKERIGNORE.read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        hit = any(fnmatch.fnmatch(p, pattern) for p in prefixes)
        if pattern.startswith("**/"):
            hit = hit or any(fnmatch.fnmatch(part, pattern[3:]) for part in parts)
        if hit:
            ignored = not negate
    return ignored


def _copies() -> list[tuple[list[str], str]]:
    return [
        (shlex.split(args)[:-1], shlex.split(args)[-1])
        for keyword, args in dockerfile_instructions()
        if keyword == "COPY" and not args.startswith("--from")
    ]


def test_the_image_is_multi_stage_on_slim_python_3_11() -> None:
    args = dict(
        a.split("=", 1) for k, a in dockerfile_instructions() if k == "ARG" and "=" in a
    )  # fmt: skip
    stages = [a for k, a in dockerfile_instructions() if k == "FROM"]
    assert len(stages) >= 2
    assert args["PYTHON_IMAGE"].startswith("python:3.11-slim")
    assert all(s.startswith("${PYTHON_IMAGE}") for s in stages)
    assert any(k == "COPY" and a.startswith("--from=build") for k, a in dockerfile_instructions())


def test_every_copied_file_exists_and_reaches_the_build_context() -> None:
    for sources, _ in _copies():
        for source in sources:
            assert (REPO / source).exists(), f"COPY {source}: not in the repository"
            assert not _ignored(source), f"COPY {source}: excluded by {DOCKERIGNORE.name}"
    assert _ignored(".venv")
    assert _ignored("tests/app")
    assert _ignored("data/demo")
    assert _ignored("app/__pycache__/x.pyc")


def test_every_package_and_the_readme_pip_needs_are_copied() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    copied = {s.rstrip("/") for sources, _ in _copies() for s in sources}
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages <= copied, f"not copied into the image: {packages - copied}"
    assert {"pyproject.toml", project["project"]["readme"]} <= copied
    runs = " ".join(a for k, a in dockerfile_instructions() if k == "RUN")
    assert "pip install ." in runs
    assert "spcmon" in project["project"]["scripts"]


def test_the_service_runs_as_an_unprivileged_user_on_the_exposed_port() -> None:
    steps = dockerfile_instructions()
    users = [(i, a) for i, (k, a) in enumerate(steps) if k == "USER"]
    assert users, "no USER: the service would run as root"
    index, user = users[-1]
    assert user not in ("root", "0")
    assert not user.startswith(("root:", "0:"))
    entry = next(i for i, (k, _) in enumerate(steps) if k == "ENTRYPOINT")
    assert index < entry
    env = " ".join(a for k, a in steps if k == "ENV")
    port = next(a for k, a in steps if k == "EXPOSE")
    assert f"SPCMON_HTTP__PORT={port}" in env
    assert "SPCMON_HTTP__HOST=0.0.0.0" in env
    assert dict(steps)["ENTRYPOINT"] == '["spcmon"]'
    assert dict(steps)["CMD"] == '["serve"]'
    published = compose_doc()["services"]["spcmon"]["ports"][0]
    assert str(published).endswith(f":{port}")


def test_the_health_check_is_the_shipped_script_on_healthz() -> None:
    check = dict(dockerfile_instructions())["HEALTHCHECK"]
    target = next(dest for sources, dest in _copies() if sources == ["deploy/healthcheck.py"])
    assert target in check
    assert compose_doc()["services"]["spcmon"]["healthcheck"]["test"][-1] == target
    assert "/healthz" in HEALTHCHECK.read_text()


class _Answer(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[tuple[int, type[_Answer]]]:
    handler = type("Handler", (_Answer,), {})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], handler
    server.shutdown()
    server.server_close()


def _check(port: int) -> int:
    env = {**os.environ, "SPCMON_HTTP__PORT": str(port)}
    return subprocess.run([sys.executable, str(HEALTHCHECK)], env=env, capture_output=True,
                          timeout=15, check=False).returncode  # fmt: skip


def test_the_health_check_passes_on_200_and_fails_otherwise(
    health_server: tuple[int, type[_Answer]],
) -> None:
    port, handler = health_server
    assert _check(port) == 0
    handler.status = 503
    assert _check(port) == 1
    assert _check(free_port()) == 1  # nothing listening


def _unit() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith(("#", "[")):
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_the_unit_runs_serve_unprivileged_hardened_and_restarting() -> None:
    unit = _unit()
    assert unit["User"] == ["spcmon"]
    assert unit["Restart"] == ["on-failure"]
    assert unit["ExecStart"][0].endswith("/spcmon serve")
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict",
                       "ProtectHome": "yes", "PrivateTmp": "yes"}.items():  # fmt: skip
        assert unit[key] == [value], key
    assert "MemoryDenyWriteExecute" not in unit  # numba's JIT needs W+X pages
    assert unit["CapabilityBoundingSet"] == [""]
    assert unit["EnvironmentFile"] == ["/etc/spcmon/spcmon.env"]


def test_the_units_writable_and_config_paths_are_the_ones_its_settings_use() -> None:
    unit, env = _unit(), env_file(UNIT_ENV)
    state = Path("/var/lib") / unit["StateDirectory"][0]
    assert Path(env["SPCMON_DATA_DIR"]) == state  # the only writable place
    assert Path(env["SPCMON_AUTH__KEYS_FILE"]).parent == state
    numba = next(v for v in unit["Environment"] if v.startswith("NUMBA_CACHE_DIR="))
    assert state in Path(numba.split("=", 1)[1]).parents
    config = Path("/etc") / unit["ConfigurationDirectory"][0]
    assert Path(env["SPCMON_CONFIG"]).parent == config
    assert unit["WorkingDirectory"] == [str(state)]


def test_systemd_accepts_every_directive_of_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    spcmon = shutil.which("spcmon", path=str(Path(sys.executable).parent))
    assert spcmon is not None
    text = UNIT.read_text().replace("/opt/spcmon/venv/bin/spcmon", spcmon)
    (tmp_path / "spcmon.service").write_text(text)
    result = subprocess.run([analyze, "verify", str(tmp_path / "spcmon.service")],
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert not result.stderr.strip(), "systemd-analyze complains"
