"""`spcmon opcua browse` against a real asyncua server (the line simulator)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.opcua_browse import BrowseError, browse
from simulators.opcua_server import OpcuaLineSimulator
from simulators.scenario import Scenario
from tests.support.mosquitto import free_port

pytestmark = pytest.mark.anyio


async def test_browsing_lists_the_characteristic_nodes_with_ids_types_and_values(
    demo_config_path: Path,
) -> None:
    simulator = OpcuaLineSimulator(
        demo_config_path, free_port(), Scenario("in-control", seed=1), takt_s=None
    )
    async with simulator:
        await simulator.publish_part({"line1.turning.diameter": 25.031})
        nodes, cut = await browse(simulator.endpoint, max_depth=6)
    assert not cut
    by_id = {n.node_id: n for n in nodes}
    diameter = by_id["ns=2;s=Demo/line1/turning/diameter"]
    assert diameter.node_class == "Variable"
    assert diameter.data_type == "Double"
    assert diameter.value == "25.031"
    assert nodes[0].node_id == "i=85"  # the Objects folder, the start
    assert diameter.depth > nodes[0].depth


async def test_an_unreachable_server_is_one_clear_error() -> None:
    with pytest.raises(BrowseError, match=r"cannot reach opc\.tcp://127\.0\.0\.1:"):
        await browse(f"opc.tcp://127.0.0.1:{free_port()}/none", timeout_s=2)


async def test_a_start_that_is_not_a_node_id_is_named() -> None:
    with pytest.raises(BrowseError, match="start node 'line1' is not a node id"):
        await browse("opc.tcp://127.0.0.1:1/none", start="line1")
