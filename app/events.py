"""In-process publish/subscribe of live events, for the Server-Sent Events stream.

The monitor publishes a ``point`` for every live charted measurement and a ``violation``
for every rule signal; the alarm manager's change hook publishes an ``alarm`` for every
saved alarm state. Each event gets the next number of this process (1, 2, ...) and carries
its characteristic's line and process, so subscribers can filter on them. On the wire
its id is ``<epoch>-<number>``, the epoch being random per process, so that an id from
before a restart is never mistaken for one of this process.

``publish`` never blocks or awaits: it is called from the event loop's thread (where the
pipeline evaluates and the alarm manager runs) and only appends to bounded queues. A
subscriber that falls more than ``queue_size`` events behind is dropped: its queue is
emptied and iterating it raises ``Overflowed``. The last ``replay_size`` events are
kept so that a client reconnecting with ``Last-Event-ID`` gets what it missed; when that
id is no longer buffered (or comes from before a restart) the subscription is marked
``missed`` and the client has to re-read the status.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from alerts import ChartSignal
from alerts.early_warnings import EarlyWarning
from ingest import AlarmRecord, Measurement

_log = logging.getLogger(__name__)
EVENT_KINDS = ("point", "violation", "alarm", "warning")


Data = Mapping[str, Any] | Callable[[], Mapping[str, Any]]


class Event:
    """One published event; ``data`` is JSON-ready and names its characteristic, line and
    process.

    The data may be given as a function, called on first use: a plant's every live point
    is an event, and most are never sent (no subscriber, or one filtering them out).
    """

    __slots__ = ("_data", "_given", "characteristic", "id", "kind", "line", "process")

    def __init__(
        self,
        id: int,
        kind: str,  # one of EVENT_KINDS
        characteristic: str,
        line: str | None,
        process: str | None,
        data: Data,
    ) -> None:
        self.id = id
        self.kind = kind
        self.characteristic = characteristic
        self.line = line
        self.process = process
        self._given: Data | None = data
        self._data: dict[str, Any] | None = None

    @property
    def data(self) -> Mapping[str, Any]:
        if self._data is None:
            given = self._given
            raw = given() if callable(given) else (given or {})
            self._data = {
                "characteristic": self.characteristic, "line": self.line,
                "process": self.process, **raw,
            }  # fmt: skip
            self._given = None  # what the function held (a measurement) can go
        return self._data


@dataclass(frozen=True)
class EventFilter:
    """Which events a subscriber wants: an empty set means any; the sets combine with AND."""

    lines: frozenset[str] = frozenset()
    processes: frozenset[str] = frozenset()
    characteristics: frozenset[str] = frozenset()

    def matches(self, event: Event) -> bool:
        return (
            (not self.lines or event.line in self.lines)
            and (
                not self.processes
                or event.process in self.processes
                or f"{event.line}.{event.process}" in self.processes
            )
            and (not self.characteristics or event.characteristic in self.characteristics)
        )


class Overflowed(Exception):
    """The subscriber fell too far behind; its events were dropped and it was unsubscribed."""


class Subscription:
    """One subscriber's bounded queue of matching events, read with ``async for``.

    Iteration waits for events; it ends after ``close`` and raises ``Overflowed`` once
    the subscriber was dropped for falling behind.
    """

    def __init__(self, event_filter: EventFilter, limit: int) -> None:
        self.filter = event_filter
        self.limit = limit
        self.overflowed = False
        self.closed = False
        self.missed = False  # a Last-Event-ID that could not be replayed
        self._items: deque[Event] = deque()
        self._wake = asyncio.Event()

    @property
    def pending(self) -> int:
        """Events queued and not read yet."""
        return len(self._items)

    def offer(self, event: Event) -> bool:
        """Queue the event if it matches; False once the queue overflowed."""
        if self.overflowed:
            return False
        if self.closed or not self.filter.matches(event):
            return True
        if len(self._items) >= self.limit:
            self.overflowed = True
            self._items.clear()  # the client re-reads the status anyway: free it now
            self._wake.set()
            return False
        self._items.append(event)
        self._wake.set()
        return True

    def close(self) -> None:
        """End the iteration now, queued events or not (at shutdown)."""
        self.closed = True
        self._items.clear()
        self._wake.set()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        while not self._items:
            if self.overflowed:
                raise Overflowed(f"more than {self.limit} events behind")
            if self.closed:
                raise StopAsyncIteration
            self._wake.clear()
            await self._wake.wait()
        return self._items.popleft()


class EventBus:
    """Fan-out of live events to subscribers, with a small replay buffer.

    ``heartbeat_s`` is how often the stream sends a keep-alive comment; it lives here
    so that the composition root (and tests) can set it in one place.
    """

    def __init__(
        self, queue_size: int = 1000, replay_size: int = 1000, heartbeat_s: float = 15.0
    ) -> None:
        if queue_size < 1 or replay_size < 0 or heartbeat_s <= 0:
            raise ValueError("queue_size must be >= 1, replay_size >= 0 and heartbeat_s > 0")
        self.queue_size = queue_size
        self.heartbeat_s = heartbeat_s
        self.epoch = secrets.token_hex(4)
        self.dropped = 0  # subscribers dropped for falling behind, since start
        self._last_id = 0
        self._recent: deque[Event] = deque(maxlen=replay_size)
        self._subscribers: set[Subscription] = set()

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    @property
    def last_id(self) -> int:
        """The number of the newest event (0 before the first)."""
        return self._last_id

    def wire_id(self, event: Event) -> str:
        """The event's SSE id: ``<epoch>-<number>``, unique across restarts."""
        return f"{self.epoch}-{event.id}"

    def publish(
        self,
        kind: str,
        data: Data,
        *,
        characteristic: str,
        line: str | None,
        process: str | None,
    ) -> Event:
        """Number the event, keep it for replay and queue it for every matching subscriber.

        ``data`` may be a function giving the data: it is called when first needed.
        """
        self._last_id += 1
        event = Event(self._last_id, kind, characteristic, line, process, data)
        self._recent.append(event)
        for subscription in list(self._subscribers):
            if not subscription.offer(event):
                self._subscribers.discard(subscription)
                self.dropped += 1
                _log.warning(
                    "stream subscriber dropped: more than %d events behind", self.queue_size
                )
        return event

    def subscribe(
        self, event_filter: EventFilter | None = None, last_event_id: str | None = None
    ) -> Subscription:
        """A new subscription; with ``last_event_id`` (a wire id), the events after it first."""
        subscription = Subscription(event_filter or EventFilter(), self.queue_size)
        if last_event_id is not None:
            self._replay(subscription, last_event_id)
        if not subscription.overflowed:
            self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop delivering to a subscription (a no-op if it is already gone)."""
        self._subscribers.discard(subscription)

    def _replay(self, subscription: Subscription, last_event_id: str) -> None:
        epoch, _, number = last_event_id.strip().rpartition("-")
        last = int(number) if epoch == self.epoch and number.isdigit() else -1
        oldest = self._recent[0].id if self._recent else self._last_id + 1
        if not oldest - 1 <= last <= self._last_id:
            subscription.missed = True  # evicted already, or not from this process
            return
        for event in self._recent:
            if event.id > last:
                subscription.offer(event)


def point_data(m: Measurement, limit_version: int | None) -> dict[str, Any]:
    """A ``point`` event's data: one live charted measurement."""
    return {"time": m.time.isoformat(), "value": m.value, "limit_version": limit_version}


def violation_data(s: ChartSignal) -> dict[str, Any]:
    """A ``violation`` event's data: one rule signal, as the engine reported it."""
    return {
        "time": s.time.isoformat(),
        "value": s.value,
        "rule": s.rule,
        "chart": s.chart,
        "side": s.side,
        "limit": s.limit,
        "limit_version": s.limit_version,
        "message": s.describe(),
    }


def alarm_data(a: AlarmRecord) -> dict[str, Any]:
    """An ``alarm`` event's data: the alarm's saved state."""
    return {
        "id": a.id,
        "rule": a.rule,
        "chart": a.chart,
        "state": a.state,
        "count": a.count,
        "opened_at": a.opened_at.isoformat(),
        "last_at": a.last_at.isoformat(),
        "last_value": a.last_value,
        "limit_version": a.limit_version,
        "message": a.message,
        "severity": a.severity,
        "characteristics": list(a.characteristics),
        "acknowledged_by": a.ack.by if a.ack else None,
        "resolved_by": a.details.resolution.by if a.details.resolution else None,
    }


def warning_data(w: EarlyWarning) -> dict[str, Any]:
    """A ``warning`` event's data: an early warning raised, escalated or cleared."""
    return {
        "kind": w.kind,
        "severity": w.severity,
        "at": w.at.isoformat(),
        "message": w.message,
        "cleared": w.cleared,
        "details": dict(w.details),
    }
