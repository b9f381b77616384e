"""Shared pieces for the pipeline and collector tests: a recording evaluator, a running
pipeline, and polling with a deadline instead of fixed sleeps."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

import anyio
import anyio.lowlevel

from ingest.model import Measurement
from ingest.pipeline import Pipeline


class RecordingEvaluator:
    """The Evaluator port, recording each call as (measurements, live)."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[Measurement], bool]] = []

    async def evaluate(self, measurements: Sequence[Measurement], live: bool) -> None:
        self.calls.append((list(measurements), live))

    @property
    def evaluated(self) -> list[Measurement]:
        return [m for batch, _ in self.calls for m in batch]


@asynccontextmanager
async def running(pipeline: Pipeline) -> AsyncIterator[Pipeline]:
    """Run the pipeline in the background for the duration of the block."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(pipeline.run)
        await anyio.lowlevel.checkpoint()  # let run() start so submit_from_thread finds the loop
        try:
            yield pipeline
        finally:
            tg.cancel_scope.cancel()


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]],
    timeout_s: float = 5.0,
    what: str = "condition",
) -> None:
    """Poll ``condition`` (sync or async) every 20 ms until it holds; fail after ``timeout_s``."""
    with anyio.move_on_after(timeout_s):
        while True:
            result = condition()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return
            await anyio.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
