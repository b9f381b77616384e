"""The simulated plant's outputs: each hands the parts to one protocol, as plant equipment does.

- `OpcuaSink`: the line's PLC tags on the simulator's OPC UA server;
- `CameraSink`: the vision stations' results over MQTT (JSON, and Sparkplug B if set up);
- `MesSink`: the MES, pushing verdicts, cost events and (some) measurements over HTTP.

What the MES pushes is a choice, since the service would count a value or a verdict twice
if it came through two doors: ``unsourced`` (default) pushes the measurements of the
characteristics the plant file gives no OPC UA or MQTT source and the verdicts of the
stations without an MQTT inspection topic; ``all`` pushes every value and verdict (runs
without a broker or OPC UA server); ``costs`` pushes cost events only. Cost events
(scrap, rework, output value) always go through the MES.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Literal

from simulators.mes_pusher import MesPusher, PusherConfigError
from simulators.opcua_server import OpcuaLineSimulator
from simulators.plant import SimPlant
from simulators.plant_run import OutputRefused
from simulators.production import CostEvent, PartRun, Production
from simulators.vision_camera import VisionCamera

MesData = Literal["unsourced", "all", "costs"]


class OpcuaSink:
    """Writes each part's served values to a running `OpcuaLineSimulator`."""

    name = "OPC UA server"

    def __init__(self, server: OpcuaLineSimulator) -> None:
        self.server = server

    async def send(self, run: PartRun) -> None:
        """Write what the part's stations measured (bad values with a Bad status).

        A station the part never reached (scrapped before) measured nothing: its tags
        keep their last values, as a lost value's tag does.
        """
        values = {k: v for station in run.stations for k, v in station.values.items()}
        bad = frozenset(k for station in run.stations for k in station.bad)
        await self.server.write_values(values, run.at, bad)

    async def finish(self, production: Production, at: datetime) -> None:
        """Nothing is buffered: tags hold the last part's values."""


class CameraSink:
    """Publishes the vision stations' results through a started `VisionCamera`."""

    name = "vision camera"

    def __init__(self, camera: VisionCamera) -> None:
        self.camera = camera

    async def send(self, run: PartRun) -> None:
        """Publish the part's results at the camera's stations (paho queues, never blocks)."""
        self.camera.publish_results(run.stations)

    async def finish(self, production: Production, at: datetime) -> None:
        """Wait (up to 10 s) until the broker has acknowledged every result."""
        await asyncio.to_thread(self.camera.wait_published, 10.0)


class MesSink:
    """Feeds a `MesPusher`: every cost event, and the verdicts and measurements chosen."""

    name = "MES pusher"

    def __init__(self, pusher: MesPusher, plant: SimPlant, data: MesData = "unsourced") -> None:
        self.pusher = pusher
        chars = plant.characteristics
        stations = {f"{c.line}.{c.process}" for c in chars}
        if data == "all":
            self._pushed = frozenset(c.id for c in chars)
            self._judged = frozenset(stations)
        elif data == "unsourced":
            alone = (c for c in chars if c.opcua_node_id is None and c.mqtt_topic is None)
            self._pushed = frozenset(c.id for c in alone)
            self._judged = frozenset(stations - {i.station for i in plant.inspections})
        else:
            self._pushed = self._judged = frozenset()

    async def send(self, run: PartRun) -> None:
        """Buffer the part's rows; a full batch is posted (off the event loop)."""
        try:
            await asyncio.to_thread(self._add, run)
        except PusherConfigError as exc:
            raise OutputRefused(str(exc)) from exc

    async def finish(self, production: Production, at: datetime) -> None:
        """Push the output value accrued since the last report, then everything buffered."""
        costs = production.flush_costs(at)
        try:
            await asyncio.to_thread(self._finish, costs)
        except PusherConfigError as exc:
            raise OutputRefused(str(exc)) from exc

    def _add(self, run: PartRun) -> None:
        pusher = self.pusher
        for station in run.stations:
            for char_id, value in station.values.items():
                if char_id in self._pushed:
                    quality = "bad" if char_id in station.bad else "good"
                    pusher.add_measurement(
                        char_id, value, station.at, part=station.serial, quality=quality
                    )
            verdicts = station.inspections if station.station in self._judged else ()
            for inspection in verdicts:
                pusher.add_verdict(
                    station.station,
                    station.serial,
                    inspection.ok,
                    station.at,
                    first_pass=inspection.first_pass,
                    defects=inspection.defects,
                )
        self._add_costs(run.costs)

    def _add_costs(self, costs: tuple[CostEvent, ...] | list[CostEvent]) -> None:
        for c in costs:
            self.pusher.add_cost_event(
                c.scope, c.category, c.amount, c.at, currency=c.currency, note=c.note
            )

    def _finish(self, costs: list[CostEvent]) -> None:
        self._add_costs(costs)
        self.pusher.flush()
