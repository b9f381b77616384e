"""Early-warning notifications: a line gone quiet is one notification, not one per
characteristic; links open the dashboard's page of the characteristic."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest

from alerts.early_warnings import EarlyWarning
from alerts.notify import Dispatcher, Notification
from app.notifications import Notifications

pytestmark = pytest.mark.anyio
AT = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
PLACES = {
    "line1.turning.diameter": ("line1", "line1.turning"),
    "line1.turning.length": ("line1", "line1.turning"),
    "line1.grinding.roughness": ("line1", "line1.grinding"),
    "line2.vision.gap": ("line2", "line2.vision"),
}


class Inbox:
    """A notifier that keeps what it is sent (the channels have their own tests)."""

    name = "inbox"
    min_severity = "info"

    def __init__(self) -> None:
        self.got: list[Notification] = []

    async def send(self, n: Notification) -> None:
        self.got.append(n)

    async def aclose(self) -> None:
        return None


def _quiet(char: str, cleared: bool = False) -> EarlyWarning:
    return EarlyWarning("quiet_source", char, "warning", AT, "No data for 2 min", cleared=cleared)


async def test_a_quiet_line_is_one_notification_and_other_warnings_stay_single(
    tmp_path: Path,
) -> None:
    inbox = Inbox()
    dispatcher = Dispatcher([inbox], tmp_path / "dead.jsonl")
    await dispatcher.start()
    notifications = Notifications(dispatcher, "http://spc.plant/")
    drift = EarlyWarning("drift", "line1.turning.diameter", "critical", AT, "USL in ~20 parts")
    found = [_quiet(c) for c in PLACES if c.startswith("line1")] + [
        _quiet("line2.vision.gap"),
        drift,
    ]

    notifications.warnings(found, PLACES.__getitem__)

    with anyio.fail_after(5):
        while len(inbox.got) < 3:
            await anyio.sleep(0.01)
    await dispatcher.aclose(timeout_s=2.0)
    by_title = {n.title: n for n in inbox.got}
    assert set(by_title) == {
        "line1: 3 characteristics quiet source",
        "line2.vision.gap: quiet source",
        "line1.turning.diameter: drift",
    }
    line1 = by_title["line1: 3 characteristics quiet source"]
    assert line1.characteristics == tuple(sorted(c for c in PLACES if c.startswith("line1")))
    assert line1.line == "line1"
    assert line1.data["count"] == 3
    assert "Characteristics: line1.grinding.roughness, line1.turning.diameter" in line1.text
    single = by_title["line2.vision.gap: quiet source"]
    assert (single.process, single.url) == ("line2.vision", "http://spc.plant/#/c/line2.vision.gap")
    assert by_title["line1.turning.diameter: drift"].severity == "critical"
