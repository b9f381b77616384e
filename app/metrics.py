"""Prometheus metrics: ingest counters from the pipeline, SPC gauges read at scrape time.

Label values come from the configuration (characteristic, line, process ids) or from
short fixed sets (source kind, dead-letter reason class), never from incoming data, so
the number of series stays bounded whatever a sender pushes.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from alerts import IncidentManager
from app.attribute_monitor import AttributeMonitor
from app.early_warning_feed import EarlyWarningFeed
from app.monitor import Monitor
from app.notifications import Notifications
from ingest import FlushResult
from ingest.pipeline import Pipeline
from ingest.sparkplug_host import SparkplugHost

LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 86_400)


def source_kind(source: str) -> str:
    """``opcua``, ``mqtt``, ``http``… : the part of a source before its address."""
    return source.split(":", 1)[0] or "unknown"


def reason_class(reason: str) -> str:
    """A dead letter's reason as one of: unknown_characteristic, malformed, invalid."""
    text = reason.lower()
    if "unknown characteristic" in text:
        return "unknown_characteristic"
    if "json" in text or "not valid utf" in text or "payload" in text:
        return "malformed"
    return "invalid"


def register_build_info(registry: CollectorRegistry, version: str) -> None:
    """``spcmon_build_info{version, python}`` = 1."""
    info = Info("spcmon_build", "Version of the running service", registry=registry)
    info.info({"version": version, "python": platform.python_version()})


class IngestMetrics:
    """The pipeline's observer: what was stored and rejected, and how late it arrived."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.stored = Counter(
            "spcmon_records_stored",
            "Records newly stored (duplicates excluded)",
            ["kind"],
            registry=registry,
        )
        self.measurements = Counter(
            "spcmon_measurements_ingested",
            "Measurements newly stored, by source kind (opcua, mqtt, http)",
            ["source"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "spcmon_dead_letters",
            "Rejected inputs kept as dead letters, by source kind and reason class",
            ["source", "reason"],
            registry=registry,
        )
        self.lag = Histogram(
            "spcmon_ingest_lag_seconds",
            "Age of the oldest measurement of each stored batch (store time - measured time)",
            ["source"],
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.flush_seconds = Histogram(
            "spcmon_flush_seconds",
            "Time to store and evaluate one pipeline batch",
            registry=registry,
        )
        self.engine_seconds = Histogram(
            "spcmon_engine_update_seconds",
            "Time the SPC engine takes to update its state with one batch",
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 1),
            registry=registry,
        )
        self.last_lag = Gauge(
            "spcmon_ingest_last_lag_seconds",
            "Age of the newest measurement of the last stored batch, by source kind",
            ["source"],
            registry=registry,
        )

    def flushed(self, result: FlushResult, seconds: float) -> None:
        self.stored.labels("measurement").inc(len(result.measurements))
        self.stored.labels("verdict").inc(result.verdicts)
        self.stored.labels("cost_event").inc(result.cost_events)
        for letter in result.dead_letters:
            self.dead_letters.labels(source_kind(letter.source), reason_class(letter.reason)).inc()
        self.flush_seconds.observe(seconds)
        now = datetime.now(UTC)
        by_kind: dict[str, list[datetime]] = {}
        for m in result.measurements:
            by_kind.setdefault(source_kind(m.source), []).append(m.time)
        for kind, times in by_kind.items():
            self.measurements.labels(kind).inc(len(times))
            self.lag.labels(kind).observe(max((now - min(times)).total_seconds(), 0.0))
            self.last_lag.labels(kind).set(max((now - max(times)).total_seconds(), 0.0))

    def engine_updated(self, seconds: float) -> None:
        """Called by the monitor after each engine update."""
        self.engine_seconds.observe(seconds)


class SpcCollector(Collector):
    """Per-characteristic SPC state, read from the monitor when Prometheus scrapes."""

    def __init__(self, monitor: Monitor, pipeline: Pipeline, alarms: IncidentManager) -> None:
        self._monitor = monitor
        self._pipeline = pipeline
        self._alarms = alarms

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        labels = ["characteristic", "line", "process"]
        cpk = GaugeMetricFamily("spcmon_cpk", "Rolling Cpk (within sigma)", labels=labels)
        ppk = GaugeMetricFamily("spcmon_ppk", "Rolling Ppk (overall sigma)", labels=labels)
        last = GaugeMetricFamily("spcmon_last_value", "Last measured value", labels=labels)
        alarms = GaugeMetricFamily(
            "spcmon_open_alarms", "Alarms not yet resolved (open or acknowledged)", labels=labels
        )
        unresolved: dict[str, int] = {}
        incidents = GaugeMetricFamily(
            "spcmon_open_incidents",
            "Incidents not yet resolved, by line, process, severity and state",
            labels=["line", "process", "severity", "state"],
        )
        by_group: dict[tuple[str, str, str, str], int] = {}
        for alarm in self._alarms.open_alarms():
            for char in alarm.characteristics:
                unresolved[char] = unresolved.get(char, 0) + 1
            group = (alarm.line, alarm.process, alarm.severity, alarm.state)
            by_group[group] = by_group.get(group, 0) + 1
        for group, count in sorted(by_group.items()):
            incidents.add_metric(list(group), count)
        for rec in self._monitor.characteristics:
            lv = [rec.id, rec.line, rec.process]
            alarms.add_metric(lv, unresolved.get(rec.id, 0))
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
        yield from (cpk, ppk, last, alarms, incidents, violations, queue)


class SpoolCollector(Collector):
    """``spcmon_spooled_rows``: rows waiting on disk for the database (0 without a spool)."""

    def __init__(self, rows: Callable[[], int]) -> None:
        self._rows = rows

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "spcmon_spooled_rows", "Rows waiting in the disk spool for the database"
        )
        gauge.add_metric([], self._rows())
        yield gauge


class AlertCollector(Collector):
    """Open incidents by severity, the early warnings raised, the notifications' fate."""

    def __init__(
        self,
        alarms: IncidentManager,
        warnings: EarlyWarningFeed,
        notifications: Notifications,
        locate: Callable[[str], tuple[str, str]] = lambda _: ("", ""),
    ) -> None:
        self._alarms = alarms
        self._warnings = warnings
        self._notifications = notifications
        self._locate = locate  # characteristic -> (line, qualified process)

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        warnings = GaugeMetricFamily(
            "spcmon_early_warnings",
            "Early warnings raised now (drift, capability, data health, autocorrelation)",
            labels=["characteristic", "kind", "severity", "line", "process"],
        )
        for w in self._warnings.active():
            line, process = self._locate(w.characteristic)  # from the configuration only
            warnings.add_metric([w.characteristic, w.kind, w.severity, line, process], 1)
        yield warnings
        dispatcher = self._notifications.dispatcher
        sent = CounterMetricFamily(
            "spcmon_notifications",
            "Notifications per notifier: sent, failed attempts, dead-lettered",
            labels=["notifier", "outcome"],
        )
        for name, stats in (dispatcher.stats() if dispatcher else {}).items():
            sent.add_metric([name, "sent"], stats.sent)
            sent.add_metric([name, "failed"], stats.failed)
            sent.add_metric([name, "dead_lettered"], stats.dead_lettered)
        yield sent


class AttributeCollector(Collector):
    """``spcmon_attribute_p{line, process}``: the last subgroup's p of each process's p chart.

    Processes are those the service accepts verdicts for (the configuration's), so the
    series stay bounded.
    """

    def __init__(self, attributes: AttributeMonitor) -> None:
        self._attributes = attributes

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "spcmon_attribute_p",
            "Fraction nonconforming of the last p-chart subgroup of first-pass inspections",
            labels=["line", "process"],
        )
        for process, p in sorted(self._attributes.last_p().items()):
            line, _, short = process.partition(".")
            gauge.add_metric([line, short], p)
        yield gauge


class SparkplugCollector(Collector):
    """The Sparkplug B host's messages, what it dropped (by why), its rebirth requests and
    the characteristics made stale by a death: a camera that keeps rebirthing or a node
    whose data is dropped shows here before its charts go quiet."""

    def __init__(self, host: SparkplugHost) -> None:
        self._host = host

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        host = self._host
        yield CounterMetricFamily(
            "spcmon_sparkplug_messages",
            "Sparkplug B messages received by the host application",
            value=host.messages_received,
        )
        dropped = CounterMetricFamily(
            "spcmon_sparkplug_dropped_messages",
            "Sparkplug B messages acknowledged with nothing stored, by why (duplicate, "
            "stale_death, node_death, device_death, nothing_mapped, before_birth, command)",
            labels=["reason"],
        )
        for reason, count in sorted(host.dropped.items()):
            dropped.add_metric([reason], count)
        yield dropped
        yield CounterMetricFamily(
            "spcmon_sparkplug_rebirths_requested",
            "Rebirth NCMDs sent to edge nodes (sequence gaps, data before a birth)",
            value=host.rebirths_requested,
        )
        yield GaugeMetricFamily(
            "spcmon_sparkplug_stale_characteristics",
            "Characteristics whose edge node or device died (or whose broker was lost) "
            "since their last birth",
            value=len(host.stale_characteristics()),
        )
