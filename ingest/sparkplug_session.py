"""The Sparkplug B host's view of its edge nodes: births, deaths, seq order; no I/O.

`SparkplugSessions` takes one message at a time and says what to do (`Outcome`): what to
submit to the pipeline, which nodes to ask for a rebirth, which characteristics went
stale, when to start a reorder timer; the caller (`ingest.sparkplug_host`) does it.

Per edge node (Eclipse Sparkplug 3.0, operational behaviour):

- NBIRTH starts a session: its ``bdSeq``, its ``seq`` (the next message has seq + 1, 255
  wraps to 0), its metrics; device births of the previous session no longer count.
- NDATA, DBIRTH, DDATA and DDEATH are taken in ``seq`` order. A message ahead of the
  expected seq is held and a reorder timer started; the missing one arriving in time
  releases the held ones in order. When the timer expires (`reorder_expired`) the held
  messages are dead-lettered, a rebirth is requested and every message but NBIRTH and
  NDEATH is refused until the new NBIRTH. A message behind the expected seq is a
  duplicate: dropped.
- NDEATH counts only with the bdSeq of the node's current NBIRTH (a stale Will arriving
  after the next birth is ignored); it, a DDEATH or the host losing the broker makes the
  characteristics of that node or device stale until their next birth.
- A message from a node or device without a birth: a rebirth is requested (at most once
  per ``rebirth_interval_s`` per node); data that could carry a configured metric is
  dead-lettered (the birth brings only the latest values, so the refused message is kept
  verbatim rather than lost), the rest (a DBIRTH or DDEATH the rebirth repeats, data of
  unconfigured devices) is dropped and counted.

Every message is acknowledged exactly once: with the submission that stores its records
or dead letters (``on_stored``), or at once (``Outcome.acks``) when nothing is stored.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ingest.errors import PayloadError
from ingest.model import DeadLetter
from ingest.pipeline import Submission
from ingest.sparkplug_b_pb2 import Payload
from ingest.sparkplug_payload import (
    BirthTable,
    MetricAddress,
    SparkplugTopic,
    bd_seq_of,
    birth_table,
    decode_payload,
    metric_records,
    metric_text,
    payload_text,
)

NodeKey = tuple[str, str]  # (group, edge node)
Ack = Callable[[], None]
SEQUENCED = frozenset({"NDATA", "DBIRTH", "DDATA", "DDEATH"})


@dataclass(frozen=True)
class Incoming:
    """One received message, with how to acknowledge it (None: nothing to acknowledge)."""

    topic: str
    parsed: SparkplugTopic
    data: bytes
    received_at: datetime
    ack: Ack | None = None


@dataclass
class Outcome:
    """What the caller must do after one message or timer."""

    submissions: list[Submission] = field(default_factory=list)
    acks: list[Ack] = field(default_factory=list)
    rebirths: list[NodeKey] = field(default_factory=list)
    died: list[str] = field(default_factory=list)
    timer: tuple[NodeKey, int] | None = None  # start: (node, generation)

    def merge(self, other: Outcome) -> None:
        self.submissions += other.submissions
        self.acks += other.acks
        self.rebirths += other.rebirths
        self.died += other.died
        self.timer = other.timer or self.timer


@dataclass
class _Node:
    born: bool = False
    bd_seq: int = -1
    next_seq: int = 0
    metrics: BirthTable = field(default_factory=BirthTable)
    devices: dict[str, BirthTable] = field(default_factory=dict)
    held: dict[int, tuple[Incoming, Payload]] = field(default_factory=dict)
    generation: int = 0  # of the reorder timer; a new one makes older timers void
    awaiting_rebirth: bool = False
    last_rebirth: float | None = None


def dead_letter(message: Incoming, reason: str, text: str | None = None) -> DeadLetter:
    """A refused message (or ``text``: the part of it refused) with the reason."""
    body = payload_text(message.data) if text is None else text
    return DeadLetter(message.received_at, f"sparkplug:{message.topic}", reason, body)


class SparkplugSessions:
    """Every configured edge node's session state; not thread-safe (the host locks)."""

    def __init__(
        self, bindings: Mapping[MetricAddress, Sequence[str]], rebirth_interval_s: float = 5.0
    ) -> None:
        self._by_source: dict[tuple[str, str, str | None], dict[str, tuple[str, ...]]] = {}
        self._chars: dict[NodeKey, dict[str | None, set[str]]] = {}
        for (group, node, device, metric), chars in bindings.items():
            self._by_source.setdefault((group, node, device), {})[metric] = tuple(chars)
            per_device = self._chars.setdefault((group, node), defaultdict(set))
            per_device[device].update(chars)
        self.rebirth_interval_s = rebirth_interval_s
        self._nodes: dict[NodeKey, _Node] = {key: _Node() for key in self._chars}
        self._reconnect_rebirths: set[NodeKey] = set()
        self.stale: set[str] = set()
        self.dropped: Counter[str] = Counter()

    @property
    def nodes(self) -> list[NodeKey]:
        """The configured edge nodes, sorted."""
        return sorted(self._nodes)

    def handle(self, message: Incoming, now: float) -> Outcome:
        """One message of a configured node (``now``: a monotonic clock, in seconds)."""
        t = message.parsed
        node = self._nodes.get((t.group, t.node))
        if node is None or t.kind in ("NCMD", "DCMD"):
            return self._drop(message, "not_ours" if node is None else "command")
        try:
            payload = decode_payload(message.data)
        except PayloadError as exc:
            return self._store(message, [dead_letter(message, str(exc))])
        if t.kind == "NBIRTH":
            return self._nbirth(message, payload, node)
        if t.kind == "NDEATH":
            return self._ndeath(message, payload, node)
        return self._sequenced(message, payload, node, now)

    def reorder_expired(self, key: NodeKey, generation: int, now: float) -> Outcome:
        """The reorder timer of ``key`` ran out: give up on the gap, ask for a rebirth."""
        node = self._nodes[key]
        if generation != node.generation or not node.held:
            return Outcome()  # the gap was filled, or a birth or death came meanwhile
        missing = node.next_seq
        out = self._flush_held(node, f"seq: {missing} never came; rebirth requested")
        node.awaiting_rebirth = True
        node.last_rebirth = now
        out.rebirths.append(key)
        return out

    def connection_lost(self) -> Outcome:
        """The host lost the broker: every session is stale; born nodes rebirth later."""
        out = Outcome()
        for key, node in self._nodes.items():
            if node.born:
                self._reconnect_rebirths.add(key)
                out.merge(self._kill(key, node, "seq: the host lost the broker"))
        return out

    def connected(self, now: float) -> Outcome:
        """The host is (back) online: ask the nodes it knew before for their births."""
        keys, self._reconnect_rebirths = sorted(self._reconnect_rebirths), set()
        for key in keys:
            self._nodes[key].last_rebirth = now
        return Outcome(rebirths=keys)

    # --- node births and deaths -------------------------------------------------------

    def _nbirth(self, message: Incoming, payload: Payload, node: _Node) -> Outcome:
        bd_seq = bd_seq_of(payload)
        if bd_seq is None:
            letter = dead_letter(message, "bdSeq: an NBIRTH needs the bdSeq metric")
            return self._store(message, [letter])
        out = self._flush_held(node, "seq: a new NBIRTH came first")
        key = (message.parsed.group, message.parsed.node)
        node.born, node.bd_seq, node.awaiting_rebirth = True, bd_seq, False
        node.next_seq = (payload.seq + 1) % 256 if payload.HasField("seq") else 1
        node.metrics, node.devices = birth_table(payload), {}
        self.stale -= self._chars[key].get(None, set())
        out.merge(self._records(message, payload, node.metrics, birth=True))
        return out

    def _ndeath(self, message: Incoming, payload: Payload, node: _Node) -> Outcome:
        if not node.born or bd_seq_of(payload) != node.bd_seq:
            return self._drop(message, "stale_death")
        key = (message.parsed.group, message.parsed.node)
        out = self._kill(key, node, "seq: the edge node died first")
        out.merge(self._drop(message, "node_death"))
        return out

    def _kill(self, key: NodeKey, node: _Node, why: str) -> Outcome:
        out = self._flush_held(node, why)
        node.born, node.devices, node.awaiting_rebirth = False, {}, False
        out.died = self._mark_stale(c for chars in self._chars[key].values() for c in chars)
        return out

    # --- data and device messages, in seq order ---------------------------------------

    def _sequenced(self, message: Incoming, payload: Payload, node: _Node, now: float) -> Outcome:
        key = (message.parsed.group, message.parsed.node)
        if not node.born or node.awaiting_rebirth:
            what = (
                "ignored until the NBIRTH of the rebirth requested"
                if node.born
                else ("no NBIRTH yet; rebirth requested")
            )
            return self._refuse(message, node, key, now, f"birth: {what}")
        if not payload.HasField("seq"):
            letter = dead_letter(message, f"seq: a {message.parsed.kind} needs a seq")
            return self._store(message, [letter])
        ahead = (payload.seq - node.next_seq) % 256
        if ahead >= 128 or payload.seq in node.held:
            return self._drop(message, "duplicate")
        if ahead > 0:
            node.held[payload.seq] = (message, payload)
            out = Outcome()
            if len(node.held) == 1:  # the first gap: start the reorder window
                node.generation += 1
                out.timer = (key, node.generation)
            return out
        out = self._in_order(message, payload, node, now)
        while node.next_seq in node.held:
            out.merge(self._in_order(*node.held.pop(node.next_seq), node, now))
        node.generation += 1  # voids a running timer
        if node.held:  # another gap further on: a window of its own
            out.timer = (key, node.generation)
        return out

    def _in_order(self, message: Incoming, payload: Payload, node: _Node, now: float) -> Outcome:
        node.next_seq = (payload.seq + 1) % 256
        t = message.parsed
        key = (t.group, t.node)
        if t.kind == "NDATA":
            return self._records(message, payload, node.metrics)
        assert t.device is not None
        if t.kind == "DBIRTH":
            node.devices[t.device] = birth_table(payload)
            self.stale -= self._chars[key].get(t.device, set())
            return self._records(message, payload, node.devices[t.device], birth=True)
        if t.kind == "DDEATH":
            known = node.devices.pop(t.device, None) is not None
            out = self._drop(message, "device_death" if known else "stale_death")
            if known:
                out.died = self._mark_stale(self._chars[key].get(t.device, ()))
            return out
        table = node.devices.get(t.device)
        if table is None:
            return self._refuse(message, node, key, now, "birth: no DBIRTH yet; rebirth requested")
        return self._records(message, payload, table)

    # --- outcomes ----------------------------------------------------------------------

    def _records(
        self, message: Incoming, payload: Payload, table: BirthTable, birth: bool = False
    ) -> Outcome:
        t = message.parsed
        bindings = self._by_source.get((t.group, t.node, t.device), {})
        source = f"sparkplug:{t.group}/{t.node}" + (f"/{t.device}" if t.device else "")
        records = metric_records(payload, table, bindings, source, message.received_at, birth)
        letters = [
            dead_letter(message, str(error), metric_text(metric))
            for error, metric in records.problems
        ]
        subs = []
        if records.historical:
            subs.append(Submission(measurements=records.historical, live=False))
        if records.live or letters:
            subs.append(Submission(measurements=records.live, dead_letters=letters))
        if not subs:
            return self._drop(message, "nothing_mapped")
        subs[-1].on_stored = message.ack  # the pipeline stores in order: the last is last
        return Outcome(submissions=subs)

    def _refuse(
        self, message: Incoming, node: _Node, key: NodeKey, now: float, reason: str
    ) -> Outcome:
        t = message.parsed
        if t.kind in ("NDATA", "DDATA") and self._by_source.get((t.group, t.node, t.device)):
            out = self._store(message, [dead_letter(message, reason)])
        else:  # not ours, or a device birth or death: the rebirth asked for repeats it
            out = self._drop(message, "before_birth")
        last = node.last_rebirth
        if last is None or now - last >= self.rebirth_interval_s:
            node.last_rebirth = now
            out.rebirths.append(key)
        return out

    def _flush_held(self, node: _Node, reason: str) -> Outcome:
        node.generation += 1
        out = Outcome()
        for seq in sorted(node.held, key=lambda s: (s - node.next_seq) % 256):
            message, _ = node.held[seq]
            out.merge(self._store(message, [dead_letter(message, reason)]))
        node.held.clear()
        return out

    def _store(self, message: Incoming, dead_letters: list[DeadLetter]) -> Outcome:
        return Outcome(submissions=[Submission(dead_letters=dead_letters, on_stored=message.ack)])

    def _drop(self, message: Incoming, why: str) -> Outcome:
        self.dropped[why] += 1
        return Outcome(acks=[message.ack] if message.ack else [])

    def _mark_stale(self, chars: Iterable[str]) -> list[str]:
        fresh = sorted(set(chars) - self.stale)
        self.stale.update(fresh)
        return fresh
