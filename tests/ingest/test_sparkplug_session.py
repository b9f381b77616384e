"""The Sparkplug host's session logic alone: seq order, births, deaths, acknowledgements."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from ingest.sparkplug_b_pb2 import Payload
from ingest.sparkplug_payload import MetricAddress, parse_topic
from ingest.sparkplug_session import Incoming, Outcome, SparkplugSessions

AT_MS = 1_773_475_200_000
NODE = ("g", "n")
BINDINGS = {MetricAddress("g", "n", "cam", "gap"): ("gap",)}


class _Acks:
    """Hands out one acknowledgement per message and counts the calls."""

    def __init__(self) -> None:
        self.calls: Counter[int] = Counter()
        self.issued = 0

    def new(self) -> Callable[[], None]:
        number = self.issued
        self.issued += 1
        return lambda: self.calls.update([number])


def _message(acks: _Acks, kind: str, payload: Payload, device: str | None = "cam") -> Incoming:
    topic = f"spBv1.0/g/{kind}/n" + (f"/{device}" if kind.startswith("D") else "")
    parsed = parse_topic(topic)
    assert parsed is not None
    return Incoming(topic, parsed, payload.SerializeToString(), datetime.now(UTC), acks.new())


def _nbirth(bd_seq: int = 0) -> Payload:
    payload = Payload(timestamp=AT_MS, seq=0)
    payload.metrics.add(name="bdSeq", datatype=8, long_value=bd_seq)
    return payload


def _dbirth(seq: int) -> Payload:
    payload = Payload(timestamp=AT_MS, seq=seq)
    payload.metrics.add(name="gap", alias=1, datatype=10, is_null=True)
    return payload


def _ddata(seq: int, value: float) -> Payload:
    payload = Payload(timestamp=AT_MS + seq, seq=seq % 256)
    payload.metrics.add(alias=1, double_value=value, timestamp=AT_MS + seq)
    return payload


def _settle(outcome: Outcome) -> list[float]:
    """Store the outcome's submissions (acknowledging them) and return their values."""
    for ack in outcome.acks:
        ack()
    values = []
    for submission in outcome.submissions:
        values += [m.value for m in submission.measurements]
        if submission.on_stored is not None:
            submission.on_stored()
    return values


def _born(acks: _Acks) -> SparkplugSessions:
    sessions = SparkplugSessions(BINDINGS, rebirth_interval_s=5.0)
    _settle(sessions.handle(_message(acks, "NBIRTH", _nbirth()), 0.0))
    _settle(sessions.handle(_message(acks, "DBIRTH", _dbirth(1)), 0.0))
    return sessions


def test_seq_wraps_from_255_to_0_without_a_gap() -> None:
    acks = _Acks()
    sessions = _born(acks)

    values = []
    for seq in range(2, 300):
        outcome = sessions.handle(_message(acks, "DDATA", _ddata(seq, float(seq))), 0.0)
        assert outcome.timer is None
        assert outcome.rebirths == []
        values += _settle(outcome)

    assert values == [float(s) for s in range(2, 300)]


def test_a_message_behind_the_expected_seq_is_a_duplicate_and_dropped() -> None:
    acks = _Acks()
    sessions = _born(acks)
    _settle(sessions.handle(_message(acks, "DDATA", _ddata(2, 1.0)), 0.0))

    outcome = sessions.handle(_message(acks, "DDATA", _ddata(2, 1.0)), 0.0)

    assert (outcome.submissions, outcome.timer, len(outcome.acks)) == ([], None, 1)
    assert sessions.dropped["duplicate"] == 1


def test_held_messages_are_released_in_order_when_the_gap_fills() -> None:
    acks = _Acks()
    sessions = _born(acks)

    held = sessions.handle(_message(acks, "DDATA", _ddata(4, 4.0)), 0.0)
    held_too = sessions.handle(_message(acks, "DDATA", _ddata(3, 3.0)), 0.0)
    filled = sessions.handle(_message(acks, "DDATA", _ddata(2, 2.0)), 0.0)

    assert held.timer is not None
    assert held.timer[0] == NODE
    assert (held.submissions, held_too.submissions, held_too.timer) == ([], [], None)
    assert _settle(filled) == [2.0, 3.0, 4.0]
    assert sessions.reorder_expired(NODE, held.timer[1], 10.0) == Outcome()  # timer void


def test_an_expired_gap_dead_letters_the_held_asks_a_rebirth_and_refuses_until_nbirth() -> None:
    acks = _Acks()
    sessions = _born(acks)
    held = sessions.handle(_message(acks, "DDATA", _ddata(3, 3.0)), 0.0)
    assert held.timer is not None

    expired = sessions.reorder_expired(NODE, held.timer[1], 2.0)
    refused = sessions.handle(_message(acks, "DDATA", _ddata(2, 2.0)), 3.0)
    reborn = sessions.handle(_message(acks, "NBIRTH", _nbirth()), 3.5)

    assert expired.rebirths == [NODE]
    [letter] = expired.submissions[0].dead_letters
    assert letter.reason == "seq: 2 never came; rebirth requested"
    assert refused.rebirths == []  # asked 1 s ago: not again yet
    assert refused.submissions[0].dead_letters[0].reason == (
        "birth: ignored until the NBIRTH of the rebirth requested"
    )
    assert reborn.submissions == []
    assert len(reborn.acks) == 1


def test_data_without_a_birth_asks_a_rebirth_at_most_once_per_interval() -> None:
    acks = _Acks()
    sessions = SparkplugSessions(BINDINGS, rebirth_interval_s=5.0)

    first = sessions.handle(_message(acks, "DDATA", _ddata(7, 1.0)), 0.0)
    again = sessions.handle(_message(acks, "DDATA", _ddata(8, 1.0)), 4.0)
    unmapped = sessions.handle(_message(acks, "DDATA", _ddata(9, 1.0), device="other"), 5.5)

    assert (first.rebirths, again.rebirths, unmapped.rebirths) == ([NODE], [], [NODE])
    assert first.submissions[0].dead_letters[0].reason == "birth: no NBIRTH yet; rebirth requested"
    assert unmapped.submissions == []  # nothing configured on that device: not kept
    assert sessions.dropped["before_birth"] == 1


def test_only_the_ndeath_of_the_current_birth_makes_the_node_stale() -> None:
    acks = _Acks()
    sessions = SparkplugSessions(BINDINGS)
    _settle(sessions.handle(_message(acks, "NBIRTH", _nbirth(bd_seq=4)), 0.0))
    _settle(sessions.handle(_message(acks, "DBIRTH", _dbirth(1)), 0.0))
    death = Payload(timestamp=AT_MS)
    death.metrics.add(name="bdSeq", datatype=8, long_value=3)

    stale = sessions.handle(_message(acks, "NDEATH", death), 0.0)
    death.metrics[0].long_value = 4
    current = sessions.handle(_message(acks, "NDEATH", death), 0.0)

    assert (stale.died, sessions.dropped["stale_death"]) == ([], 1)
    assert current.died == ["gap"]
    assert sessions.stale == {"gap"}


def test_every_message_is_acknowledged_exactly_once_whatever_happens() -> None:
    acks = _Acks()
    sessions = _born(acks)
    outcomes = [
        sessions.handle(_message(acks, "DDATA", _ddata(2, 2.0)), 0.0),
        sessions.handle(_message(acks, "DDATA", _ddata(5, 5.0)), 0.0),  # held
        sessions.handle(_message(acks, "DDATA", _ddata(4, 4.0)), 0.0),  # held
        sessions.handle(_message(acks, "DDATA", _ddata(2, 2.0)), 0.0),  # duplicate
        sessions.handle(_message(acks, "DDATA", Payload(seq=3)), 0.0),  # nothing mapped
        sessions.handle(_message(acks, "DDATA", _ddata(7, 7.0)), 0.0),  # held
        sessions.handle(_message(acks, "NCMD", Payload()), 0.0),
        sessions.handle(_message(acks, "DDATA", Payload()), 0.0),  # no seq
    ]
    broken = _message(acks, "DDATA", Payload())
    garbage = Incoming(broken.topic, broken.parsed, b"\xff", broken.received_at, broken.ack)
    outcomes.append(sessions.handle(garbage, 0.0))
    outcomes.append(sessions.connection_lost())

    for outcome in outcomes:
        _settle(outcome)

    assert acks.calls == Counter(range(acks.issued))
    assert sessions.stale == {"gap"}
