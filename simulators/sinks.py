"""The simulated plant's outputs: each hands the parts to one protocol, as plant equipment does.

- `OpcuaSink`: the line's PLC tags on the simulator's OPC UA server;
- `MesSink`: the MES, pushing verdicts, cost events and (some) measurements over HTTP.

Which measurements the MES pushes is a choice, since the service would store a value twice
if it came through two doors: ``unsourced`` (default) pushes only the characteristics the
plant file gives no OPC UA or MQTT source, ``all`` pushes every value (benchmarks that run
without a broker or OPC UA server), ``none`` pushes verdicts and costs only.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Literal

from simulators.mes_pusher import MesPusher
from simulators.opcua_server import OpcuaLineSimulator
from simulators.plant import SimPlant
from simulators.production import CostEvent, PartRun, Production

MesMeasurements = Literal["unsourced", "all", "none"]


class OpcuaSink:
    """Writes each part's served values to a running `OpcuaLineSimulator`."""

    name = "OPC UA server"

    def __init__(self, server: OpcuaLineSimulator) -> None:
        self.server = server

    async def send(self, run: PartRun) -> None:
        """Write the part's values (lost ones skipped, bad ones with a Bad status)."""
        await self.server.write_readings(run.readings)

    async def finish(self, production: Production, at: datetime) -> None:
        """Nothing is buffered: tags hold the last part's values."""


class MesSink:
    """Feeds a `MesPusher`: every verdict and cost event, and the chosen measurements."""

    name = "MES pusher"

    def __init__(
        self, pusher: MesPusher, plant: SimPlant, measurements: MesMeasurements = "unsourced"
    ) -> None:
        self.pusher = pusher
        if measurements == "all":
            self._pushed = frozenset(c.id for c in plant.characteristics)
        elif measurements == "unsourced":
            self._pushed = frozenset(
                c.id
                for c in plant.characteristics
                if c.opcua_node_id is None and c.mqtt_topic is None
            )
        else:
            self._pushed = frozenset()

    async def send(self, run: PartRun) -> None:
        """Buffer the part's rows; a full batch is posted (off the event loop)."""
        await asyncio.to_thread(self._add, run)

    async def finish(self, production: Production, at: datetime) -> None:
        """Push the output value accrued since the last report, then everything buffered."""
        costs = production.flush_costs(at)
        await asyncio.to_thread(self._finish, costs)

    def _add(self, run: PartRun) -> None:
        pusher = self.pusher
        for station in run.stations:
            for char_id, value in station.values.items():
                if char_id in self._pushed:
                    quality = "bad" if char_id in station.bad else "good"
                    pusher.add_measurement(
                        char_id, value, station.at, part=station.serial, quality=quality
                    )
            for inspection in station.inspections:
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
        for cost in costs:
            self.pusher.add_cost_event(
                cost.scope, cost.category, cost.amount, cost.at, note=cost.note
            )

    def _finish(self, costs: list[CostEvent]) -> None:
        self._add_costs(costs)
        self.pusher.flush()
