"""Hourly capability sums of every characteristic: Cpk over any grading period, cheaply.

The monitor hands the ledger every newly stored good value it charts. The ledger adds
it to its characteristic's hour (UTC): n, Σ(x - shift), Σ(x - shift)², the dispersion
statistic of the chart (the moving range to the previous value, as the I-MR chart draws
it; or the range / standard deviation of each completed subgroup, attributed to the hour
of its last value) and whether it lay beyond a specification limit then in force.
Increments are flushed to the store every few seconds, where they add up; the grades
read the sums of the period's hours (``spc.capability_sums``).

What a restart costs: the moving range or the one subgroup that spans it (subgroups are
realigned on the stored count, as the engine's). Increments not yet flushed when the
service stops (the database away, say) are kept in a file and taken back at the next
start; a crash loses those of the last flush interval (5 s; the measurements themselves
are stored).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ingest import CharacteristicRecord, Measurement, Store
from ingest.errors import StoreError
from ingest.store import CapabilityBucket
from spc.capability_sums import CapabilitySums, Dispersion

_log = logging.getLogger(__name__)


def dispersion_of(record: CharacteristicRecord) -> Dispersion:
    """What the chart's within sigma rests on: moving ranges, subgroup ranges or sds."""
    if record.subgroup_size == 1:
        return "mr"
    return "sbar" if record.chart == "xbar_s" else "rbar"


def shift_of(record: CharacteristicRecord, first_value: float) -> float:
    """The value sums are taken about: the spec midpoint, else a limit or the target."""
    if record.lsl is not None and record.usl is not None:
        return (record.lsl + record.usl) / 2.0
    for anchor in (record.target, record.usl, record.lsl):
        if anchor is not None:
            return anchor
    return first_value


def hour_of(t: datetime) -> datetime:
    """The start of the UTC hour holding ``t``."""
    return t.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass
class _Sums:
    """Mutable increments of one characteristic, hour and shift."""

    n: int = 0
    sum_d: float = 0.0
    sum_d2: float = 0.0
    disp_sum: float = 0.0
    disp_n: int = 0
    out_of_spec: int = 0

    def frozen(self, shift: float) -> CapabilitySums:
        return CapabilitySums(
            self.n,
            shift,
            self.sum_d,
            self.sum_d2,
            self.disp_sum,
            self.disp_n,
            self.out_of_spec,
        )

    def add(self, sums: CapabilitySums) -> None:
        self.n += sums.n
        self.sum_d += sums.sum_d
        self.sum_d2 += sums.sum_d2
        self.disp_sum += sums.dispersion_sum
        self.disp_n += sums.dispersion_n
        self.out_of_spec += sums.out_of_spec


@dataclass
class _Chain:
    """Where a characteristic's dispersion statistic stands: last value, open subgroup."""

    shift: float
    last: float | None = None
    group: list[float] = field(default_factory=list)
    skip: int = 0  # values that end a subgroup begun before a restart (its R/s is unknown)


class CapabilityLedger:
    """Accumulates hourly capability sums in memory and flushes them to the store."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._pending: dict[tuple[str, datetime, float], _Sums] = {}
        # a flush and a read of the totals one at a time: else a read during the write
        # could see the increments in neither place, or in both
        self._lock = asyncio.Lock()
        self._chains: dict[str, _Chain] = {}
        self._skips: dict[str, int] = {}

    def observe(
        self, records: Mapping[str, CharacteristicRecord], items: Sequence[Measurement]
    ) -> None:
        """Add newly stored good values, in the order they were charted.

        Values of characteristics missing from ``records`` are skipped.
        """
        hour, hour_start, hour_end = None, 0.0, 0.0
        for m in items:
            record = records.get(m.characteristic)
            if record is None:
                continue
            stamp = m.time.timestamp()
            if hour is None or not hour_start <= stamp < hour_end:  # a batch's values share
                hour = hour_of(m.time)  # their hour mostly: its start is built once
                hour_start = hour.timestamp()
                hour_end = hour_start + 3600.0
            chain = self._chains.get(m.characteristic)
            if chain is None:
                chain = self._chains[m.characteristic] = _Chain(
                    shift_of(record, m.value), skip=self._skips.pop(m.characteristic, 0)
                )
            x = float(m.value)
            acc = self._acc(m.characteristic, hour, chain.shift)
            d = x - chain.shift
            acc.n += 1
            acc.sum_d += d
            acc.sum_d2 += d * d
            if (record.lsl is not None and x < record.lsl) or (
                record.usl is not None and x > record.usl
            ):
                acc.out_of_spec += 1
            self._dispersion(record, chain, acc, x)

    def align(self, characteristic: str, charted: int, subgroup_size: int) -> None:
        """Start a characteristic's chain where the engine's subgroups stand: after
        ``charted`` stored values, the values completing the subgroup in progress belong to
        a subgroup whose start was not seen here, so they add no R or s."""
        self._chains.pop(characteristic, None)
        if subgroup_size > 1:
            self._skips[characteristic] = (subgroup_size - charted % subgroup_size) % subgroup_size

    def forget(self, characteristic: str) -> None:
        """Drop a characteristic's chain (deleted or redefined): its next value starts afresh.

        Its unflushed sums stay and are flushed: they describe values that were stored.
        """
        self._chains.pop(characteristic, None)

    async def flush(self) -> int:
        """Write the increments to the store; on a store error keep them for next time.

        Returns the number of buckets written.
        """
        async with self._lock:
            if not self._pending:
                return 0
            pending, self._pending = self._pending, {}
            items = [
                CapabilityBucket(char, start, acc.frozen(shift))
                for (char, start, shift), acc in pending.items()
            ]
            try:
                await self._store.add_capability_sums(items)
            except (StoreError, asyncio.CancelledError) as exc:
                self._restore(items)  # values may have come meanwhile: add, not overwrite
                if isinstance(exc, asyncio.CancelledError):
                    raise
                _log.warning("capability sums kept in memory, not flushed: %s", exc)
                return 0
            return len(items)

    def save_pending(self, path: Path) -> int:
        """Write what could not be flushed (at stop, the database away) to ``path``."""
        rows = [
            {"characteristic": char, "start": start.isoformat(), "shift": shift,
             "n": acc.n, "sum_d": acc.sum_d, "sum_d2": acc.sum_d2, "disp_sum": acc.disp_sum,
             "disp_n": acc.disp_n, "out_of_spec": acc.out_of_spec}
            for (char, start, shift), acc in self._pending.items()
        ]  # fmt: skip
        if rows:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(rows), encoding="utf-8")
            tmp.replace(path)
        return len(rows)

    def load_pending(self, path: Path) -> int:
        """Take back the increments a previous run saved (then the file goes)."""
        if not path.exists():
            return 0
        rows = json.loads(path.read_text(encoding="utf-8"))
        for r in rows:
            sums = CapabilitySums(r["n"], r["shift"], r["sum_d"], r["sum_d2"], r["disp_sum"],
                                  r["disp_n"], r["out_of_spec"])  # fmt: skip
            self._acc(r["characteristic"], datetime.fromisoformat(r["start"]), r["shift"]).add(sums)
        path.unlink()
        return len(rows)

    def _restore(self, items: Sequence[CapabilityBucket]) -> None:
        for b in items:
            self._acc(b.characteristic, b.start, b.sums.shift).add(b.sums)

    async def totals(self, start: datetime, end: datetime) -> dict[str, CapabilitySums]:
        """Per characteristic, the sums of the hours starting in ``[start, end)``.

        The store's and the unflushed increments together. Raises ``StoreError``.
        """
        async with self._lock:
            totals = await self._store.capability_totals(start, end)
            for (char, hour, shift), acc in list(self._pending.items()):
                if start <= hour < end:
                    sums = acc.frozen(shift)
                    previous = totals.get(char)
                    totals[char] = sums if previous is None else previous + sums
            return totals

    async def run(self, interval_s: float) -> None:
        """Flush every ``interval_s`` seconds until cancelled (the owner flushes last)."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.flush()
            except Exception:  # a bug must not end the flushing for good: log, go on
                _log.exception("capability sums not flushed")

    def _acc(self, characteristic: str, hour: datetime, shift: float) -> _Sums:
        key = (characteristic, hour, shift)
        acc = self._pending.get(key)
        if acc is None:
            acc = self._pending[key] = _Sums()
        return acc

    @staticmethod
    def _dispersion(record: CharacteristicRecord, chain: _Chain, acc: _Sums, x: float) -> None:
        if record.subgroup_size == 1:
            if chain.last is not None:
                acc.disp_sum += abs(x - chain.last)
                acc.disp_n += 1
            chain.last = x
            return
        if chain.skip > 0:  # the rest of a subgroup begun before a restart
            chain.skip -= 1
            return
        chain.group.append(x)
        if len(chain.group) < record.subgroup_size:
            return
        group = np.asarray(chain.group)
        chain.group = []
        if record.chart == "xbar_s":
            acc.disp_sum += float(group.std(ddof=1))
        else:
            acc.disp_sum += float(group.max() - group.min())
        acc.disp_n += 1
