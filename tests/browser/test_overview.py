"""The plant overview: lines with their live grades, tiles per characteristic, the
language switch, and what the page says when the service wants a key."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Page, expect

from app.auth import Role
from tests.browser.conftest import REFUSALS, OpenPage
from tests.browser.plant import Plant

METRICS_EN = {
    "cpk": "Cpk",
    "rolled_first_pass_yield": "rolled first-pass yield",
    "sigma_level": "sigma level",
    "internal_loss_rate": "internal loss rate",
    "external_loss_rate": "external loss rate",
}
GRADES_ZH = {1: "经验级", 2: "检验级", 3: "保证级", 4: "预防级", 5: "卓越级"}


def test_the_overview_shows_every_line_with_its_grade_and_a_tile_per_characteristic(
    plant: Plant, open_page: OpenPage, screenshot: Callable[[Page, str], None]
) -> None:
    grades = plant.call("GET", "/api/v1/grades")
    characteristics = plant.call("GET", "/api/v1/characteristics")
    page, console = open_page(plant)
    page.goto(plant.url + "/")

    lines = page.locator("section.line")
    expect(lines).to_have_count(len(grades["lines"]))
    expect(page.locator("#live")).to_have_attribute("data-mode", "stream")
    for line in grades["lines"]:
        assert line["grade"] is not None, f"the fixture's data should grade {line['id']}"
        head = page.locator(f'section.line[data-line="{line["id"]}"] .line-head')
        expect(head.locator(".grade-badge")).to_have_attribute("data-grade", str(line["grade"]))
        expect(head.locator(".grade-name")).to_have_text(line["grade_en"])
        expect(head.locator(".limiting")).to_contain_text(METRICS_EN[line["limiting_metric"]])
    plant_badge = page.locator("#plant-summary .grade-badge")
    expect(plant_badge).to_have_attribute("data-grade", str(grades["plant"]["grade"]))

    tiles = page.locator(".tile")
    expect(tiles).to_have_count(len(characteristics))
    for record in characteristics:
        status = plant.call("GET", f"/api/v1/characteristics/{record['id']}/status")
        tile = page.locator(f'.tile[data-characteristic="{record["id"]}"]')
        expected = "alarm" if status["open_alarms"] else "ok"  # limits are frozen for all
        expect(tile).to_have_attribute("data-state", expected)
        expect(tile.locator(".tile-name")).to_have_text(record["name"])
        cap = status["capability"]
        expect(tile.locator(".cpk-value")).to_have_text(f"{cap['cpk']:.2f}")
        low, high = cap["cpk_ci"]
        expect(tile.locator(".ci")).to_have_text(f"[{low:.2f}, {high:.2f}]")
        expect(tile.locator("canvas.spark")).to_have_attribute(
            "data-points", re.compile(r"^[1-9]\d*$")
        )
    unresolved = plant.call("GET", "/api/v1/alarms", params={"state": "unresolved"})
    for line in grades["lines"]:
        open_count = sum(a["line"] == line["id"] and a["state"] == "open" for a in unresolved)
        link = page.locator(f'section.line[data-line="{line["id"]}"] .line-incidents')
        expect(link).to_have_attribute("data-open", str(open_count))

    screenshot(page, "overview-en")
    assert console.unexpected() == []


def test_the_language_switch_shows_the_chinese_grade_names_and_is_kept(
    plant: Plant, open_page: OpenPage, screenshot: Callable[[Page, str], None]
) -> None:
    grades = plant.call("GET", "/api/v1/grades")
    page, console = open_page(plant)
    page.goto(plant.url + "/")
    first = grades["lines"][0]
    expect(page.locator(".line-head .grade-name").first).to_have_text(first["grade_en"])

    page.locator("#lang-switch").click()
    for line in grades["lines"]:
        head = page.locator(f'section.line[data-line="{line["id"]}"] .line-head')
        expect(head.locator(".grade-name")).to_have_text(line["grade_zh"])
        assert line["grade_zh"] == GRADES_ZH[line["grade"]]
        expect(head.locator(".grade-badge")).to_have_attribute("title", line["grade_en"])
    expect(page.locator("#nav-overview")).to_have_text("总览")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator('.tile[data-state="ok"] .state-pill').first).to_have_text("受控")
    expect(page.locator('.tile[data-state="unknown"]')).to_have_count(0)
    screenshot(page, "overview-zh")

    page.reload()  # the choice is kept
    expect(page.locator(".line-head .grade-name").first).to_have_text(first["grade_zh"])
    page.locator("#lang-switch").click()
    expect(page.locator(".line-head .grade-name").first).to_have_text(first["grade_en"])
    assert console.unexpected() == []


def test_without_a_key_the_page_says_a_viewer_key_is_needed_and_takes_one(
    empty_plant: Plant, open_page: OpenPage, screenshot: Callable[[Page, str], None]
) -> None:
    page, console = open_page(empty_plant, role=None)
    page.goto(empty_plant.url + "/")
    notice = page.locator("#notice")
    expect(notice).to_be_visible()
    expect(notice).to_have_attribute("data-status", "401")
    expect(notice).to_contain_text("API key")
    expect(page.locator(".view-error")).to_have_attribute("data-status", "401")
    expect(page.locator("#live")).to_have_attribute("data-mode", "refused")
    screenshot(page, "no-key")

    page.locator("#api-key").fill(empty_plant.token(Role.VIEWER))
    page.locator("#key-save").click()
    expect(page.locator(".tile")).to_have_count(5)  # the demo plant's characteristics
    expect(page.locator('.tile[data-state="nodata"]')).to_have_count(5)
    expect(page.locator("#live")).to_have_attribute("data-mode", "stream")
    assert console.unexpected(REFUSALS) == []


def test_names_from_the_api_are_shown_as_text_never_as_markup(
    empty_plant: Plant, open_page: OpenPage
) -> None:
    name = '<img src=x onerror="window.__injected = 1">Force & <b>bold</b>'
    created = {
        "id": "line1.press.force",
        "name": name,
        "unit": "<i>kN</i>",
        "line": "line1",
        "process": "press",
        "lsl": 11.0,
        "usl": 13.0,
        "chart": "imr",
    }
    empty_plant.call("POST", "/api/v1/characteristics", Role.ENGINEER, json=created)
    page, console = open_page(empty_plant)
    page.goto(empty_plant.url + "/")
    tile = page.locator('.tile[data-characteristic="line1.press.force"]')
    expect(tile.locator(".tile-name")).to_have_text(name)
    expect(tile.locator(".unit")).to_have_text("<i>kN</i>")
    expect(tile.locator("img")).to_have_count(0)
    expect(tile.locator(".tile-name *, .unit *")).to_have_count(0)  # text, no elements
    page.goto(empty_plant.url + "/#/c/line1.press.force")
    expect(page.locator(".char-head h1")).to_contain_text(name)
    expect(page.locator("#no-points")).to_be_visible()
    # no data, no capability: the service's 422 is shown as its reason
    expect(page.locator("#cap-unavailable")).to_contain_text("no good measurements")
    assert page.evaluate("window.__injected") is None
    assert console.unexpected(("status of 422",)) == []


def test_without_the_event_stream_the_overview_falls_back_to_polling(
    plant: Plant, open_page: OpenPage
) -> None:
    page, console = open_page(plant)
    page.route("**/api/v1/stream*", lambda route: route.abort())  # e.g. a proxy that buffers
    page.goto(plant.url + "/")
    expect(page.locator("#live")).to_have_attribute("data-mode", "polling")
    tile = page.locator('.tile[data-characteristic="line1.turning.diameter"]')
    expect(tile).to_have_attribute("data-state", re.compile("ok|alarm"))
    page.evaluate("window.__notReloaded = true")

    plant.push("line1.turning.diameter", [25.0123])
    expect(tile.locator(".value")).to_have_text("25.012", timeout=15_000)  # a 5 s poll
    assert page.evaluate("window.__notReloaded") is True
    assert console.unexpected(("ERR_FAILED",)) == []
