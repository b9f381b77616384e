"""The live event stream: the bus on its own, then real SSE over a real HTTP port."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import pytest
import uvicorn
from fastapi import FastAPI

from app import Settings, create_app
from app.api.routes.stream import _frames
from app.auth import Role
from app.events import Event, EventBus, EventFilter, Overflowed
from app.local_broker import free_port
from app.wiring import Service
from tests.support.api import key_headers

pytestmark = pytest.mark.anyio
DIAMETER = "line1.turning.diameter"
GAP = "line2.vision.gap"
T0 = datetime(2025, 3, 14, 8, 0, tzinfo=UTC)


def _publish(bus: EventBus, value: float, char: str = DIAMETER, line: str = "line1") -> Event:
    return bus.publish("point", {"value": value}, characteristic=char, line=line, process="turning")


# -- the bus ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_filter", "expected"),
    [
        (EventFilter(), True),
        (EventFilter(lines=frozenset({"line1", "line2"})), True),
        (EventFilter(lines=frozenset({"line2"})), False),
        (EventFilter(processes=frozenset({"turning"})), True),
        (EventFilter(lines=frozenset({"line1"}), characteristics=frozenset({GAP})), False),
        (EventFilter(characteristics=frozenset({DIAMETER})), True),
    ],
)
def test_a_filter_matches_any_listed_value_and_all_given_parameters(
    event_filter: EventFilter, expected: bool
) -> None:
    event = Event(1, "point", DIAMETER, "line1", "turning", {})
    assert event_filter.matches(event) is expected


async def test_events_are_numbered_and_reach_matching_subscribers_only() -> None:
    bus = EventBus()
    line1 = bus.subscribe(EventFilter(lines=frozenset({"line1"})))
    line2 = bus.subscribe(EventFilter(lines=frozenset({"line2"})))

    first, second = _publish(bus, 1.0), _publish(bus, 2.0)

    assert (first.id, second.id) == (1, 2)
    assert [await anext(line1), await anext(line1)] == [first, second]
    assert line2.pending == 0
    assert first.data == {"characteristic": DIAMETER, "line": "line1", "process": "turning",
                          "value": 1.0}  # fmt: skip


async def test_a_subscriber_that_falls_behind_is_dropped_without_blocking_the_publisher() -> None:
    bus = EventBus(queue_size=3)
    slow = bus.subscribe()
    keeping_up = bus.subscribe()

    for i in range(5):  # returns at once: nobody reads the slow queue
        _publish(bus, float(i))
        assert (await anext(keeping_up)).data["value"] == float(i)

    assert bus.subscriber_count == 1
    assert bus.dropped == 1
    assert slow.pending == 0  # its memory is freed at once
    with pytest.raises(Overflowed):
        await anext(slow)


async def test_an_overflowed_stream_ends_with_an_overflow_event() -> None:
    bus = EventBus(queue_size=2)
    subscription = bus.subscribe()
    for i in range(3):
        _publish(bus, float(i))

    frames = [frame.encode().decode() async for frame in _frames(bus, subscription)]

    assert frames[0].startswith("retry: ")
    assert len(frames) == 2
    assert "event: overflow" in frames[1]
    assert "reconnect" in frames[1]


async def test_a_reconnect_replays_the_buffered_events_after_its_last_id() -> None:
    bus = EventBus(replay_size=3)
    for i in range(5):
        _publish(bus, float(i))

    replayed = bus.subscribe(last_event_id=f"{bus.epoch}-3")
    too_old = bus.subscribe(last_event_id=f"{bus.epoch}-1")
    from_before_a_restart = bus.subscribe(last_event_id=f"{EventBus().epoch}-3")

    assert [(await anext(replayed)).id for _ in range(replayed.pending)] == [4, 5]
    assert not replayed.missed
    assert too_old.missed
    assert too_old.pending == 0
    assert from_before_a_restart.missed


async def test_a_closed_subscription_ends_at_once() -> None:
    bus = EventBus()
    subscription = bus.subscribe()
    _publish(bus, 1.0)

    subscription.close()
    _publish(bus, 2.0)

    assert [e async for e in subscription] == []


# -- over HTTP -------------------------------------------------------------------------


@dataclass
class Running:
    client: httpx.AsyncClient
    app: FastAPI
    settings: Settings
    server: uvicorn.Server

    @property
    def service(self) -> Service:
        service: Service = self.app.state.service
        return service


@pytest.fixture
async def running(settings: Settings, anyio_backend: str) -> AsyncIterator[Running]:
    """The service on a real port; the client holds an admin key."""
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers=key_headers(settings), timeout=10
        ) as client:
            yield Running(client, app, settings, server)
    finally:
        server.should_exit = True
        await task


class SseReader:
    """Parses a text/event-stream response into blocks of fields (comments as ``":"``)."""

    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.aiter_lines()

    async def block(self) -> dict[str, str]:
        fields: dict[str, str] = {}
        async with asyncio.timeout(10):
            async for line in self._lines:
                if not line:
                    if fields:
                        return fields
                    continue
                name, _, value = line.partition(":")
                fields[name or ":"] = value.removeprefix(" ")
        raise AssertionError(f"the stream ended; last fields {fields}")

    async def event(self, *kinds: str) -> dict[str, Any]:
        """The next event of one of these kinds (others and comments skipped), data parsed."""
        while True:
            fields = await self.block()
            if fields.get("event") in kinds:
                return {**fields, "data": json.loads(fields["data"])}


@asynccontextmanager
async def opened_stream(
    running: Running, query: str = "", headers: dict[str, str] | None = None
) -> AsyncIterator[SseReader]:
    url = f"/api/v1/stream{query}"
    async with running.client.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = SseReader(response)
        assert "retry" in await reader.block()
        yield reader


async def _push(running: Running, char: str, values: list[float], start: int = 0) -> None:
    times = [(T0 + timedelta(seconds=start + i)).isoformat() for i in range(len(values))]
    rows = [
        {"characteristic": char, "time": t, "value": v} for t, v in zip(times, values, strict=True)
    ]
    response = await running.client.post("/api/v1/measurements", json={"measurements": rows})
    assert response.status_code == 202, response.text


def _baseline(n: int = 25) -> list[float]:
    return [round(v, 4) for v in np.random.default_rng(7).normal(25.0, 0.01, n)]


async def test_pushed_points_are_streamed_and_a_shift_brings_a_violation_and_an_alarm(
    running: Running,
) -> None:
    async with opened_stream(running, f"?characteristic={DIAMETER}") as stream:
        await _push(running, DIAMETER, _baseline())
        points = [await stream.event("point") for _ in range(25)]
        await _push(running, DIAMETER, [25.2], start=25)
        shifted = await stream.event("point")
        violation = await stream.event("violation")
        alarm = await stream.event("alarm")

    assert [p["data"]["value"] for p in points] == _baseline()
    ids = [int(p["id"].rpartition("-")[2]) for p in [*points, shifted, violation, alarm]]
    assert ids == sorted(set(ids))  # increasing: one number per event
    assert points[0]["data"] == {
        "characteristic": DIAMETER,
        "line": "line1",
        "process": "turning",
        "time": T0.isoformat(),
        "value": _baseline()[0],
        "limit_version": None,  # Phase I: no limits yet
    }
    assert (shifted["data"]["value"], shifted["data"]["limit_version"]) == (25.2, 1)
    v = violation["data"]
    assert (v["rule"], v["chart"], v["side"], v["value"], v["limit_version"]) == (
        "1", "i", "high", 25.2, 1,
    )  # fmt: skip
    a = alarm["data"]
    # the incident: opened by the CUSUM (the default pager) on the shifted point
    assert (a["rule"], a["chart"], a["state"]) == ("cusum", "cusum", "open")
    assert a["count"] >= 1
    assert (a["line"], a["process"]) == ("line1", "turning")
    assert a["last_at"] == (T0 + timedelta(seconds=25)).isoformat()
    assert isinstance(a["id"], int)


async def test_a_line_filter_leaves_out_other_lines_events(running: Running) -> None:
    async with opened_stream(running, "?line=line2") as stream:
        await _push(running, DIAMETER, [25.0, 25.01])
        await _push(running, GAP, [1.51])
        first = await stream.event("point", "violation", "alarm")

    # published after line 1's points: had those passed the filter, they would come first
    assert (first["data"]["characteristic"], first["data"]["value"]) == (GAP, 1.51)


async def test_an_idle_stream_sends_keepalive_comments(running: Running) -> None:
    running.service.events.heartbeat_s = 0.1
    async with opened_stream(running) as stream:
        assert await stream.block() == {":": "keepalive"}
        assert await stream.block() == {":": "keepalive"}


async def test_a_client_that_disconnects_is_unsubscribed(running: Running) -> None:
    bus = running.service.events
    async with opened_stream(running):
        assert bus.subscriber_count == 1
    async with asyncio.timeout(5):
        while bus.subscriber_count:
            await asyncio.sleep(0.02)


async def test_an_open_stream_ends_cleanly_when_the_service_stops(running: Running) -> None:
    async with running.client.stream("GET", "/api/v1/stream") as response:
        running.server.should_exit = True
        async with asyncio.timeout(10):
            lines = [line async for line in response.aiter_lines()]  # no protocol error

    assert lines[0] == "retry: 3000"


async def test_a_reconnect_with_last_event_id_gets_the_missed_points(running: Running) -> None:
    async with opened_stream(running) as stream:
        await _push(running, DIAMETER, [25.0])
        last_id = (await stream.event("point"))["id"]
    await _push(running, DIAMETER, [25.01, 25.02], start=1)

    async with opened_stream(running, headers={"Last-Event-ID": last_id}) as stream:
        missed = [(await stream.event("point"))["data"]["value"] for _ in range(2)]
    async with opened_stream(running, headers={"Last-Event-ID": "0-1"}) as stream:
        resync = await stream.event("resync")

    assert missed == [25.01, 25.02]
    assert "status" in resync["data"]["action"]


async def test_the_stream_needs_a_viewer_key_and_known_filter_values(running: Running) -> None:
    url = running.client.base_url.join("/api/v1/stream")
    async with httpx.AsyncClient() as anonymous:
        assert (await anonymous.get(url)).status_code == 401
        ingest_only = key_headers(running.settings, Role.INGEST)
        forbidden = await anonymous.get(url, headers=ingest_only)
    assert forbidden.status_code == 403
    assert forbidden.headers["content-type"] == "application/problem+json"

    unknown = await running.client.get("/api/v1/stream?line=line1,nope&process=turning")
    assert unknown.status_code == 422
    assert unknown.json()["detail"] == "line: no line with id 'nope'"
    assert running.service.events.subscriber_count == 0


def test_a_qualified_process_id_filters_like_the_hierarchy_names_it() -> None:
    from app.events import Event, EventFilter

    def event(line: str, process: str) -> Event:
        return Event(1, "point", "c", line, process, {})

    wanted = EventFilter(processes=frozenset({"line1.turning"}))
    assert wanted.matches(event("line1", "turning"))
    assert not wanted.matches(event("line2", "turning"))
