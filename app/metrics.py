"""Prometheus metrics: ingest counters from the pipeline, SPC gauges read at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from app.monitor import Monitor
from ingest import FlushResult
from ingest.pipeline import Pipeline


class IngestMetrics:
    """The pipeline's observer: counts what was stored and rejected."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.stored = Counter(
            "spcmon_records_stored",
            "Records newly stored (duplicates excluded)",
            ["kind"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "spcmon_dead_letters",
            "Rejected inputs kept as dead letters",
            ["source"],
            registry=registry,
        )
        self.flush_seconds = Histogram(
            "spcmon_flush_seconds",
            "Time to store and evaluate one pipeline batch",
            registry=registry,
        )

    def flushed(self, result: FlushResult, seconds: float) -> None:
        self.stored.labels("measurement").inc(len(result.measurements))
        self.stored.labels("verdict").inc(result.verdicts)
        self.stored.labels("cost_event").inc(result.cost_events)
        for letter in result.dead_letters:
            self.dead_letters.labels(letter.source.split(":", 1)[0]).inc()
        self.flush_seconds.observe(seconds)


class SpcCollector(Collector):
    """Per-characteristic SPC state, read from the monitor when Prometheus scrapes."""

    def __init__(self, monitor: Monitor, pipeline: Pipeline) -> None:
        self._monitor = monitor
        self._pipeline = pipeline

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        labels = ["characteristic", "line", "process"]
        cpk = GaugeMetricFamily("spcmon_cpk", "Rolling Cpk (within sigma)", labels=labels)
        ppk = GaugeMetricFamily("spcmon_ppk", "Rolling Ppk (overall sigma)", labels=labels)
        last = GaugeMetricFamily("spcmon_last_value", "Last measured value", labels=labels)
        for rec in self._monitor.characteristics:
            lv = [rec.id, rec.line, rec.process]
            cap = self._monitor.capability(rec.id)
            if cap is not None and cap.cpk is not None:
                cpk.add_metric(lv, cap.cpk)
            if cap is not None and cap.ppk is not None:
                ppk.add_metric(lv, cap.ppk)
            point = self._monitor.last.get(rec.id)
            if point is not None:
                last.add_metric(lv, point.value)
        violations = CounterMetricFamily(
            "spcmon_rule_violations",
            "Rule violations seen since start",
            labels=["characteristic", "rule", "chart"],
        )
        for (char_id, rule, chart), count in self._monitor.signal_counts.items():
            violations.add_metric([char_id, rule, chart], count)
        queue = GaugeMetricFamily("spcmon_pipeline_queued", "Submissions waiting in the pipeline")
        queue.add_metric([], self._pipeline.queued)
        yield from (cpk, ppk, last, violations, queue)
