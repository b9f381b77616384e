"""The service under test for the browser tests: the demo plant, fed over the MES push.

The service runs in a thread of its own (uvicorn, its own event loop) so that the tests
can drive Playwright's synchronous API from the main thread. Its data are the plant
simulator's parts, pushed through the real ``POST /api/v1/measurements``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from app import Settings, create_app
from app.auth import KeyRing, Role
from simulators.mes_pusher import MesPusher
from simulators.plant import load_plant
from simulators.plant_run import Pace, run_plant
from simulators.production import Production
from simulators.scenario import Scenario
from simulators.sinks import MesSink
from tests.support.mosquitto import free_port

PARTS = 200
SEED = 11  # fixed: the same parts, limits and signals on every run
START_TIMEOUT_S = 60.0


@dataclass
class Plant:
    """A running service with the demo plant and a key per role."""

    url: str
    settings: Settings
    tokens: dict[Role, str] = field(default_factory=dict)
    names: dict[Role, str] = field(default_factory=dict)

    def token(self, role: Role) -> str:
        """A key of ``role`` (created on first use, as an administrator would)."""
        if role not in self.tokens:
            name = f"browser-{role.value}"
            _, self.tokens[role] = KeyRing(self.settings.keys_file).create(name, role)
            self.names[role] = name
        return self.tokens[role]

    def call(self, method: str, path: str, role: Role = Role.ADMIN, **kwargs: Any) -> Any:
        """One API call with a key of ``role``; the JSON answer (a non-2xx fails)."""
        headers = {"Authorization": f"Bearer {self.token(role)}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=30.0) as client:
            answer = client.request(method, path, **kwargs)
        assert answer.is_success, f"{method} {path}: {answer.status_code} {answer.text}"
        return answer.json()

    def push(self, characteristic: str, values: list[float]) -> None:
        """Live measurements of one characteristic, now, one millisecond apart."""
        now = datetime.now(UTC)
        rows = [
            {
                "characteristic": characteristic,
                "value": v,
                "time": (now + timedelta(milliseconds=i)).isoformat(),
            }
            for i, v in enumerate(values)
        ]
        answer = self.call("POST", "/api/v1/measurements", Role.INGEST, json={"measurements": rows})
        assert answer["rejected"] == [], answer

    def resolve_all(self) -> None:
        """Resolve every unresolved incident by hand, so that a new problem opens a new one."""
        for alarm in self.call("GET", "/api/v1/alarms", params={"state": "unresolved"}):
            note = {"note": "cleared before the test"}
            self.call("POST", f"/api/v1/alarms/{alarm['id']}/resolve", json=note)


@contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """The service on a free loopback port, in a thread; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="spcmon-under-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        assert thread.is_alive(), "the service stopped while starting (see its log above)"
        assert time.monotonic() < deadline, f"the service did not start in {START_TIMEOUT_S} s"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def feed(plant: Plant, config: Path, dead_letters: Path, parts: int = PARTS) -> None:
    """``parts`` parts of every line through the MES push, stamped one second apart."""
    sim = load_plant(config)
    production = Production(sim, Scenario("in-control", SEED), takt_s=1.0, run_id="browser")
    headers = {"Authorization": f"Bearer {plant.token(Role.INGEST)}"}

    async def run() -> int:
        with httpx.Client(base_url=plant.url, headers=headers, timeout=30.0) as client:
            pusher = MesPusher(client, dead_letter_path=dead_letters, flush_interval_s=None)
            try:
                pace = Pace(takt_s=1.0, fast=True, parts=parts)
                made = await run_plant(production, [MesSink(pusher, sim, "all")], pace)
                await asyncio.to_thread(pusher.flush)
            finally:
                await asyncio.to_thread(pusher.close)
        assert pusher.stats.rows_rejected == 0
        return made

    # in a thread of its own: Playwright's sync API keeps an event loop in this one
    with ThreadPoolExecutor(1, thread_name_prefix="plant-feed") as pool:
        assert pool.submit(lambda: asyncio.run(run())).result() == parts
