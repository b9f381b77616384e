"""A fake machining line as an OPC UA server (asyncua), one Double variable per characteristic.

Address space: ``Objects/Demo/<line>/<process>/<variable>``. The namespace
``urn:spcmon:simulator`` is registered first so it gets index 2, and each variable's NodeId
is exactly the ``source.opcua.node_id`` of the plant configuration (for example
``ns=2;s=Demo/line1/turning/diameter``). Every takt the next part's values are written with
a UTC SourceTimestamp and StatusCode Good, so subscribed clients see one data change per
characteristic per part; a scenario's bad-quality values go out as BadSensorFailure and its
lost values are not written at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

from asyncua import ua
from asyncua.common.node import Node
from asyncua.server.server import Server
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.status_codes import StatusCodes
from asyncua.ua.uaerrors import UaStringParsingError

from simulators.plant import SimCharacteristic, load_plant
from simulators.scenario import Scenario, ValueGenerator

_log = logging.getLogger(__name__)

NAMESPACE_URI = "urn:spcmon:simulator"
ENDPOINT_PATH = "/spcmon/sim"
ROOT_FOLDER = "Demo"
_UNECE_UNITS_URI = "http://www.opcfoundation.org/UA/units/un/cefact"
_UNECE_CODES = {"mm": "MMT", "um": "4H", "µm": "4H", "m": "MTR", "s": "SEC", "N": "NEW"}


class OpcuaLineSimulator:
    """Serve the plant's OPC UA characteristics and write one part every `takt_s` seconds.

    Use as ``async with OpcuaLineSimulator(...) as sim:``; entering starts the server and the
    publishing task, leaving stops both. With ``takt_s=None`` nothing is published
    automatically and callers drive the line with `publish_part`.
    """

    def __init__(
        self,
        config_path: Path | str,
        port: int,
        scenario: Scenario,
        takt_s: float | None = 0.2,
        *,
        host: str = "127.0.0.1",
        ground_truth_path: Path | str | None = None,
    ) -> None:
        if takt_s is not None and takt_s <= 0:
            raise ValueError(f"takt_s must be > 0 (or None to publish manually), got {takt_s}")
        plant = load_plant(config_path)
        self.characteristics = plant.opcua_characteristics()
        if not self.characteristics:
            raise ValueError(f"{config_path}: no characteristic has an opcua source")
        self.plant_id = plant.plant_id
        self.generator = ValueGenerator(scenario, self.characteristics)
        self.takt_s = takt_s
        self._host = host
        self._port = port
        self._truth_path = Path(ground_truth_path) if ground_truth_path is not None else None
        self._server: Server | None = None
        self._node_ids = {c.id: _configured_node_id(c) for c in self.characteristics}
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._parts_published = 0

    @property
    def endpoint(self) -> str:
        """The URL clients connect to, e.g. ``opc.tcp://127.0.0.1:4840/spcmon/sim``."""
        return f"opc.tcp://{self._host}:{self._port}{ENDPOINT_PATH}"

    @property
    def parts_published(self) -> int:
        """How many parts have been written to the address space."""
        return self._parts_published

    async def __aenter__(self) -> Self:
        server = await _make_server(self.endpoint)
        try:
            await _build_address_space(server, self.characteristics, self._node_ids)
            await server.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await server.stop()
            raise
        self._server = server
        self._write_truth()
        if self.takt_s is not None:
            self._task = asyncio.create_task(self._publish_every_takt(self.takt_s))
        _log.debug("OPC UA simulator listening at %s", self.endpoint)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._server is not None:
            await self._server.stop()
            self._server = None
        self._write_truth()

    async def publish_part(self, values: Mapping[str, float] | None = None) -> dict[str, float]:
        """Write the next part now and return its values by characteristic id.

        `values` forces exact values for some or all characteristics (the rest are drawn
        from the scenario as usual). Values the scenario marks lost are not written; bad
        ones are written with StatusCode Bad. Raises RuntimeError outside ``async with``.
        """
        async with self._lock:
            fault_known = self.generator.fault_started_at is not None
            readings = self.generator.next_readings(datetime.now(UTC), values)
            await self._write(readings.delivered(), readings.at, readings.bad)
        if not fault_known and self.generator.fault_started_at is not None:
            self._write_truth()
        return readings.values

    async def write_values(
        self, values: Mapping[str, float], at: datetime, bad: Collection[str] = ()
    ) -> None:
        """Write values measured elsewhere (a whole simulated plant), those served only.

        Ids in `bad` are written with StatusCode Bad; every value gets `at` as its
        SourceTimestamp. Raises RuntimeError outside the ``async with`` block.
        """
        async with self._lock:
            await self._write(values, at, bad)

    async def _write(self, values: Mapping[str, float], at: datetime, bad: Collection[str]) -> None:
        if self._server is None:
            raise RuntimeError("the OPC UA simulator is not running: use `async with`")
        for char_id, value in values.items():
            node_id = self._node_ids.get(char_id)
            if node_id is not None:
                data_value = _data_value(value, at, char_id in bad)
                await self._server.write_attribute_value(node_id, data_value)
        self._parts_published += 1

    async def _publish_every_takt(self, takt_s: float) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            due += takt_s
            await asyncio.sleep(max(0.0, due - loop.time()))
            try:
                await self.publish_part()
            except Exception:
                _log.exception("could not publish part %d", self.generator.parts_generated)

    def _write_truth(self) -> None:
        if self._truth_path is not None:
            self.generator.write_ground_truth(self._truth_path)


def _data_value(value: float, at: datetime, bad: bool = False) -> ua.DataValue:
    # BadSensorFailure: what a PLC reports for a channel it cannot read properly
    status = StatusCodes.BadSensorFailure if bad else StatusCodes.Good
    return ua.DataValue(
        Value=ua.Variant(value, ua.VariantType.Double),
        StatusCode=ua.StatusCode(ua.UInt32(status)),
        # asyncua annotates timestamps with its DateTime marker class; it encodes any aware
        # datetime, which is what we pass.
        SourceTimestamp=at,  # type: ignore[arg-type]
        ServerTimestamp=at,  # type: ignore[arg-type]
    )


async def _make_server(endpoint: str) -> Server:
    server = Server()
    await server.init()
    server.set_endpoint(endpoint)
    server.set_server_name("spcmon line simulator")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    server.set_identity_tokens([ua.AnonymousIdentityToken])
    await server.set_application_uri(f"{NAMESPACE_URI}:server")
    index = await server.register_namespace(NAMESPACE_URI)
    if index != 2:
        raise RuntimeError(f"namespace {NAMESPACE_URI} got index {index}, expected 2")
    return server


async def _build_address_space(
    server: Server,
    characteristics: tuple[SimCharacteristic, ...],
    node_ids: Mapping[str, ua.NodeId],
) -> None:
    """Create the folders, and one variable per characteristic with its configured NodeId."""
    root = await server.nodes.objects.add_folder(_string_id(ROOT_FOLDER), ROOT_FOLDER)
    folders: dict[str, Node] = {}
    for char in characteristics:
        node_id = node_ids[char.id]
        folder = await _process_folder(root, folders, char)
        name = char.id.rsplit(".", 1)[-1]
        variable = await folder.add_variable(
            node_id, ua.QualifiedName(name, 2), char.nominal, ua.VariantType.Double
        )
        await _add_engineering_info(variable, char)


async def _process_folder(root: Node, folders: dict[str, Node], char: SimCharacteristic) -> Node:
    line_path = f"{ROOT_FOLDER}/{char.line}"
    if line_path not in folders:
        folders[line_path] = await root.add_folder(_string_id(line_path), char.line)
    process_path = f"{line_path}/{char.process}"
    if process_path not in folders:
        line = folders[line_path]
        folders[process_path] = await line.add_folder(_string_id(process_path), char.process)
    return folders[process_path]


async def _add_engineering_info(variable: Node, char: SimCharacteristic) -> None:
    """Add the EngineeringUnits and EURange properties (Part 8 AnalogItem conventions)."""
    if char.unit is not None:
        units = ua.EUInformation(
            NamespaceUri=_UNECE_UNITS_URI,
            UnitId=_unece_unit_id(char.unit),
            DisplayName=ua.LocalizedText(char.unit),
            Description=ua.LocalizedText(char.unit),
        )
        await _add_standard_property(variable, "EngineeringUnits", units, ObjectIds.EUInformation)
    low = char.lsl if char.lsl is not None else char.nominal - 6 * char.sigma
    high = char.usl if char.usl is not None else char.nominal + 6 * char.sigma
    await _add_standard_property(variable, "EURange", ua.Range(Low=low, High=high), ObjectIds.Range)


async def _add_standard_property(variable: Node, name: str, value: object, datatype: int) -> None:
    # Standard property names live in namespace 0, so clients find them as "0:EURange";
    # numeric identifier 0 in ns=2 lets the server assign a fresh NodeId.
    node_id = ua.NodeId(ua.Int32(0), ua.Int16(2))
    await variable.add_property(node_id, ua.QualifiedName(name, 0), value, datatype=datatype)


def _unece_unit_id(unit: str) -> int:
    """UnitId per OPC UA Part 8: the UN/CEFACT common code packed into bytes; -1 if unknown."""
    code = _UNECE_CODES.get(unit)
    if code is None:
        return -1
    unit_id = 0
    for char in code:
        unit_id = (unit_id << 8) | ord(char)
    return unit_id


def _configured_node_id(char: SimCharacteristic) -> ua.NodeId:
    assert char.opcua_node_id is not None
    try:
        node_id = ua.NodeId.from_string(char.opcua_node_id)
    except UaStringParsingError as exc:
        raise ValueError(f"characteristic {char.id!r}: bad node_id {char.opcua_node_id!r}") from exc
    if node_id.NamespaceIndex != 2:
        raise ValueError(
            f"characteristic {char.id!r}: node_id {char.opcua_node_id!r} must be in ns=2 "
            f"({NAMESPACE_URI}), the simulator's only namespace"
        )
    return node_id


def _string_id(path: str) -> ua.NodeId:
    return ua.NodeId(ua.String(path), ua.Int16(2), ua.NodeIdType.String)
