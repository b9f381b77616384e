"""The OPC UA line simulator, read and subscribed to by a real asyncua client."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest
from asyncua import ua
from asyncua.client.client import Client

from simulators.opcua_server import NAMESPACE_URI, OpcuaLineSimulator
from simulators.plant import load_plant
from simulators.scenario import Scenario
from tests.support.mosquitto import free_port

pytestmark = pytest.mark.anyio


def _client(endpoint: str) -> Client:
    client = Client(endpoint, timeout=5)
    client.session_timeout = 60_000
    return client


async def test_client_reads_exactly_the_values_published_at_the_configured_node_ids(
    demo_config_path: Path,
) -> None:
    node_ids = {
        c.id: str(c.opcua_node_id) for c in load_plant(demo_config_path).opcua_characteristics()
    }
    forced = {"line1.turning.diameter": 25.031, "line1.grinding.roughness": 0.95}
    simulator = OpcuaLineSimulator(
        demo_config_path, free_port(), Scenario("in-control", seed=1), takt_s=None
    )

    async with simulator, _client(simulator.endpoint) as client:
        assert simulator.endpoint.endswith("/spcmon/sim")
        assert (await client.get_namespace_array()).index(NAMESPACE_URI) == 2
        part = await simulator.publish_part(forced)
        values = {
            char_id: await client.get_node(node_id).read_data_value()
            for char_id, node_id in node_ids.items()
        }
        diameter = client.get_node("ns=2;s=Demo/line1/turning/diameter")
        eu_range = await (await diameter.get_child("0:EURange")).read_value()

    assert eu_range == ua.Range(Low=24.95, High=25.05)
    assert simulator.parts_published == 1
    assert part["line1.turning.diameter"] == 25.031
    assert part["line1.grinding.roughness"] == 0.95
    assert set(values) == set(part) == set(node_ids)
    for char_id, data_value in values.items():
        assert data_value.Value is not None
        assert data_value.Value.Value == part[char_id]
        assert data_value.Value.VariantType == ua.VariantType.Double
        assert data_value.StatusCode is not None
        assert data_value.StatusCode.is_good()
        assert data_value.SourceTimestamp is not None
        assert datetime.now(UTC) - data_value.SourceTimestamp < timedelta(seconds=10)


class _Changes:
    def __init__(self) -> None:
        self.values: list[float] = []

    def datachange_notification(self, node: object, val: float, data: object) -> None:
        self.values.append(val)


async def test_subscription_sees_a_new_value_every_takt(demo_config_path: Path) -> None:
    simulator = OpcuaLineSimulator(
        demo_config_path, free_port(), Scenario("in-control", seed=2), takt_s=0.05
    )
    changes = _Changes()

    async with simulator, _client(simulator.endpoint) as client:
        subscription = await client.create_subscription(20, changes)
        await subscription.subscribe_data_change(
            client.get_node("ns=2;s=Demo/line1/turning/length")
        )
        with anyio.fail_after(5):
            while len(set(changes.values)) < 4:
                await anyio.sleep(0.05)
        await subscription.delete()

    assert simulator.parts_published >= 3
    assert all(119.8 < value < 120.2 for value in changes.values)


async def test_publishing_outside_the_context_is_an_error(demo_config_path: Path) -> None:
    simulator = OpcuaLineSimulator(demo_config_path, free_port(), Scenario("in-control", seed=1))

    with pytest.raises(RuntimeError, match="not running"):
        await simulator.publish_part()
