"""Nothing lost while the database is away: an on-disk spool in front of the store.

``SpooledStore`` wraps a store. When a write of measurements, verdicts, cost events or
dead letters fails because the database is unreachable (``StoreUnavailable``), the batch
is appended to the spool (one file per batch, fsync'd, then renamed into place, so a
crash leaves either the whole batch or nothing) and the call succeeds. A background task
replays the spool in order once the database answers again, deleting each batch file only
after its transaction committed. While anything is spooled, new batches are spooled
behind it, so the database receives them in the order they arrived.

A crash during replay loses nothing (the file is still there) and doubles nothing: the
store's writes are idempotent on each record's ingest id.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ingest.errors import StoreError, StoreUnavailable
from ingest.model import CostEvent, DeadLetter, InspectionVerdict, Measurement
from ingest.spool_codec import KINDS, Record, decode, encode
from ingest.store import Store
from ingest.store_proxy import StoreProxy

_log = logging.getLogger(__name__)


class Spool:
    """An append-only directory of batch files ``<seq>.<kind>.json``, replayed in seq order."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.rejected = directory / "rejected"
        directory.mkdir(parents=True, exist_ok=True)
        self._next = max((_seq(p) for p in self.pending()), default=0) + 1
        self.rows = sum(_rows_in(p) for p in self.pending())

    def pending(self) -> list[Path]:
        return sorted(self.directory.glob("*.json"), key=_seq)

    def append(self, kind: str, records: Sequence[Record]) -> None:
        """Write one batch durably; raises ``StoreError`` if the disk refuses."""
        name = f"{self._next:012d}.{kind}.json"
        tmp = self.directory / f".{name}.tmp"
        body = json.dumps({"kind": kind, "rows": encode(records)}, ensure_ascii=False)
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.directory / name)
            _fsync_dir(self.directory)
        except OSError as exc:
            msg = f"cannot spool {len(records)} {kind} to {self.directory}: {exc}"
            raise StoreError(msg) from exc
        self._next += 1
        self.rows += len(records)

    def read(self, path: Path) -> tuple[str, list[Record]]:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data["kind"], decode(data["kind"], data["rows"])

    def remove(self, path: Path, rows: int) -> None:
        path.unlink()
        _fsync_dir(self.directory)
        self.rows -= rows

    def reject(self, path: Path, rows: int) -> Path:
        """Set aside a batch the database refuses for good (kept for an engineer)."""
        self.rejected.mkdir(exist_ok=True)
        target = self.rejected / path.name
        os.replace(path, target)
        self.rows -= rows
        return target


class SpooledStore(StoreProxy):
    """A ``Store`` whose record writes survive the database being unavailable.

    Every other method goes straight to the wrapped store. ``replay_backoff`` is the
    first and the longest wait (s) between replay attempts while the database is down.
    """

    def __init__(
        self, inner: Store, spool: Spool, replay_backoff: tuple[float, float] = (0.5, 10.0)
    ) -> None:
        super().__init__(inner)
        self.spool = spool
        self._backoff = replay_backoff
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._replayer: asyncio.Task[None] | None = None
        self.spooled_total = 0  # batches spooled since start, for metrics

    @property
    def degraded(self) -> bool:
        """True while batches wait in the spool."""
        return self.spool.rows > 0 or bool(self.spool.pending())

    async def open(self) -> None:
        await self.inner.open()
        self._replayer = asyncio.create_task(self._replay_forever(), name="spool-replay")
        if self.spool.pending():
            _log.warning("%d spooled rows from a previous run will be replayed", self.spool.rows)
            self._wake.set()

    async def close(self) -> None:
        if self._replayer is not None:
            self._replayer.cancel()
            await asyncio.gather(self._replayer, return_exceptions=True)
            self._replayer = None
        await self.inner.close()

    async def drain(self, timeout_s: float) -> bool:
        """Wait until the spool is empty (True) or ``timeout_s`` s pass (False)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.spool.pending():
            self._wake.set()
            if loop.time() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    # spooled writes ------------------------------------------------------------------
    async def add_measurements(self, items: Sequence[Measurement]) -> list[Measurement]:
        stored = await self._write("measurements", items)
        return list(items) if stored is None else stored

    async def add_verdicts(self, items: Sequence[InspectionVerdict]) -> int:
        stored = await self._write("verdicts", items)
        return len(items) if stored is None else stored

    async def add_cost_events(self, items: Sequence[CostEvent]) -> int:
        stored = await self._write("cost_events", items)
        return len(items) if stored is None else stored

    async def add_dead_letters(self, items: Sequence[DeadLetter]) -> None:
        await self._write("dead_letters", items)

    async def _write(self, kind: str, items: Sequence[Any]) -> Any:
        """The wrapped store's answer, or None when the batch went to the spool.

        A spooled batch counts as stored: its records are charted now and reach the
        database on replay (a record the database already had is then skipped there).
        """
        if not items:
            return await _send(self.inner, kind, items)
        async with self._lock:
            if not self.spool.pending():
                try:
                    return await _send(self.inner, kind, items)
                except StoreUnavailable as exc:
                    _log.warning("database unavailable, spooling to disk: %s", exc)
            self.spool.append(kind, items)
            self.spooled_total += 1
            self._wake.set()
            return None

    # replay --------------------------------------------------------------------------
    async def _replay_forever(self) -> None:
        wait = self._backoff[0]
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.spool.pending():
                try:
                    await self._replay_one()
                    wait = self._backoff[0]
                except StoreUnavailable:
                    await asyncio.sleep(wait)
                    wait = min(wait * 2, self._backoff[1])
            _log.info("spool replayed: the database is up to date")

    async def _replay_one(self) -> None:
        async with self._lock:
            pending = self.spool.pending()
            if not pending:
                return
            path = pending[0]
            kind, records = self.spool.read(path)
            try:
                await _send(self.inner, kind, records)
            except StoreUnavailable:
                raise
            except StoreError as exc:  # refused for good: keep it aside, go on
                target = self.spool.reject(path, len(records))
                _log.error("spooled batch refused by the database, kept at %s: %s", target, exc)
                return
            self.spool.remove(path, len(records))


async def _send(store: Store, kind: str, records: Sequence[Any]) -> Any:
    if kind == "measurements":
        return await store.add_measurements(records)
    if kind == "verdicts":
        return await store.add_verdicts(records)
    if kind == "cost_events":
        return await store.add_cost_events(records)
    if kind == "dead_letters":
        return await store.add_dead_letters(records)
    raise StoreError(f"unknown spool record kind {kind!r} (known: {', '.join(KINDS)})")


def _seq(path: Path) -> int:
    return int(path.name.split(".", 1)[0])


def _rows_in(path: Path) -> int:
    try:
        return len(json.loads(path.read_text(encoding="utf-8"))["rows"])
    except (OSError, ValueError, KeyError):
        return 0


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
