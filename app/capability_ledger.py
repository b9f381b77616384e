"""Hourly capability sums of every characteristic: Cpk over any grading period, cheaply.

The monitor hands the ledger every newly stored good value it charts. The ledger adds
it to its characteristic's hour (UTC): n, Σ(x - shift), Σ(x - shift)², the dispersion
statistic of the chart (the moving range to the previous value, as the I-MR chart draws
it; or the range / standard deviation of each completed subgroup, attributed to the hour
of its last value) and whether it lay beyond a specification limit then in force.
Increments are flushed to the store every few seconds, where they add up; the grades
read the sums of the period's hours (``spc.capability_sums``).

What a crash costs: the increments of the last flush interval (the measurements
themselves are stored), and the moving range or partial subgroup that spans a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

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


class CapabilityLedger:
    """Accumulates hourly capability sums in memory and flushes them to the store."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._pending: dict[tuple[str, datetime, float], _Sums] = {}
        self._chains: dict[str, _Chain] = {}

    def observe(
        self, records: Mapping[str, CharacteristicRecord], items: Sequence[Measurement]
    ) -> None:
        """Add newly stored good values, in the order they were charted.

        Values of characteristics missing from ``records`` are skipped.
        """
        for m in items:
            record = records.get(m.characteristic)
            if record is None:
                continue
            chain = self._chains.get(m.characteristic)
            if chain is None:
                chain = self._chains[m.characteristic] = _Chain(shift_of(record, m.value))
            x = float(m.value)
            acc = self._acc(m.characteristic, hour_of(m.time), chain.shift)
            d = x - chain.shift
            acc.n += 1
            acc.sum_d += d
            acc.sum_d2 += d * d
            if (record.lsl is not None and x < record.lsl) or (
                record.usl is not None and x > record.usl
            ):
                acc.out_of_spec += 1
            self._dispersion(record, chain, acc, x)

    def forget(self, characteristic: str) -> None:
        """Drop a characteristic's chain (deleted or redefined): its next value starts afresh.

        Its unflushed sums stay and are flushed: they describe values that were stored.
        """
        self._chains.pop(characteristic, None)

    async def flush(self) -> int:
        """Write the increments to the store; on a store error keep them for next time.

        Returns the number of buckets written.
        """
        if not self._pending:
            return 0
        pending, self._pending = self._pending, {}
        items = [
            CapabilityBucket(char, start, acc.frozen(shift))
            for (char, start, shift), acc in pending.items()
        ]
        try:
            await self._store.add_capability_sums(items)
        except StoreError as exc:
            for b in items:  # values may have come meanwhile: add, do not overwrite
                self._acc(b.characteristic, b.start, b.sums.shift).add(b.sums)
            _log.warning("capability sums kept in memory, not flushed: %s", exc)
            return 0
        return len(items)

    async def totals(self, start: datetime, end: datetime) -> dict[str, CapabilitySums]:
        """Per characteristic, the sums of the hours starting in ``[start, end)``.

        The store's and the unflushed increments together. Raises ``StoreError``.
        """
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
