"""Nothing lost while the database is away: an on-disk spool in front of the store.

``SpooledStore`` wraps a store. When a write of measurements, verdicts, cost events or
dead letters fails because the database is unreachable (``StoreUnavailable``), the batch
is appended to the spool (one file per batch, fsync'd, then renamed into place, so a
crash leaves either the whole batch or nothing) and the call succeeds. A background task
replays the spool in order once the database answers again, several files per database
call so that it catches up with a live stream, and deletes files only after their
transaction committed. While anything is spooled, new batches are spooled behind it, so
the database receives them in the order they arrived.

A crash during replay loses nothing (the files are still there) and doubles no
measurement, verdict or cost event: the store's writes are idempotent on each record's
key. Dead letters have no key; a crash between commit and deletion can store one twice.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import re
from collections import OrderedDict, deque
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any, TextIO

from ingest.errors import StoreError, StoreRejected, StoreUnavailable
from ingest.model import CostEvent, DeadLetter, InspectionVerdict, Measurement
from ingest.spool_codec import KINDS, Record, decode, encode
from ingest.store import Store
from ingest.store_proxy import StoreProxy

_log = logging.getLogger(__name__)
_BATCH_FILE = re.compile(r"^(\d{12})\.([a-z_]+)\.json$")
REPLAY_MAX_FILES = 50  # files merged into one database call while catching up
REPLAY_MAX_ROWS = 20_000
SEEN_KEYS = 200_000  # keys of spooled records remembered, to chart a redelivery once


class Spool:
    """An append-only directory of batch files ``<seq>.<kind>.json``, replayed in seq order.

    The queue of pending files lives in memory (filled from the directory at start), so
    no call lists the directory however long the outage.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.rejected = directory / "rejected"
        directory.mkdir(parents=True, exist_ok=True)
        self._lock_file = _lock_exclusively(directory / ".lock")
        found = sorted(p for p in directory.iterdir() if _BATCH_FILE.match(p.name))
        self._queue: deque[tuple[Path, int]] = deque((p, _rows_in(p)) for p in found)
        self._next = max((_seq(p) for p, _ in self._queue), default=0) + 1
        for leftover in directory.glob(".*.tmp"):  # a write the last crash interrupted
            leftover.unlink(missing_ok=True)

    @property
    def rows(self) -> int:
        return sum(n for _, n in self._queue)

    def __len__(self) -> int:
        return len(self._queue)

    def close(self) -> None:
        """Release the directory for another process."""
        self._lock_file.close()

    def pending(self) -> list[Path]:
        return [p for p, _ in self._queue]

    def append(self, kind: str, records: Sequence[Record]) -> None:
        """Write one batch durably; raises ``StoreError`` if the disk refuses."""
        name = f"{self._next:012d}.{kind}.json"
        tmp = self.directory / f".{name}.tmp"
        # ASCII JSON: any string the model holds (even a lone surrogate) round-trips
        body = json.dumps({"kind": kind, "rows": encode(records)})
        try:
            with open(tmp, "w", encoding="ascii") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.directory / name)
            _fsync_dir(self.directory)
        except OSError as exc:
            msg = f"cannot spool {len(records)} {kind} to {self.directory}: {exc}"
            raise StoreError(msg) from exc
        self._next += 1
        self._queue.append((self.directory / name, len(records)))

    def head(self, max_files: int, max_rows: int) -> tuple[str, list[Path], list[Record]]:
        """The oldest files of one kind, merged (at least one file, within the bounds).

        Raises if the oldest file cannot be read; a later unreadable file ends the merge
        (it is the head, and raises, next time).
        """
        kind = _kind(self._queue[0][0])
        paths: list[Path] = []
        records: list[Record] = []
        for path, n in self._queue:
            if _kind(path) != kind or len(paths) >= max_files:
                break
            if paths and len(records) + n > max_rows:
                break
            try:
                batch = self.read(path)
            except Exception:
                if not paths:
                    raise
                break
            paths.append(path)
            records.extend(batch)
        return kind, paths, records

    def read(self, path: Path) -> list[Record]:
        data = json.loads(path.read_text(encoding="ascii"))
        return decode(data["kind"], data["rows"])

    def remove(self, paths: Sequence[Path]) -> None:
        """Forget replayed files (they are the queue's head, in order)."""
        for path in paths:
            assert self._queue[0][0] == path, "the spool replays in order"
            path.unlink(missing_ok=True)
            self._queue.popleft()
        _fsync_dir(self.directory)

    def reject(self, path: Path) -> Path:
        """Set aside a batch that can never be stored (kept for an engineer)."""
        self.rejected.mkdir(exist_ok=True)
        target = self.rejected / path.name
        suffix = 1
        while target.exists():  # numbering restarts once the spool is empty
            target = self.rejected / f"{path.stem}.{suffix}.json"
            suffix += 1
        assert self._queue[0][0] == path, "the spool rejects its head only"
        os.replace(path, target)
        _fsync_dir(self.rejected)
        self._queue.popleft()
        return target


class SpooledStore(StoreProxy):
    """A ``Store`` whose record writes survive the database being unavailable.

    Every other method goes straight to the wrapped store. ``replay_backoff`` is the
    first and the longest wait (s) between replay attempts while the database is down; a
    write the database has not answered within ``write_timeout_s`` is spooled; ``open``
    replays what a previous run left (for at most ``open_drain_s``) before it
    returns, so that state restored from the database is complete.
    """

    def __init__(
        self,
        inner: Store,
        spool: Spool,
        replay_backoff: tuple[float, float] = (0.5, 10.0),
        open_drain_s: float = 60.0,
        write_timeout_s: float = 10.0,
    ) -> None:
        super().__init__(inner)
        self.spool = spool
        self._write_timeout_s = write_timeout_s
        self._abandoned: set[asyncio.Future[Any]] = set()
        self._backoff = replay_backoff
        self._open_drain_s = open_drain_s
        self._append_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._replayer: asyncio.Task[None] | None = None
        self._seen: OrderedDict[Hashable, None] = OrderedDict()
        self.spooled_total = 0  # batches spooled since start, for metrics

    @property
    def degraded(self) -> bool:
        """True while batches wait in the spool."""
        return len(self.spool) > 0

    async def open(self) -> None:
        await self.inner.open()
        self._start_replayer()
        if len(self.spool):
            _log.warning("%d spooled rows from a previous run are replayed", self.spool.rows)
            if not await self.drain(self._open_drain_s):
                _log.warning("%d rows still spooled; replay goes on", self.spool.rows)

    async def close(self) -> None:
        tasks = [*self._abandoned, *([self._replayer] if self._replayer else [])]
        for task in tasks:
            task.cancel()
        if tasks:  # bounded: an abandoned write may be stuck on a stalled server
            await asyncio.wait(tasks, timeout=5.0)
        self._replayer = None
        await self.inner.close()
        self.spool.close()

    async def drain(self, timeout_s: float) -> bool:
        """Wait until the spool is empty (True) or ``timeout_s`` s pass (False)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while len(self.spool):
            self._start_replayer()
            self._wake.set()
            if loop.time() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    # spooled writes ------------------------------------------------------------------
    async def add_measurements(self, items: Sequence[Measurement]) -> list[Measurement]:
        stored = await self._write("measurements", items)
        if stored is not None:
            return list(stored)
        return self._unseen(items, lambda m: ("m", m.characteristic, m.time, m.ingest_id))

    async def add_verdicts(self, items: Sequence[InspectionVerdict]) -> int:
        stored = await self._write("verdicts", items)
        return len(items) if stored is None else int(stored)

    async def add_cost_events(self, items: Sequence[CostEvent]) -> int:
        stored = await self._write("cost_events", items)
        return len(items) if stored is None else int(stored)

    async def add_dead_letters(self, items: Sequence[DeadLetter]) -> None:
        await self._write("dead_letters", items)

    async def _write(self, kind: str, items: Sequence[Any]) -> Any:
        """The wrapped store's answer, or None when the batch went to the spool.

        A spooled batch counts as stored: its records are charted now and reach the
        database on replay (where a record the database already had is skipped).
        """
        if not items:
            return await _send(self.inner, kind, items)
        if not len(self.spool):
            try:
                return await self._send_within(kind, items, self._write_timeout_s)
            except StoreUnavailable as exc:
                _log.warning("database unavailable, spooling to disk: %s", exc)
        async with self._append_lock:  # file numbering; never held across a database call
            self.spool.append(kind, items)
        self.spooled_total += 1
        self._start_replayer()
        self._wake.set()
        return None

    async def _send_within(self, kind: str, items: Sequence[Any], timeout_s: float) -> Any:
        """Send, or give up after ``timeout_s`` without waiting for the attempt to unwind.

        A stalled server (no error, no answer) must not hold ingest: the driver's own
        cancellation can wait half a minute for the server. The abandoned attempt is
        cancelled in the background; should it commit after all, the replay of the
        spooled copy skips what is already stored.
        """
        attempt = asyncio.ensure_future(_send(self.inner, kind, items))
        done, _ = await asyncio.wait({attempt}, timeout=timeout_s)
        if attempt in done:
            return attempt.result()
        attempt.cancel()
        self._abandoned.add(attempt)
        attempt.add_done_callback(self._abandoned.discard)
        raise StoreUnavailable(f"the database did not answer within {timeout_s:g} s")

    def _unseen(self, items: Sequence[Measurement], key: Any) -> list[Measurement]:
        """Spooled measurements not spooled before (a redelivery is charted once)."""
        fresh = []
        for m in items:
            k = key(m)
            if k not in self._seen:
                self._seen[k] = None
                fresh.append(m)
        while len(self._seen) > SEEN_KEYS:
            self._seen.popitem(last=False)
        return fresh

    # replay --------------------------------------------------------------------------
    def _start_replayer(self) -> None:
        if self._replayer is None or self._replayer.done():
            self._replayer = asyncio.create_task(self._replay_forever(), name="spool-replay")

    async def _replay_forever(self) -> None:
        wait = self._backoff[0]
        while True:
            await self._wake.wait()
            self._wake.clear()
            while len(self.spool):
                try:
                    await self._replay_head()
                    wait = self._backoff[0]
                except StoreError as exc:  # unreachable, or a passing refusal: retry later
                    _log.warning("spool replay waits %.1f s: %s", wait, exc)
                    await asyncio.sleep(wait)
                    wait = min(wait * 2, self._backoff[1])
            self._seen.clear()
            _log.info("spool replayed: the database is up to date")

    async def _replay_head(self) -> None:
        try:
            kind, paths, records = self.spool.head(REPLAY_MAX_FILES, REPLAY_MAX_ROWS)
        except Exception as exc:  # an unreadable file (damaged, or from another version)
            self._set_aside(self.spool.pending()[0], exc)
            return
        try:
            await _send(self.inner, kind, records)
        except (StoreUnavailable, asyncio.CancelledError):
            raise
        except StoreRejected as exc:
            if len(paths) > 1:  # find the culprit: retry the files one by one
                await self._replay_one_by_one(kind, paths)
                return
            self._set_aside(paths[0], exc)
            return
        except StoreError:
            raise  # a passing refusal (permissions, a read-only standby): retried later
        except Exception as exc:  # records the store cannot even encode: never retried
            self._set_aside(paths[0], exc)
            return
        self.spool.remove(paths)

    async def _replay_one_by_one(self, kind: str, paths: list[Path]) -> None:
        for path in paths:
            try:
                await _send(self.inner, kind, self.spool.read(path))
            except StoreRejected as exc:
                self._set_aside(path, exc)
                continue
            self.spool.remove([path])

    def _set_aside(self, path: Path, exc: Exception) -> None:
        target = self.spool.reject(path)
        _log.error("spooled batch can never be stored, kept at %s: %s", target, exc)


async def _send(store: Store, kind: str, records: Sequence[Any]) -> Any:
    if kind == "measurements":
        return await store.add_measurements(records)
    if kind == "verdicts":
        return await store.add_verdicts(records)
    if kind == "cost_events":
        return await store.add_cost_events(records)
    if kind == "dead_letters":
        return await store.add_dead_letters(records)
    raise StoreRejected(f"unknown spool record kind {kind!r} (known: {', '.join(KINDS)})")


def _lock_exclusively(path: Path) -> TextIO:
    """Hold an exclusive lock on ``path`` for the life of the process (or this spool).

    Two services sharing one spool directory would overwrite each other's batch files.
    """
    handle = open(path, "a")  # noqa: SIM115 - held open on purpose: the lock lives with it
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        handle.close()
        raise StoreError(
            f"the spool {path.parent} is in use by another process; give each service "
            "its own SPCMON_DATA_DIR or SPCMON_DATABASE__SPOOL_DIR"
        ) from exc
    return handle


def _seq(path: Path) -> int:
    return int(path.name.split(".", 1)[0])


def _kind(path: Path) -> str:
    return path.name.split(".")[1]


def _rows_in(path: Path) -> int:
    try:
        return len(json.loads(path.read_text(encoding="ascii"))["rows"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
