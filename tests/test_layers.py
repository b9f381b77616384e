"""The package arrows of DESIGN.md hold: spc knows nothing of the others, app knows all."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = {"app", "ingest", "spc", "alerts", "simulators"}
THIRD_PARTY_ALLOWED = {
    "spc": {"numpy", "numba", "scipy"},
    "ingest": {"spc", "asyncua", "paho", "psycopg", "psycopg_pool", "yaml", "pydantic", "google"},
    "alerts": {"spc", "ingest", "httpx", "paho", "pydantic", "yaml", "numpy"},
    "simulators": {"asyncua", "paho", "httpx", "numpy", "yaml", "google"},  # google: protobuf
}


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(THIRD_PARTY_ALLOWED))
def test_package_imports_only_what_its_layer_allows(package: str) -> None:
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    allowed = THIRD_PARTY_ALLOWED[package] | {package} | stdlib
    offenders = {
        f"{path.relative_to(ROOT)} imports {root}"
        for path in (ROOT / package).rglob("*.py")
        for root in _imported_roots(path)
        if root not in allowed
    }
    assert not offenders, sorted(offenders)


def test_spc_has_no_project_dependency() -> None:
    roots = set().union(*(_imported_roots(p) for p in (ROOT / "spc").rglob("*.py")))
    assert not roots & (PROJECT - {"spc"})
