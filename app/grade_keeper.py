"""Keeps the plant's grades fresh: recomputed every minute for dashboards and Prometheus,
snapshotted to the store every hour for the trend, and every change of grade logged as
an event (the hook the alerts will notify from).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from app.grading import PlantGrades, grade_plant
from app.monitor import Monitor
from app.periods import parse_period
from ingest.errors import StoreError
from ingest.store import GradeSnapshot, Store

_log = logging.getLogger(__name__)


class GradeKeeper:
    """The latest grades, a snapshot every ``snapshot_s`` and the grade-change events."""

    def __init__(
        self,
        monitor: Monitor,
        store: Store,
        plant_id: str,
        period: str,
        refresh_s: float,
        snapshot_s: float,
    ) -> None:
        self._monitor = monitor
        self._store = store
        self._plant_id = plant_id
        self.period = period
        self._refresh_s = refresh_s
        self._snapshot_s = snapshot_s
        self.latest: PlantGrades | None = None
        self.changes: list[tuple[datetime, str, str, int | None, int | None]] = []
        # told (level, entity, old, new, at) for each change; must not block or raise
        self.on_change: Callable[[str, str, int | None, int | None, datetime], None] | None = None
        self._last_grade: dict[tuple[str, str], int | None] = {}

    async def refresh(self, now: datetime | None = None) -> PlantGrades:
        """Recompute every grade; record (and log) each entity whose grade changed."""
        now = now or datetime.now(UTC)
        grades = await grade_plant(
            self._monitor, self._store, self._plant_id, parse_period(self.period, now), now
        )
        for key, graded in grades.entities.items():
            new = graded.result.grade
            if key in self._last_grade and self._last_grade[key] != new:
                old = self._last_grade[key]
                self.changes.append((now, key[0], key[1], old, new))
                _log.warning("grade change: %s %s from %s to %s", *key, old, new)
                if self.on_change is not None:
                    try:
                        self.on_change(key[0], key[1], old, new, now)
                    except Exception:
                        _log.exception("grade change hook failed")
            self._last_grade[key] = new
        del self.changes[:-1000]  # bounded: the store keeps the history
        self.latest = grades
        return grades

    async def snapshot(self, grades: PlantGrades) -> int:
        """Store one snapshot per entity; returns how many."""
        items = [
            GradeSnapshot(
                grades.computed_at,
                level,
                entity,
                g.result.grade,
                g.result.limiting.value if g.result.limiting else None,
                # an unbounded sigma level (no defect) is null, as in the API: JSON,
                # and PostgreSQL's jsonb, have no infinity
                {m.metric.value: _finite(m.value) for m in g.result.metrics},
            )
            for (level, entity), g in grades.entities.items()
        ]
        await self._store.add_grade_snapshots(items)
        return len(items)

    async def run(self) -> None:
        """Refresh every ``refresh_s``; snapshot every ``snapshot_s`` (first after one)."""
        loop = asyncio.get_running_loop()
        next_snapshot = loop.time() + self._snapshot_s
        while True:
            try:
                grades = await self.refresh()
                if loop.time() >= next_snapshot:
                    await self.snapshot(grades)
                    next_snapshot = loop.time() + self._snapshot_s
            except StoreError as exc:  # the database away: try again next round
                _log.warning("grades not refreshed: %s", exc)
            except Exception:  # a bug must not stop the grades for good: log, go on
                _log.exception("grades not refreshed")
            await asyncio.sleep(self._refresh_s)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


class GradeCollector(Collector):
    """``spc_grade`` and ``spc_grade_metric`` gauges from the latest refresh."""

    def __init__(self, keeper: GradeKeeper) -> None:
        self._keeper = keeper

    def collect(self) -> Iterator[GaugeMetricFamily]:
        grade = GaugeMetricFamily(
            "spc_grade",
            "Quality grade 1..5 (absent while any metric lacks data)",
            labels=["level", "entity"],
        )
        value = GaugeMetricFamily(
            "spc_grade_metric",
            "Metric behind the grade (fractions for yields and loss rates)",
            labels=["level", "entity", "metric"],
        )
        latest = self._keeper.latest
        if latest is not None:
            for (level, entity), g in latest.entities.items():
                if g.result.grade is not None:
                    grade.add_metric([level, entity], g.result.grade)
                for m in g.result.metrics:
                    if m.value is not None:
                        value.add_metric([level, entity, m.metric.value], m.value)
        yield from (grade, value)
