"""Browser tests of the dashboard: real headless Chromium (Debian's) driven by Playwright,
against the real service on a loopback port with the demo plant's data.

They are skipped only when Chromium is not installed (``scripts/bootstrap --test``
installs Debian's ``chromium``); Playwright never downloads a browser here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Playwright,
    ViewportSize,
    sync_playwright,
)

from app import Settings
from app.auth import Role
from app.settings import AlertSettings
from tests.browser.plant import Plant, feed, serving
from tests.conftest import REPO_ROOT

CHROMIUM = Path(os.environ.get("SPCMON_TEST_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"
VIEWPORT: ViewportSize = {"width": 1400, "height": 1000}
# what a refused call logs in the console: expected where a test provokes it
REFUSALS = ("status of 401", "status of 403")


# module scope, not session: Playwright's sync API keeps an asyncio loop running in the
# main thread while it is open, and every later test that starts a loop of its own
# (asyncio.run, anyio) would fail with "another loop is running"
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if not CHROMIUM.exists():  # the test command installs it: missing is a failure
        pytest.fail(
            f"no Chromium at {CHROMIUM}: install Debian's chromium (scripts/bootstrap --test)"
        )
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
    yield browser
    browser.close()


@pytest.fixture
def settings(tmp_path: Path, demo_config_path: Path) -> Settings:
    # incidents per process and hour are capped at 6 by default; the tests open several
    return Settings(
        config=demo_config_path,
        data_dir=tmp_path / "data",
        alerts=AlertSettings(max_new_per_hour=100),
    )


@pytest.fixture
def empty_plant(settings: Settings) -> Iterator[Plant]:
    """The service with the demo plant and no data."""
    with serving(settings) as url:
        yield Plant(url, settings)


@pytest.fixture
def plant(empty_plant: Plant, demo_config_path: Path, tmp_path: Path) -> Plant:
    """The service after 200 in-control parts of every line (limits frozen, grades known)."""
    feed(empty_plant, demo_config_path, tmp_path / "mes-dead-letters.jsonl")
    return empty_plant


class Console:
    """What the page logged: errors and i18n warnings fail a test unless expected."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def record(self, message: ConsoleMessage) -> None:
        if message.type == "error" or (message.type == "warning" and "i18n" in message.text):
            self.problems.append(f"{message.type}: {message.text}")

    def unexpected(self, allowed: tuple[str, ...] = ()) -> list[str]:
        return [p for p in self.problems if not any(a in p for a in allowed)]


OpenPage = Callable[..., tuple[Page, Console]]


@pytest.fixture
def open_page(browser: Browser) -> Iterator[OpenPage]:
    """A fresh browser context per call (own localStorage), its page and its console."""
    contexts = []

    def opener(
        plant: Plant, role: Role | None = Role.VIEWER, lang: str = "en"
    ) -> tuple[Page, Console]:
        context = browser.new_context(viewport=VIEWPORT, locale="en-GB")
        contexts.append(context)
        seed = {"spcmon.lang": lang}
        if role is not None:
            seed["spcmon.apiKey"] = plant.token(role)
        # once per tab: a reload keeps what the page itself stored since
        context.add_init_script(
            "if (!sessionStorage.getItem('seeded')) {"
            f" for (const [k, v] of Object.entries({json.dumps(seed)})) localStorage.setItem(k, v);"
            " sessionStorage.setItem('seeded', '1'); }"
        )
        page = context.new_page()
        page.set_default_timeout(15_000)
        console = Console()
        page.on("console", console.record)
        page.on("pageerror", lambda error: console.problems.append(f"pageerror: {error}"))
        return page, console

    yield opener
    for context in contexts:
        context.close()


@pytest.fixture(scope="session")
def screenshot() -> Callable[[Page, str], None]:
    """Save a full-page screenshot as a test artefact (test-artifacts/screenshots/)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page: Page, name: str) -> None:
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    return take
