"""Browse an OPC UA server's address space to find the node ids to put in the plant file.

Used by ``spcmon opcua browse URL``: walks the hierarchy (Organizes, HasComponent,
HasProperty references) below a start node and lists each node with its id, browse
name, class and, for variables, its data type and current value.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from asyncua import ua
from asyncua.common.node import Node
from asyncua.ua.uaerrors import UaError, UaStatusCodeError

from ingest.opcua import OpcuaSecurity, secured_client

OBJECTS_FOLDER = "i=85"
MAX_NODES = 10_000  # a whole server can hold millions; the listing stops here and says so


@dataclass(frozen=True)
class BrowsedNode:
    """One node of the address space, at ``depth`` below the start node (0)."""

    depth: int
    node_id: str
    browse_name: str
    node_class: str
    data_type: str | None = None
    value: str | None = None


class BrowseError(Exception):
    """The server cannot be browsed; the message says why."""


async def _describe(node: Node, depth: int) -> BrowsedNode:
    name = await node.read_browse_name()
    node_class = await node.read_node_class()
    data_type = value = None
    if node_class == ua.NodeClass.Variable:
        try:
            variant = (await node.read_data_value()).Value
            value = repr(variant.Value)[:80] if variant is not None else None
            data_type = variant.VariantType.name if variant is not None else None
        except UaError as exc:  # unreadable (access level, bad status): still listed
            value = f"<unreadable: {exc}>"
    return BrowsedNode(
        depth,
        node.nodeid.to_string(),
        f"{name.NamespaceIndex}:{name.Name}",
        node_class.name,
        data_type,
        value,
    )


async def _walk(node: Node, depth: int, max_depth: int) -> AsyncIterator[BrowsedNode]:
    yield await _describe(node, depth)
    if depth == max_depth:
        return
    for child in await node.get_children():
        async for item in _walk(child, depth + 1, max_depth):
            yield item


async def browse(
    endpoint: str,
    start: str = OBJECTS_FOLDER,
    max_depth: int = 4,
    timeout_s: float = 10.0,
    security: OpcuaSecurity | None = None,
) -> tuple[list[BrowsedNode], bool]:
    """The nodes below ``start`` (depth first, at most ``max_depth`` levels), and whether
    the listing was cut at ``MAX_NODES``; ``security`` as the collectors use it (default:
    none). Raises ``BrowseError`` naming the problem."""
    client = await secured_client(endpoint, security or OpcuaSecurity(), timeout_s)
    try:
        root = client.get_node(start)
    except Exception as exc:  # asyncua raises several types for a malformed id
        raise BrowseError(
            f"start node {start!r} is not a node id (e.g. ns=2;s=Line1): {exc}"
        ) from exc
    nodes: list[BrowsedNode] = []
    try:
        async with client:
            async for item in _walk(root, 0, max_depth):
                nodes.append(item)
                if len(nodes) == MAX_NODES:
                    return nodes, True
    except (OSError, TimeoutError) as exc:
        raise BrowseError(f"cannot reach {endpoint}: {exc or 'timed out'}") from exc
    except UaStatusCodeError as exc:
        raise BrowseError(f"the server refused the browse of {start}: {exc}") from exc
    return nodes, False
