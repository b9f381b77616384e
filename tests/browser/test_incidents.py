"""The incidents view: filters, and an acknowledgement with a cause and an action from
the catalogue that round-trips to the API; not offered to a viewer (the page asks
/api/v1/whoami which roles its key has)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from playwright.sync_api import Locator, Page, expect

from app.auth import Role
from tests.browser.conftest import REFUSALS, OpenPage
from tests.browser.plant import Plant

DIAMETER = "line1.turning.diameter"


def _open_incident(plant: Plant) -> dict[str, Any]:
    """A shift on the diameter, and the incident it opens (read from the API)."""
    plant.resolve_all()
    limits = plant.call("GET", f"/api/v1/characteristics/{DIAMETER}/status")["limits"]
    plant.push(DIAMETER, [round(limits["center"] - 4 * limits["sigma"], 4)] * 5)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        opened = plant.call("GET", "/api/v1/alarms", params={"characteristic": DIAMETER})
        if opened:
            return dict(opened[0])
        time.sleep(0.1)
    raise AssertionError("the shift opened no incident")


def _fill_acknowledgement(card: Locator, cause: str, action: str, comment: str) -> None:
    card.locator("button[data-action='acknowledge']").click()
    form = card.locator("form[data-form='acknowledge']")
    form.locator("select[name='cause']").select_option(cause)
    form.locator("select[name='action']").select_option(action)
    form.locator("textarea[name='comment']").fill(comment)
    form.locator("button[type='submit']").click()


def test_an_acknowledgement_with_cause_and_action_round_trips_and_only_operators_are_offered_it(
    plant: Plant, open_page: OpenPage, screenshot: Callable[[Page, str], None]
) -> None:
    alarm = _open_incident(plant)
    catalogue = plant.call("GET", f"/api/v1/alarms/{alarm['id']}")["catalogue"]
    cause, action = catalogue["causes"][1], catalogue["actions"][0]
    page, console = open_page(plant, role=Role.VIEWER)
    page.goto(f"{plant.url}/#/incidents?line=line1")

    expect(page.locator("#filter-state")).to_have_value("open")
    expect(page.locator("#filter-line")).to_have_value("line1")
    card = page.locator(f"article.incident[data-alarm-id='{alarm['id']}']")
    expect(card).to_have_attribute("data-state", "open")

    # a viewer may read but not act: the page asked who its key is and offers no action
    # the service would refuse
    expect(card.locator("button[data-action='details']")).to_be_visible()
    expect(card.locator("button[data-action='acknowledge']")).to_have_count(0)
    expect(card.locator("button[data-action='resolve']")).to_have_count(0)
    screenshot(page, "incident-viewer")

    page.locator("#api-key").fill(plant.token(Role.OPERATOR))
    page.locator("#key-save").click()
    card = page.locator(f"article.incident[data-alarm-id='{alarm['id']}']")
    _fill_acknowledgement(card, cause, action, "insert worn: replaced")

    # the open list no longer holds it; the acknowledged one does, with the cause
    expect(card).to_have_count(0)
    page.locator("#filter-state").select_option("acknowledged")
    card = page.locator(f"article.incident[data-alarm-id='{alarm['id']}']")
    expect(card).to_have_attribute("data-state", "acknowledged")
    expect(card.locator(".ack-cause")).to_have_text(cause)
    expect(card.locator(".ack-action")).to_have_text(action)
    expect(page.locator("#pareto")).to_contain_text(cause)
    screenshot(page, "acknowledged")

    stored = plant.call("GET", f"/api/v1/alarms/{alarm['id']}")
    assert stored["state"] == "acknowledged"
    assert (stored["ack_cause"], stored["ack_action"]) == (cause, action)
    assert stored["ack_comment"] == "insert worn: replaced"
    assert stored["acknowledged_by"] == plant.names[Role.OPERATOR]
    assert console.unexpected(REFUSALS) == []


def test_filters_narrow_the_list_to_a_line_and_a_severity(
    plant: Plant, open_page: OpenPage
) -> None:
    alarm = _open_incident(plant)
    page, console = open_page(plant)
    page.goto(f"{plant.url}/#/incidents?state=all")
    every = plant.call("GET", "/api/v1/alarms", params={"state": "all"})
    expect(page.locator("#incident-list")).to_have_attribute("data-count", str(len(every)))

    page.locator("#filter-line").select_option("line2")
    line2 = [a for a in every if a["line"] == "line2"]
    expect(page.locator("#incident-list")).to_have_attribute("data-count", str(len(line2)))
    expect(page.locator(f"article.incident[data-alarm-id='{alarm['id']}']")).to_have_count(0)
    assert "line=line2" in page.url

    page.locator("#filter-line").select_option("line1")
    page.locator("#filter-severity").select_option(alarm["severity"])
    same = [a for a in every if a["line"] == "line1" and a["severity"] == alarm["severity"]]
    expect(page.locator("#incident-list")).to_have_attribute("data-count", str(len(same)))
    expect(page.locator(f"article.incident[data-alarm-id='{alarm['id']}']")).to_have_count(1)
    assert console.unexpected() == []
