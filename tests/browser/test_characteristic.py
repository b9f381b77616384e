"""The characteristic view: the control chart of its chart type with its limits, the
capability report, and a shift that shows up live (event stream, no reload)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import OpenPage
from tests.browser.plant import Plant

DIAMETER = "line1.turning.diameter"  # I-MR
LENGTH = "line1.turning.length"  # X-bar R, subgroups of 5

# how many pixels of a canvas were painted (uPlot draws on a transparent canvas)
PAINTED = """(selector) => {
  const canvas = document.querySelector(selector);
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let n = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n++;
  return n;
}"""


def _shown(page: Page, selector: str) -> float:
    return float(page.locator(selector).inner_text())


def _violations(chart: dict[str, Any]) -> int:
    return sum(len(p["violations"]) for p in chart["points"])


@pytest.mark.parametrize(
    ("characteristic", "title", "shot"),
    [
        (DIAMETER, "Individuals (I)", "chart-imr"),
        (LENGTH, "Subgroup means (X̄, n = 5)", "chart-xbar-r"),
    ],
)
def test_a_chart_view_draws_the_points_and_shows_the_limits_in_force(
    plant: Plant,
    open_page: OpenPage,
    screenshot: Callable[[Page, str], None],
    characteristic: str,
    title: str,
    shot: str,
) -> None:
    status = plant.call("GET", f"/api/v1/characteristics/{characteristic}/status")
    chart = plant.call("GET", f"/api/v1/characteristics/{characteristic}/chart")
    report = plant.call("GET", f"/api/v1/characteristics/{characteristic}/capability")
    page, console = open_page(plant)
    page.goto(f"{plant.url}/#/c/{characteristic}")

    location = page.locator("#chart-location")
    expect(location).to_have_attribute("data-points", str(len(chart["points"])))
    expect(location.locator(".u-title")).to_have_text(title)
    expect(page.locator("#chart-dispersion canvas")).to_have_count(1)
    expect(page.locator("#chart-ewma canvas")).to_have_count(1)
    expect(page.locator("#chart-cusum canvas")).to_have_count(1)
    assert page.evaluate(PAINTED, "#chart-location canvas") > 2_000

    limits = status["limits"]
    expect(page.locator("#lim-version")).to_have_text(f"limits v{limits['version']}")
    assert _shown(page, "#lim-ucl") == pytest.approx(limits["ucl"], rel=1e-5)
    assert _shown(page, "#lim-center") == pytest.approx(limits["center"], rel=1e-5)
    assert _shown(page, "#lim-lcl") == pytest.approx(limits["lcl"], rel=1e-5)
    assert _shown(page, "#lim-plus1") == pytest.approx(limits["center"] + limits["sigma"], rel=1e-5)
    assert _shown(page, "#lim-d-ucl") == pytest.approx(limits["mr_ucl"], rel=1e-5)
    expect(page.locator("#violations")).to_have_attribute("data-count", str(_violations(chart)))

    indices = report["indices"]
    expect(page.locator("#cap-cpk")).to_have_text(f"{indices['cpk']:.2f}")
    expect(page.locator("#cap-cp")).to_have_text(f"{indices['cp']:.2f}")
    expect(page.locator("#cap-ppk")).to_have_text(f"{indices['ppk']:.2f}")
    expect(page.locator("#chart-histogram")).to_have_attribute(
        "data-bins", str(len(report["histogram"]["counts"]))
    )
    assert page.evaluate(PAINTED, "#chart-histogram canvas") > 2_000
    normal = "true" if indices["normality_p"] >= 0.05 else "false"
    expect(page.locator("#cap-normality")).to_have_attribute("data-normal", normal)

    screenshot(page, shot)
    assert console.unexpected() == []


def test_a_shift_shows_its_violation_and_incident_live_without_a_reload(
    plant: Plant, open_page: OpenPage, screenshot: Callable[[Page, str], None]
) -> None:
    plant.resolve_all()  # a new problem then opens a new incident
    limits = plant.call("GET", f"/api/v1/characteristics/{DIAMETER}/status")["limits"]
    before = plant.call("GET", f"/api/v1/characteristics/{DIAMETER}/chart")
    page, console = open_page(plant)
    page.goto(f"{plant.url}/#/c/{DIAMETER}")
    location = page.locator("#chart-location")
    expect(location).to_have_attribute("data-points", str(len(before["points"])))
    expect(page.locator("#live")).to_have_attribute("data-mode", "stream")
    expect(page.locator("#char-incidents article[data-state='open']")).to_have_count(0)
    page.evaluate("window.__notReloaded = true")

    # 4 sigma above the centre line, each value distinct (4 decimals, as a gauge sends)
    shifted = [round(limits["center"] + 4 * limits["sigma"] + 0.0001 * i, 4) for i in range(6)]
    plant.push(DIAMETER, shifted)

    total = len(before["points"]) + len(shifted)
    expect(location).to_have_attribute("data-points", str(total))
    newest_rule_1 = page.locator("#violations tr[data-rule='1'][data-chart='location']").first
    expect(newest_rule_1.locator("td.value")).to_have_text(f"{shifted[-1]:.6g}")
    incident = page.locator(
        f"#char-incidents article[data-state='open'][data-characteristics~='{DIAMETER}']"
    )
    expect(incident).to_have_count(1)
    expect(page.locator("#char-state")).to_have_attribute("data-state", "alarm")
    assert page.evaluate("window.__notReloaded") is True

    opened = plant.call("GET", "/api/v1/alarms", params={"characteristic": DIAMETER})
    assert [str(a["id"]) for a in opened] == [incident.get_attribute("data-alarm-id")]
    assert opened[0]["rule"] == "cusum"
    screenshot(page, "live-shift")
    assert console.unexpected() == []
