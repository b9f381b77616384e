"""Live push: a Server-Sent Events stream of points, violations and alarm changes.

Wire format (``text/event-stream``), one block per event::

    id: 9f2c41d0-42
    event: point | violation | alarm
    data: {"characteristic": "...", "line": "...", "process": "...", ...}

``id`` is ``<epoch>-<number>``: the number counts up within one service process, the
epoch changes at every start. A ``: keepalive`` comment goes out every
``EventBus.heartbeat_s`` (15 s) so that proxies keep the connection open. Two control
events carry no id: ``overflow`` (the client fell more than ``queue_size`` events
behind and was dropped: reconnect, then re-read the status) and ``resync`` (the
``Last-Event-ID`` sent on reconnecting is no longer buffered or predates a restart:
re-read the status). Otherwise a reconnect with ``Last-Event-ID`` replays what was
missed from a buffer of the last 1,000 events. At shutdown the stream ends cleanly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Query
from sse_starlette import EventSourceResponse, JSONServerSentEvent, ServerSentEvent
from starlette.background import BackgroundTask

from app.api.deps import ServiceDep, ViewerDep
from app.errors import BadRequest
from app.events import EventBus, EventFilter, Overflowed, Subscription
from app.wiring import Service

router = APIRouter(prefix="/api/v1/stream", tags=["stream"])
RETRY_MS = 3000  # how long a browser's EventSource waits before reconnecting
SHUTDOWN_GRACE_S = 2.0  # for the stream to end cleanly before it is cancelled
RESYNC = "re-read /api/v1/characteristics/{id}/status for the current state"
_FILTER_TEXT = (
    "repeat the parameter or separate ids with commas; any of them matches, and the "
    "parameters combine (a process is line.process, or a bare process id matched on every "
    "line that has it)"
)
_STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "an endless text/event-stream of point, violation, alarm (incident) "
        "and warning (early warning) events",
        "content": {
            "text/event-stream": {
                "schema": {
                    "description": "each event of the stream",
                    "type": "object",
                    "properties": {
                        "event": {
                            "type": "string",
                            "enum": [
                                "point",
                                "violation",
                                "alarm",
                                "warning",
                                "overflow",
                                "resync",
                            ],
                        },
                        "data": {"type": "string", "description": "a JSON object"},
                        "id": {"type": "string"},
                        "retry": {"type": "integer"},
                    },
                }
            }
        },
    },
    422: {"description": "a filter names a line, process or characteristic that does not exist"},
}


@router.get("", response_class=EventSourceResponse, responses=_STREAM_DOC)
async def stream_events(
    service: ServiceDep,
    _: ViewerDep,
    line: Annotated[list[str] | None, Query(description=f"line ids; {_FILTER_TEXT}")] = None,
    process: Annotated[list[str] | None, Query(description=f"process ids; {_FILTER_TEXT}")] = None,
    characteristic: Annotated[
        list[str] | None, Query(description=f"characteristic ids; {_FILTER_TEXT}")
    ] = None,
    last_event_id: Annotated[
        str | None, Header(description="the last id received: replay what was missed")
    ] = None,
) -> EventSourceResponse:
    """Stream live points, rule violations and alarm changes as Server-Sent Events."""
    event_filter = EventFilter(
        _known(service, "line", line),
        _known(service, "process", process),
        _known(service, "characteristic", characteristic),
    )
    bus = service.events
    # subscribed before the headers go out: a client that sees them misses nothing after
    subscription = bus.subscribe(event_filter, last_event_id)
    shutdown = anyio.Event()  # set by sse-starlette when the server is stopping

    async def close_on_shutdown() -> None:
        await shutdown.wait()
        subscription.close()  # the stream then ends and completes its response

    return EventSourceResponse(
        _frames(bus, subscription),
        ping=bus.heartbeat_s,
        ping_message_factory=lambda: ServerSentEvent(comment="keepalive"),
        # also when the client leaves before the first frame (no generator to clean up)
        background=BackgroundTask(bus.unsubscribe, subscription),
        data_sender_callable=close_on_shutdown,
        shutdown_event=shutdown,
        shutdown_grace_period=SHUTDOWN_GRACE_S,
    )


async def _frames(bus: EventBus, subscription: Subscription) -> AsyncIterator[ServerSentEvent]:
    """The subscription's events as SSE frames, until it ends or the client leaves."""
    try:
        yield ServerSentEvent(retry=RETRY_MS)
        if subscription.missed:
            yield _notice("resync", "the events after your Last-Event-ID are no longer kept")
        try:
            async for event in subscription:
                yield JSONServerSentEvent(dict(event.data), id=bus.wire_id(event), event=event.kind)
        except Overflowed as exc:
            yield _notice("overflow", f"this stream fell behind ({exc}) and was closed")
    finally:
        bus.unsubscribe(subscription)


def _notice(kind: str, reason: str) -> ServerSentEvent:
    action = "reconnect, then " + RESYNC if kind == "overflow" else RESYNC
    return JSONServerSentEvent({"reason": reason, "action": action}, event=kind)


def _known(service: Service, name: str, raw: list[str] | None) -> frozenset[str]:
    """The filter values of one parameter, each checked to exist (422 naming it if not)."""
    values = frozenset(v.strip() for item in raw or () for v in item.split(",") if v.strip())
    unknown = sorted(values - _ids(service, name)) if values else []
    if unknown:
        raise BadRequest(f"{name}: no {name} with id {', '.join(map(repr, unknown))}")
    return values


def _ids(service: Service, name: str) -> set[str]:
    records = service.monitor.characteristics
    lines = service.plant.lines
    if name == "line":
        return {r.line for r in records} | {line.id for line in lines}
    if name == "process":  # a bare id (on every line that has it) or line.process
        bare = {r.process for r in records} | {p.id for line in lines for p in line.processes}
        qualified = {f"{r.line}.{r.process}" for r in records} | {
            f"{line.id}.{p.id}" for line in lines for p in line.processes
        }
        return bare | qualified
    return {r.id for r in records}
