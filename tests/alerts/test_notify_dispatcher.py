"""The dispatcher: severity filter, retries with backoff, dead letters, independence of
notifiers, shutdown within its deadline; with fakes and with real HTTP receivers."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from alerts.notify import (
    DingTalkNotifier,
    Dispatcher,
    NotifierStats,
    NotifyError,
    RetryPolicy,
    WebhookNotifier,
)
from alerts.notify.dispatcher import backoff_delay
from tests.alerts.notify_support import (
    PERMANENT,
    RETRYABLE,
    SAMPLE,
    RecordingNotifier,
    running_receiver,
    sample,
)
from tests.ingest.pipelines import wait_until
from tests.support.mosquitto import free_port

pytestmark = pytest.mark.anyio
FAST = RetryPolicy(max_attempts=3, base_delay_s=0.01, max_delay_s=0.05, attempt_timeout_s=2.0)


def _dead_letters(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize(
    ("attempt", "rand", "expected_s"),
    [
        (1, 0.0, 1.0),
        (2, 0.0, 2.0),
        (3, 0.0, 4.0),
        (7, 0.0, 60.0),  # capped: 64 > 60
        (3, 0.5, 3.0),  # half the jitter (0.5) taken off 4 s
        (3, 0.999999, 2.000002),
    ],
)
def test_backoff_doubles_up_to_the_cap_with_jitter_taken_off(
    attempt: int, rand: float, expected_s: float
) -> None:
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=60.0, jitter=0.5)
    assert backoff_delay(policy, attempt, rand) == pytest.approx(expected_s)


async def test_each_notifier_gets_only_what_reaches_its_minimum_severity(tmp_path: Path) -> None:
    everything = RecordingNotifier("all", "info")
    urgent = RecordingNotifier("urgent", "critical")
    async with Dispatcher([everything, urgent], tmp_path / "dead.jsonl", policy=FAST) as d:
        for severity in ("info", "warning", "critical"):
            d.submit(sample(severity=severity, key=f"k-{severity}"))
    assert [n.severity for n in everything.sent] == ["info", "warning", "critical"]
    assert [n.severity for n in urgent.sent] == ["critical"]
    assert d.stats() == {
        "all": NotifierStats(sent=3),
        "urgent": NotifierStats(sent=1),
    }
    assert everything.closed
    assert urgent.closed


async def test_a_retryable_failure_is_retried_and_a_permanent_one_dead_lettered_at_once(
    tmp_path: Path,
) -> None:
    flaky = RecordingNotifier("flaky", failures=[RETRYABLE, RETRYABLE])
    refusing = RecordingNotifier("refusing", failures=[PERMANENT])
    dead = tmp_path / "dead.jsonl"
    async with Dispatcher([flaky, refusing], dead, policy=FAST) as d:
        d.submit(SAMPLE)
    assert flaky.sent == [SAMPLE]
    assert flaky.attempts == 3
    assert refusing.attempts == 1
    assert d.stats()["flaky"] == NotifierStats(sent=1, failed=2)
    assert d.stats()["refusing"] == NotifierStats(failed=1, dead_lettered=1)
    [letter] = _dead_letters(dead)
    assert letter["notifier"] == "refusing"
    assert letter["reason"] == "not retryable: receiver refuses"
    assert letter["attempts"] == 1
    assert letter["notification"] == SAMPLE.to_dict()


async def test_unexpected_errors_and_timeouts_count_as_retryable(tmp_path: Path) -> None:
    buggy = RecordingNotifier("buggy", failures=[RuntimeError("bug")] * 3)
    stuck = RecordingNotifier("stuck", block=asyncio.Event())
    policy = RetryPolicy(max_attempts=2, base_delay_s=0.01, attempt_timeout_s=0.05)
    async with Dispatcher([buggy, stuck], tmp_path / "dead.jsonl", policy=policy) as d:
        d.submit(SAMPLE)
        await wait_until(lambda: all(s.dead_lettered for s in d.stats().values()))
    reasons = {dl["notifier"]: dl["reason"] for dl in _dead_letters(tmp_path / "dead.jsonl")}
    assert reasons == {
        "buggy": "gave up after 2 attempts: RuntimeError: bug",
        "stuck": "gave up after 2 attempts: no answer within 0.05 s",
    }


async def test_a_stuck_notifier_does_not_delay_another_one(tmp_path: Path) -> None:
    stuck = RecordingNotifier("stuck", block=asyncio.Event())
    quick = RecordingNotifier("quick")
    d = Dispatcher([stuck, quick], tmp_path / "dead.jsonl", policy=FAST)
    await d.start()
    for i in range(5):
        d.submit(sample(key=f"k{i}"))
    await wait_until(lambda: len(quick.sent) == 5, timeout_s=1.0, what="the quick notifier")
    assert stuck.sent == []
    started = time.monotonic()
    await d.aclose(timeout_s=0.2)
    assert time.monotonic() - started < 1.0
    letters = _dead_letters(tmp_path / "dead.jsonl")
    assert sorted(dl["notification"]["key"] for dl in letters) == [f"k{i}" for i in range(5)]
    assert {dl["reason"] for dl in letters} == {"not delivered before shutdown"}
    assert d.stats()["stuck"] == NotifierStats(dead_lettered=5)


async def test_aclose_delivers_what_is_queued_within_its_deadline(tmp_path: Path) -> None:
    slow = RecordingNotifier("slow", delay_s=0.02)
    d = Dispatcher([slow], tmp_path / "dead.jsonl", policy=FAST)
    for i in range(10):
        d.submit(sample(key=f"k{i}"))  # before start: waits in the queue
    assert d.stats()["slow"].queued == 10
    await d.start()
    started = time.monotonic()
    await d.aclose(timeout_s=5.0)
    assert time.monotonic() - started < 1.0
    assert [n.key for n in slow.sent] == [f"k{i}" for i in range(10)]
    assert not (tmp_path / "dead.jsonl").exists()


async def test_submit_never_raises(tmp_path: Path) -> None:
    fake = RecordingNotifier("fake")
    d = Dispatcher([fake], tmp_path / "dead.jsonl", policy=FAST, queue_size=1)
    d.submit(sample(key="first"))
    d.submit(sample(key="overflow"))  # queue of one is full: dead-lettered, not raised
    d.submit("not a notification")  # type: ignore[arg-type]
    await d.start()
    await d.aclose()
    d.submit(sample(key="late"))
    assert [n.key for n in fake.sent] == ["first"]
    reasons = [
        (dl["notification"]["key"], dl["reason"]) for dl in _dead_letters(tmp_path / "dead.jsonl")
    ]
    assert reasons == [
        ("overflow", "queue full: the receiver is too far behind"),
        ("late", "submitted after the dispatcher was closed"),
    ]


def test_notifier_names_must_be_distinct(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="distinct"):
        Dispatcher([RecordingNotifier("a"), RecordingNotifier("a")], tmp_path / "d.jsonl")


async def test_webhook_answering_503_then_200_is_delivered_once(tmp_path: Path) -> None:
    with running_receiver(free_port(), responses=[(503, b"busy")], default=(200, b"")) as rx:
        webhook = WebhookNotifier("mes", rx.url, "s3cret")
        async with Dispatcher([webhook], tmp_path / "dead.jsonl", policy=FAST) as d:
            d.submit(SAMPLE)
    assert d.stats()["mes"] == NotifierStats(sent=1, failed=1)
    assert [r.headers["idempotency-key"] for r in rx.requests] == ["incident-42-opened"] * 2
    assert not (tmp_path / "dead.jsonl").exists()


async def test_receiver_down_past_the_budget_is_dead_lettered_and_later_ones_arrive_when_back(
    tmp_path: Path,
) -> None:
    port = free_port()
    webhook = WebhookNotifier("mes", f"http://127.0.0.1:{port}/hook", "s3cret", timeout_s=1.0)
    dead = tmp_path / "dead.jsonl"
    async with Dispatcher([webhook], dead, policy=FAST) as d:
        d.submit(sample(key="while-down"))
        await wait_until(lambda: d.stats()["mes"].dead_lettered == 1, what="the dead letter")
        [letter] = _dead_letters(dead)
        assert letter["notification"]["key"] == "while-down"
        assert letter["reason"].startswith("gave up after 3 attempts: webhook mes: ConnectError")
        assert letter["attempts"] == 3
        with running_receiver(port, default=(200, b"")) as rx:
            d.submit(sample(key="after-recovery"))
            await wait_until(lambda: d.stats()["mes"].sent == 1, what="delivery after recovery")
    assert [r.json()["key"] for r in rx.requests] == ["after-recovery"]


async def test_dingtalk_rate_limit_is_retried_and_a_refusal_dead_lettered_at_once(
    tmp_path: Path,
) -> None:
    limited = json.dumps({"errcode": 130101, "errmsg": "send too fast"}).encode()
    refused = json.dumps({"errcode": 310000, "errmsg": "keywords not in content"}).encode()
    dead = tmp_path / "dead.jsonl"
    with (
        running_receiver(free_port(), responses=[(200, limited)]) as busy_rx,
        running_receiver(free_port(), default=(200, refused)) as refusing_rx,
    ):
        busy = DingTalkNotifier("busy", "t1", url=busy_rx.url)
        refusing = DingTalkNotifier("refusing", "t2", secret="SEC1", url=refusing_rx.url)
        async with Dispatcher([busy, refusing], dead, policy=FAST) as d:
            d.submit(SAMPLE)
    assert len(busy_rx.requests) == 2
    assert d.stats()["busy"] == NotifierStats(sent=1, failed=1)
    assert len(refusing_rx.requests) == 1
    [letter] = _dead_letters(dead)
    assert letter["notifier"] == "refusing"
    assert letter["attempts"] == 1
    assert "errcode 310000" in letter["reason"]


async def test_notify_error_carries_retryable_and_message() -> None:
    error = NotifyError(False, "HTTP 400")
    assert (error.retryable, error.message, str(error)) == (False, "HTTP 400", "HTTP 400")
