"""The pipeline on a real SQLite store: store first, acknowledge, then evaluate."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import anyio
import pytest

from ingest.errors import StoreError
from ingest.model import DeadLetter, InspectionVerdict, Measurement, Quality
from ingest.pipeline import (
    MAX_IN_TRANSIT,
    Evaluator,
    FlushResult,
    Pipeline,
    PipelineObserver,
    Submission,
)
from ingest.sqlite_store import SqliteStore
from tests.ingest.pipelines import RecordingEvaluator, running, wait_until
from tests.ingest.records import T0, cost_event, measurement, verdict

pytestmark = pytest.mark.anyio

KNOWN = frozenset({"c1", "c2"})


def _pipeline(
    store: SqliteStore, evaluator: Evaluator, observer: PipelineObserver | None = None
) -> Pipeline:
    return Pipeline(store, KNOWN, evaluator, observer)


def _rows(store: SqliteStore, table: str) -> int:
    """Count committed rows from a separate connection (what another reader would see)."""
    conn = sqlite3.connect(store.path)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


class StoreCheckingEvaluator(RecordingEvaluator):
    """Records, at each evaluation, how many of the measurements are already stored."""

    def __init__(self, store: SqliteStore) -> None:
        super().__init__()
        self.store = store
        self.stored_at_evaluation: list[int] = []

    async def evaluate(self, measurements: Sequence[Measurement], live: bool) -> None:
        self.stored_at_evaluation.append(_rows(self.store, "measurements"))
        await super().evaluate(measurements, live)


class RecordingObserver:
    def __init__(self) -> None:
        self.results: list[FlushResult] = []

    def flushed(self, result: FlushResult, seconds: float) -> None:
        self.results.append(result)


async def test_submitted_measurements_are_stored_then_evaluated(
    sqlite_store: SqliteStore,
) -> None:
    evaluator = StoreCheckingEvaluator(sqlite_store)
    batch = [measurement(i) for i in range(3)]

    async with running(_pipeline(sqlite_store, evaluator)) as pipeline:
        await pipeline.submit(Submission(measurements=batch))
        await pipeline.drain()

    assert await sqlite_store.recent_measurements("c1", 10) == batch
    assert evaluator.calls == [(batch, True)]
    assert evaluator.stored_at_evaluation == [3]


async def test_verdicts_cost_events_and_dead_letters_are_stored(
    sqlite_store: SqliteStore,
) -> None:
    letter = DeadLetter(T0, "mqtt:t", "payload: not valid JSON", "{")
    submission = Submission(
        verdicts=[verdict(0), verdict(1, ok=False)],
        cost_events=[cost_event(0)],
        dead_letters=[letter],
    )
    observer = RecordingObserver()

    async with running(_pipeline(sqlite_store, RecordingEvaluator(), observer=observer)) as p:
        await p.submit_and_wait(submission)

    assert await sqlite_store.count_verdicts() == 2
    assert _rows(sqlite_store, "cost_events") == 1
    assert await sqlite_store.list_dead_letters() == [letter]
    assert [(r.verdicts, r.cost_events, r.dead_letters) for r in observer.results] == [
        (2, 1, [letter])
    ]


async def test_a_measurement_of_an_unknown_characteristic_goes_to_dead_letters(
    sqlite_store: SqliteStore,
) -> None:
    evaluator = RecordingEvaluator()
    stray = measurement(1, characteristic="line9.nowhere", source="mqtt:x/y")

    async with running(_pipeline(sqlite_store, evaluator)) as pipeline:
        await pipeline.submit_and_wait(Submission(measurements=[measurement(0), stray]))

    assert await sqlite_store.count_measurements() == 1
    [letter] = await sqlite_store.list_dead_letters()
    assert letter.reason.startswith("characteristic: ")
    assert "'line9.nowhere'" in letter.reason
    assert letter.source == "mqtt:x/y"
    assert '"ingest_id": "m-1"' in letter.payload
    assert evaluator.evaluated == [measurement(0)]


async def test_a_duplicate_is_stored_once_and_evaluated_once(sqlite_store: SqliteStore) -> None:
    evaluator = RecordingEvaluator()

    async with running(_pipeline(sqlite_store, evaluator)) as pipeline:
        await pipeline.submit_and_wait(Submission(measurements=[measurement(0), measurement(0)]))
        await pipeline.submit_and_wait(Submission(measurements=[measurement(0), measurement(1)]))
        # and two copies flushed together in one group
        await pipeline.submit(Submission(measurements=[measurement(2)]))
        await pipeline.submit(Submission(measurements=[measurement(2)]))
        await pipeline.drain()

    assert await sqlite_store.count_measurements() == 3
    assert evaluator.evaluated == [measurement(0), measurement(1), measurement(2)]


async def test_bad_and_uncertain_measurements_are_stored_but_not_evaluated(
    sqlite_store: SqliteStore,
) -> None:
    evaluator = RecordingEvaluator()
    batch = [
        measurement(0),
        measurement(1, quality=Quality.BAD),
        measurement(2, quality=Quality.UNCERTAIN),
        measurement(3),
    ]

    async with running(_pipeline(sqlite_store, evaluator)) as pipeline:
        await pipeline.submit_and_wait(Submission(measurements=batch))

    assert await sqlite_store.recent_measurements("c1", 10) == batch
    assert evaluator.evaluated == [batch[0], batch[3]]


async def test_on_stored_is_called_after_the_records_are_committed(
    sqlite_store: SqliteStore,
) -> None:
    seen: list[tuple[int, int, int]] = []

    def on_stored() -> None:
        seen.append(
            (
                _rows(sqlite_store, "measurements"),
                _rows(sqlite_store, "verdicts"),
                _rows(sqlite_store, "dead_letters"),
            )
        )

    submission = Submission(
        measurements=[measurement(0), measurement(1, characteristic="unknown")],
        verdicts=[verdict(0)],
        on_stored=on_stored,
    )

    async with running(_pipeline(sqlite_store, RecordingEvaluator())) as pipeline:
        await pipeline.submit(submission)
        await pipeline.drain()

    assert seen == [(1, 1, 1)]


async def test_on_stored_is_called_even_when_everything_was_a_duplicate(
    sqlite_store: SqliteStore,
) -> None:
    await sqlite_store.add_measurements([measurement(0)])
    acknowledged: list[str] = []

    async with running(_pipeline(sqlite_store, RecordingEvaluator())) as pipeline:
        await pipeline.submit(
            Submission(measurements=[measurement(0)], on_stored=lambda: acknowledged.append("x"))
        )
        await pipeline.drain()

    assert acknowledged == ["x"]


async def test_submit_and_wait_returns_once_the_submission_is_stored(
    sqlite_store: SqliteStore,
) -> None:
    inner: list[int] = []
    submission = Submission(
        measurements=[measurement(0), measurement(1)],
        on_stored=lambda: inner.append(_rows(sqlite_store, "measurements")),
    )

    async with running(_pipeline(sqlite_store, RecordingEvaluator())) as pipeline:
        with anyio.fail_after(5):
            await pipeline.submit_and_wait(submission)
        stored_on_return = _rows(sqlite_store, "measurements")

    assert stored_on_return == 2
    assert inner == [2]  # the sender's own callback still runs


async def test_historical_submissions_are_evaluated_with_live_false(
    sqlite_store: SqliteStore,
) -> None:
    evaluator = RecordingEvaluator()
    old = [measurement(0), measurement(1)]
    new = [measurement(2)]

    async with running(_pipeline(sqlite_store, evaluator)) as pipeline:
        await pipeline.submit(Submission(measurements=old, live=False))
        await pipeline.submit(Submission(measurements=new))
        await pipeline.drain()

    assert sorted(evaluator.calls, key=lambda call: call[1]) == [(old, False), (new, True)]


async def test_a_failing_evaluator_does_not_stop_the_pipeline(
    sqlite_store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    class Exploding(RecordingEvaluator):
        async def evaluate(self, measurements: Sequence[Measurement], live: bool) -> None:
            await super().evaluate(measurements, live)
            if len(self.calls) == 1:
                raise ValueError("bug in the engine")

    evaluator = Exploding()

    async with running(_pipeline(sqlite_store, evaluator)) as pipeline:
        await pipeline.submit_and_wait(Submission(measurements=[measurement(0)]))
        await pipeline.submit_and_wait(Submission(measurements=[measurement(1)]))
        await pipeline.drain()

    assert evaluator.evaluated == [measurement(0), measurement(1)]
    assert await sqlite_store.count_measurements() == 2
    assert "SPC evaluation of 1 measurements failed" in caplog.text


class RecordingVerdictHook:
    """The pipeline's ``on_verdicts`` hook, recording (ingest ids, live) per call."""

    def __init__(self, fail_first: bool = False) -> None:
        self.calls: list[tuple[list[str], bool]] = []
        self.fail_first = fail_first

    async def __call__(self, verdicts: Sequence[InspectionVerdict], live: bool) -> None:
        self.calls.append(([v.ingest_id for v in verdicts], live))
        if self.fail_first and len(self.calls) == 1:
            raise ValueError("bug in the attribute chart")


async def test_stored_verdicts_are_told_historical_first_before_the_sender_hears(
    sqlite_store: SqliteStore,
) -> None:
    pipeline = _pipeline(sqlite_store, RecordingEvaluator())
    hook = RecordingVerdictHook()
    pipeline.on_verdicts = hook
    # queued before the pipeline runs: one flush takes both
    await pipeline.submit(Submission(verdicts=[verdict(2)]))
    await pipeline.submit(Submission(verdicts=[verdict(0), verdict(1)], live=False))

    async with running(pipeline):
        await pipeline.drain()
        assert hook.calls == [(["v-0", "v-1"], False), (["v-2"], True)]
        await pipeline.submit_and_wait(Submission(verdicts=[verdict(3)]))
        assert hook.calls[-1] == (["v-3"], True)  # told before submit_and_wait returned


async def test_a_resent_batch_of_verdicts_stores_nothing_and_is_not_told(
    sqlite_store: SqliteStore,
) -> None:
    pipeline = _pipeline(sqlite_store, RecordingEvaluator())
    hook = RecordingVerdictHook()
    pipeline.on_verdicts = hook

    async with running(pipeline):
        await pipeline.submit_and_wait(Submission(verdicts=[verdict(0), verdict(1)]))
        await pipeline.submit_and_wait(Submission(verdicts=[verdict(0), verdict(1)]))

    assert hook.calls == [(["v-0", "v-1"], True)]


async def test_a_failing_verdict_hook_does_not_stop_the_pipeline(
    sqlite_store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline = _pipeline(sqlite_store, RecordingEvaluator())
    hook = RecordingVerdictHook(fail_first=True)
    pipeline.on_verdicts = hook

    async with running(pipeline):
        with anyio.fail_after(5):
            await pipeline.submit_and_wait(Submission(verdicts=[verdict(0)]))
            await pipeline.submit_and_wait(Submission(verdicts=[verdict(1)]))

    assert [ids for ids, _ in hook.calls] == [["v-0"], ["v-1"]]
    assert await sqlite_store.count_verdicts() == 2
    assert "the verdict hook failed on 1 verdicts" in caplog.text


class FlakyStore(SqliteStore):
    """The real SQLite store, refusing the first ``failures`` calls of one method."""

    def __init__(self, path: Path, failures: int, method: str = "add_measurements") -> None:
        super().__init__(path)
        self.failures_left = failures
        self.method = method

    def _maybe_fail(self, method: str) -> None:
        if method == self.method and self.failures_left > 0:
            self.failures_left -= 1
            raise StoreError("SQLite: disk I/O error (simulated)")

    async def add_measurements(self, items: Sequence[Measurement]) -> list[Measurement]:
        self._maybe_fail("add_measurements")
        return await super().add_measurements(items)

    async def add_verdicts(self, items: Sequence[InspectionVerdict]) -> int:
        self._maybe_fail("add_verdicts")
        return await super().add_verdicts(items)


async def test_a_failing_store_is_retried_and_reported_degraded_until_it_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = FlakyStore(tmp_path / "flaky.sqlite3", failures=3)
    await store.open()
    evaluator = RecordingEvaluator()
    acknowledged: list[int] = []
    letter = DeadLetter(T0, "mqtt:t", "payload: not valid JSON", "{")
    try:
        async with running(_pipeline(store, evaluator)) as pipeline:
            await pipeline.submit(
                Submission(
                    measurements=[measurement(0), measurement(1)],
                    verdicts=[verdict(0)],
                    dead_letters=[letter],
                    on_stored=lambda: acknowledged.append(1),
                )
            )
            await wait_until(lambda: pipeline.degraded, what="degraded")
            assert acknowledged == []  # nothing is acknowledged while the store refuses
            await pipeline.submit(Submission(measurements=[measurement(1), measurement(2)]))
            await wait_until(lambda: not pipeline.degraded, what="recovery")
            await pipeline.drain()

        assert store.failures_left == 0
        assert acknowledged == [1]
        assert await store.recent_measurements("c1", 10) == [measurement(i) for i in range(3)]
        assert await store.count_verdicts() == 1
        assert await store.list_dead_letters() == [letter]
        assert sorted(m.ingest_id for m in evaluator.evaluated) == ["m-0", "m-1", "m-2"]
        assert "store write failed" in caplog.text
    finally:
        await store.close()


async def test_measurements_committed_before_a_later_write_failed_are_still_evaluated(
    tmp_path: Path,
) -> None:
    # add_measurements commits, then add_verdicts fails: the retry finds the measurements
    # already stored, but they were never evaluated and must be now.
    store = FlakyStore(tmp_path / "flaky.sqlite3", failures=1, method="add_verdicts")
    await store.open()
    evaluator = RecordingEvaluator()
    try:
        async with running(_pipeline(store, evaluator)) as pipeline:
            await pipeline.submit_and_wait(
                Submission(measurements=[measurement(0)], verdicts=[verdict(0)])
            )

        assert await store.count_measurements() == 1
        assert await store.count_verdicts() == 1
        assert evaluator.evaluated == [measurement(0)]
    finally:
        await store.close()


async def test_the_flush_result_counts_dead_letters_stored_before_a_retry(
    tmp_path: Path,
) -> None:
    store = FlakyStore(tmp_path / "flaky.sqlite3", failures=1)
    await store.open()
    observer = RecordingObserver()
    letter = DeadLetter(T0, "mqtt:t", "payload: not valid JSON", "{")
    try:
        async with running(_pipeline(store, RecordingEvaluator(), observer=observer)) as p:
            await p.submit_and_wait(
                Submission(measurements=[measurement(0)], dead_letters=[letter])
            )

        assert await store.list_dead_letters() == [letter]
        [result] = observer.results
        assert result.measurements == [measurement(0)]
        assert result.dead_letters == [letter]
    finally:
        await store.close()


class _SlowEvaluator(RecordingEvaluator):
    """Evaluation that takes a while, so an early answer would be visible."""

    async def evaluate(self, measurements: Sequence[Measurement], live: bool) -> None:
        await anyio.sleep(0.2)
        await super().evaluate(measurements, live)


@pytest.mark.anyio
async def test_submit_and_wait_returns_only_after_the_points_are_evaluated(
    sqlite_store: SqliteStore,
) -> None:
    # The HTTP push answers through submit_and_wait: a client that reads the status next
    # must see its own points charted, not a state from before them.
    evaluator = _SlowEvaluator()
    pipeline = Pipeline(sqlite_store, {measurement(0).characteristic}, evaluator)
    async with running(pipeline):
        await pipeline.submit_and_wait(Submission(measurements=[measurement(0)]))
        assert [m.ingest_id for m in evaluator.evaluated] == [measurement(0).ingest_id]


class BlockingEvaluator(RecordingEvaluator):
    """Holds the pipeline in its first evaluation until released."""

    def __init__(self) -> None:
        super().__init__()
        self.release = anyio.Event()

    async def evaluate(self, measurements: Sequence[Measurement], live: bool) -> None:
        await self.release.wait()
        await super().evaluate(measurements, live)


async def test_a_foreign_thread_submits_without_waiting_until_the_queue_is_full(
    sqlite_store: SqliteStore,
) -> None:
    evaluator = BlockingEvaluator()
    pipeline = Pipeline(sqlite_store, KNOWN, evaluator, max_queued=2)
    total = MAX_IN_TRANSIT * 10
    returned: list[int] = []

    def producer() -> None:  # paho's thread, say: one submission per message, in order
        for i in range(total):
            pipeline.submit_from_thread(Submission(measurements=[measurement(i)]))
            returned.append(i)

    async with running(pipeline):
        thread = threading.Thread(target=producer, daemon=True)
        thread.start()
        await wait_until(lambda: len(returned) >= MAX_IN_TRANSIT, what="calls not waiting")
        await anyio.sleep(0.3)
        # flow control: one in evaluation, two queued, the rest on their way, then it waits
        assert thread.is_alive()
        assert MAX_IN_TRANSIT <= len(returned) <= 1 + 2 + MAX_IN_TRANSIT + 1
        evaluator.release.set()
        await wait_until(lambda: not thread.is_alive(), what="the producer to finish")
        await pipeline.drain()

    assert returned == list(range(total))
    # charted in the order sent (a task per submission let later ones overtake at the
    # full queue), and every one stored
    assert [m.ingest_id for m in evaluator.evaluated] == [f"m-{i}" for i in range(total)]
    assert await sqlite_store.count_measurements() == total
