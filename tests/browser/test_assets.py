"""The dashboard's files as the service serves them: every file the page and its modules
refer to exists and is served with its type and a strict Content-Security-Policy; the
page has no inline script, style or handler, and our scripts never parse data as HTML."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app import Settings, create_app

STATIC = Path(__file__).resolve().parents[2] / "app" / "static"
TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


@pytest.fixture
def client(tmp_path: Path, demo_config_path: Path) -> Iterator[TestClient]:
    settings = Settings(config=demo_config_path, data_dir=tmp_path / "data")
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _referenced() -> set[str]:
    """Paths under static/ named by the page and by every module's imports."""
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    found = set(re.findall(r'(?:src|href)="static/([^"]+)"', page))
    for module in (STATIC / "js").glob("*.js"):
        imports = re.findall(r'from "\./([^"]+)"', module.read_text(encoding="utf-8"))
        found |= {f"js/{name}" for name in imports}
    return found


def test_every_file_the_page_and_its_modules_name_is_served_with_its_type(
    client: TestClient,
) -> None:
    page = client.get("/")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    referenced = _referenced()
    assert {"js/main.js", "vendor/uplot/uPlot.iife.min.js", "css/dashboard.css"} <= referenced
    for name in sorted(referenced):
        answer = client.get(f"/static/{name}")
        assert answer.status_code == 200, name
        assert answer.headers["content-type"].startswith(TYPES[Path(name).suffix]), name
        assert answer.headers["content-security-policy"] == policy
    modules = {f"js/{p.name}" for p in (STATIC / "js").glob("*.js")}
    assert modules <= referenced, f"modules nothing imports: {modules - referenced}"


def test_files_outside_the_static_folder_or_missing_are_not_found(client: TestClient) -> None:
    for path in (
        "/static/%2e%2e/settings.py",
        "/static/js/%2e%2e/%2e%2e/auth.py",
        "/static/nope.js",
    ):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert answer.headers["content-type"].startswith("application/problem+json")


def test_the_page_runs_under_a_strict_policy_and_builds_no_html_from_strings() -> None:
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), "inline script"
    assert not re.search(r"\son[a-z]+\s*=", page), "inline event handler"
    assert not re.search(r"\sstyle\s*=|<style", page), "inline style"
    for module in (STATIC / "js").glob("*.js"):
        source = module.read_text(encoding="utf-8")
        for risky in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert risky not in source, f"{module.name} uses {risky}"
    vendored = STATIC / "vendor" / "uplot"
    assert {"LICENSE", "README.md", "uPlot.iife.min.js", "uPlot.min.css"} <= {
        p.name for p in vendored.iterdir()
    }
