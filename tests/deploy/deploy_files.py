"""Reading deploy/ as the tools that consume it would: compose interpolation and mounts,
env files, the settings an environment variable sets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from pydantic import BaseModel

from app.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
SECRETS = DEPLOY / "secrets"
COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / ".env.example"
DOCKERFILE = DEPLOY / "Dockerfile"

# compose's ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}
_INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
_ASSIGNMENT = re.compile(r"^(?P<comment>#\s*)?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def env_file(path: Path, commented: bool = False) -> dict[str, str]:
    """``KEY=value`` lines of an env file; with ``commented``, the ``# KEY=value`` ones."""
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _ASSIGNMENT.match(line.strip())
        if match and bool(match["comment"]) == commented:
            out[match["name"]] = match["value"]
    return out


def compose_variables(text: str) -> set[str]:
    """Every variable compose would interpolate in ``text`` (``$$`` is a literal $)."""
    return {m["name"] for m in _INTERPOLATION.finditer(text.replace("$$", ""))}


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's interpolation; a required variable that is unset or empty raises."""

    def value(m: re.Match[str]) -> str:
        name, op, arg = m["name"], m["op"], m["arg"]
        current = env.get(name)
        if op in (":?", "?") and (current is None or (op == ":?" and current == "")):
            raise KeyError(f"required variable {name} is not set: {arg}")
        if op == ":-" and not current:
            return arg
        if op == "-" and current is None:
            return arg
        return current or ""

    return _INTERPOLATION.sub(value, text)


def stack_env() -> dict[str, str]:
    """deploy/.env.example with a test value in every empty entry (the secrets)."""
    return {k: v or f"T3st{k.title().replace('_', '')}" for k, v in env_file(ENV_EXAMPLE).items()}


def compose_doc() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(interpolate(COMPOSE.read_text(), stack_env()))
    return doc


@dataclass(frozen=True)
class Mount:
    source: str  # a path (relative to deploy/) or a named volume
    target: str
    read_only: bool

    @property
    def is_bind(self) -> bool:
        return self.source.startswith((".", "/"))

    @property
    def host_path(self) -> Path:
        return (DEPLOY / self.source).resolve()


def mounts(service: dict[str, Any]) -> list[Mount]:
    out = []
    for entry in service.get("volumes", []):
        source, target, *mode = str(entry).split(":")
        out.append(Mount(source, target, "ro" in mode))
    return out


def host_path(service: dict[str, Any], container_path: str) -> Path | None:
    """The repository file a container path of ``service`` is bind-mounted from."""
    wanted = PurePosixPath(container_path)
    for mount in mounts(service):
        target = PurePosixPath(mount.target)
        if mount.is_bind and (wanted == target or target in wanted.parents):
            return mount.host_path / wanted.relative_to(target)
    return None


def setting_field(name: str) -> list[str] | None:
    """The Settings field path an environment variable sets, or None when it sets none.

    Read from the model's own prefix and nesting, so a renamed or removed setting makes
    the deployment files fail here rather than be ignored by the service.
    """
    config = Settings.model_config
    prefix, delimiter = config.get("env_prefix", ""), config.get("env_nested_delimiter")
    if not name.upper().startswith(prefix.upper()) or not delimiter:
        return None
    parts = name[len(prefix) :].lower().split(delimiter)
    model: type[BaseModel] = Settings
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return None
        annotation = field.annotation
        nested = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        if i < len(parts) - 1:
            if not nested:
                return None
            assert isinstance(annotation, type)
            model = annotation
        elif nested:
            return None  # a whole group in one variable: not how deploy/ sets anything
    return parts


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending += line.removesuffix("\\").strip() + " "
        if not line.endswith("\\"):
            keyword, _, args = pending.strip().partition(" ")
            out.append((keyword.upper(), args.strip()))
            pending = ""
    return out
