"""Run the simulated plant: make a part every takt and hand it to every output (sink).

Two paces:

- **live** (default): a part every ``takt_s / speed`` wall-clock seconds, stamped with the
  real time, so ``speed=10`` is a line ten times faster, seen by the service as it is;
- **fast** (benchmarks): ``parts`` parts as fast as the outputs take them, stamped with a
  simulated clock that advances one takt per part and ends at the moment the run starts
  (the service refuses measurements from the future).

Sinks are the protocols (OPC UA server, MQTT camera, MES pusher); a sink that fails on a
part is logged and the line goes on, as a real line would, unless the failure is an
`OutputRefused` (a wrong key or URL: nothing would ever get through), which stops the run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from simulators.production import PartRun, Production

_log = logging.getLogger(__name__)


class OutputRefused(RuntimeError):
    """An output that cannot work as configured (e.g. the service refuses the key)."""


class PartSink(Protocol):
    """An output of the simulated plant."""

    name: str

    async def send(self, run: PartRun) -> None:
        """Deliver one part (every line's stations) to this output."""

    async def finish(self, production: Production, at: datetime) -> None:
        """Deliver what is still buffered (e.g. the last output value); called once."""


@dataclass(frozen=True)
class Pace:
    """How fast parts are made; see the module docstring."""

    takt_s: float = 1.0
    speed: float = 1.0
    fast: bool = False
    parts: int | None = None

    def __post_init__(self) -> None:
        if not self.takt_s > 0:
            raise ValueError(f"takt must be > 0 s, got {self.takt_s}")
        if not self.speed > 0:
            raise ValueError(f"speed must be > 0, got {self.speed}")
        if self.parts is not None and self.parts < 1:
            raise ValueError(f"parts must be >= 1, got {self.parts}")
        if self.fast and self.parts is None:
            raise ValueError("the fast pace needs a number of parts: it stamps them backwards")

    @property
    def interval_s(self) -> float:
        """Wall-clock seconds between two parts in the live pace (the effective takt)."""
        return self.takt_s / self.speed


async def run_plant(
    production: Production,
    sinks: Sequence[PartSink],
    pace: Pace,
    stop: asyncio.Event | None = None,
    on_part: Callable[[PartRun], None] | None = None,
) -> int:
    """Make parts until `pace.parts` are made or `stop` is set; return how many were made."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    first_due = loop.time()
    now = datetime.now(UTC)
    step = timedelta(seconds=pace.takt_s if pace.fast else pace.interval_s)
    start = now - step * (pace.parts or 0) if pace.fast else now
    made = 0
    while not stop.is_set() and (pace.parts is None or made < pace.parts):
        if pace.fast:
            at = start + step * made
        else:
            delay = first_due + made * pace.interval_s - loop.time()
            if delay > 0:
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                    break
                except TimeoutError:
                    pass
            at = datetime.now(UTC)
        run = production.next_part(at)
        for sink in sinks:
            try:
                await sink.send(run)
            except OutputRefused:
                raise
            except Exception:
                _log.exception("%s could not take part %d", sink.name, run.index)
        if on_part is not None:
            on_part(run)
        made += 1
    end = start + step * made if pace.fast else datetime.now(UTC)
    for sink in sinks:
        try:
            await sink.finish(production, end)
        except OutputRefused:
            raise
        except Exception:
            _log.exception("%s could not finish", sink.name)
    return made
