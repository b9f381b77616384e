"""The composition root: the one place that builds and connects every part."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import CollectorRegistry

from alerts import IncidentManager
from alerts.early_warnings import EarlyWarning
from alerts.notify import Dispatcher, load_notifiers
from app.answer_cache import AnswerCache
from app.attribute_monitor import AttributeMonitor
from app.auth import KeyRing
from app.early_warning_feed import EarlyWarningFeed
from app.events import EventBus
from app.grade_keeper import GradeCollector, GradeKeeper
from app.metrics import (
    AlertCollector,
    AttributeCollector,
    IngestMetrics,
    SparkplugCollector,
    SpcCollector,
    SpoolCollector,
    register_build_info,
)
from app.monitor import Monitor
from app.notifications import Notifications
from app.settings import Settings
from app.storage import build_store
from ingest import (
    CharacteristicRecord,
    ConfigError,
    Pipeline,
    PlantConfig,
    Store,
    load_plant_config,
)
from ingest.mqtt import MqttCollector, MqttOptions, MqttTls
from ingest.mqtt_payload import TopicBinding
from ingest.opcua import OpcuaCollector
from ingest.plant import CharacteristicConfig
from ingest.sparkplug_host import SparkplugHost, SparkplugHostOptions, sparkplug_bindings
from ingest.spool import SpooledStore
from spc import Engine

_log = logging.getLogger(__name__)
SHUTDOWN_DRAIN_S = 10.0
CAPABILITY_FLUSH_S = 5.0  # how often the hourly capability sums go to the store
EARLY_WARNING_CHUNK = 8  # characteristics per turn of the event loop (~0.4 ms each)


def load_checked_plant(settings: Settings) -> PlantConfig:
    """The plant file, validated, and checked against the settings it will run with.

    Raises ``ConfigError`` naming every offending entry; used by the service at start-up
    and by ``spcmon serve`` / ``spcmon config check`` before anything starts.
    """
    plant = load_plant_config(settings.config)
    window = settings.spc.window
    problems = [
        f"lines '{line.id}' > processes '{process.id}' > characteristics '{c.id}' > "
        f"subgroup_size: {c.subgroup_size} does not divide the capability window of "
        f"{window} values (SPCMON_SPC__WINDOW); use a window that is a multiple of it"
        for line, process, c in plant.iter_characteristics()
        if window % c.subgroup_size
    ]
    if problems:
        raise ConfigError(str(settings.config), problems)
    return plant


def characteristic_record(
    line: str, process: str, c: CharacteristicConfig, origin: str = "config"
) -> CharacteristicRecord:
    """The stored form of one validated characteristic definition."""
    kind, address = None, None
    if c.source and c.source.opcua:
        kind, address = "opcua", c.source.opcua.node_id
    elif c.source and c.source.mqtt:
        kind, address = "mqtt", f"{c.source.mqtt.topic}#{c.source.mqtt.field}"
    elif c.source and c.source.sparkplug:
        s = c.source.sparkplug
        device = f"/{s.device}" if s.device else ""
        kind, address = "sparkplug", f"{s.group}/{s.node}{device}#{s.metric}"
    return CharacteristicRecord(
        id=c.id,
        name=c.name or c.id,
        unit=c.unit,
        line=line,
        process=process,
        lsl=c.lsl,
        usl=c.usl,
        target=c.target,
        chart=c.chart,
        subgroup_size=c.subgroup_size,
        rules=(c.rules,) if isinstance(c.rules, str) else c.rules,
        source_kind=kind,
        source_address=address,
        origin=origin,
        ewma=(c.ewma.lam, c.ewma.L) if c.ewma else None,
        cusum=(c.cusum.k, c.cusum.h) if c.cusum else None,
    )


def characteristic_records(plant: PlantConfig) -> list[CharacteristicRecord]:
    """Flatten the configured hierarchy into characteristic records (origin "config")."""
    return [
        characteristic_record(line.id, process.id, c)
        for line, process, c in plant.iter_characteristics()
    ]


def mqtt_bindings(plant: PlantConfig) -> dict[str, TopicBinding]:
    """Topic -> what it carries (feature fields and, for inspection stations, the verdict)."""
    fields: dict[str, list[tuple[str, str]]] = defaultdict(list)
    verdicts: dict[str, tuple[str, str]] = {}
    for line in plant.lines:
        for process in line.processes:
            if process.inspection is not None:
                src = process.inspection.mqtt
                verdicts[src.topic] = (src.field, f"{line.id}.{process.id}")
            for c in process.characteristics:
                if c.source and c.source.mqtt:
                    fields[c.source.mqtt.topic].append((c.source.mqtt.field, c.id))
    return {
        topic: TopicBinding(topic, tuple(fields.get(topic, ())), *verdicts.get(topic, (None, None)))
        for topic in set(fields) | set(verdicts)
    }


def opcua_bindings(plant: PlantConfig, default_endpoint: str | None) -> dict[str, dict[str, str]]:
    """Endpoint -> {node id -> characteristic id}; nodes without any endpoint are skipped."""
    out: dict[str, dict[str, str]] = defaultdict(dict)
    for _, _, c in plant.iter_characteristics():
        if c.source and c.source.opcua:
            endpoint = c.source.opcua.endpoint or default_endpoint
            if endpoint is None:
                _log.warning("%s: OPC UA source but no endpoint (set SPCMON_OPCUA__ENDPOINT)", c.id)
                continue
            out[endpoint][c.source.opcua.node_id] = c.id
    return dict(out)


def build_dispatcher(settings: Settings) -> Dispatcher | None:
    """The notifiers of ``SPCMON_ALERTS__NOTIFIERS_FILE``, or None when none is set.

    Raises ``NotifierConfigError`` (a ValueError naming the entry and field) for a bad file.
    """
    path = settings.alerts.notifiers_file
    if path is None:
        return None
    notifiers = load_notifiers(path)
    _log.info("notifying through %s", ", ".join(n.name for n in notifiers) or "nobody")
    return Dispatcher(notifiers, settings.data_dir / "notifications-dead-letters.jsonl")


@dataclass
class Service:
    """Every long-lived part of one running service."""

    settings: Settings
    plant: PlantConfig
    store: Store
    monitor: Monitor
    alarms: IncidentManager
    pipeline: Pipeline
    registry: CollectorRegistry
    grades: GradeKeeper
    keys: KeyRing
    events: EventBus = field(default_factory=EventBus)
    notifications: Notifications = field(default_factory=lambda: Notifications(None))
    warnings: EarlyWarningFeed | None = None
    attributes: AttributeMonitor | None = None  # p charts of the inspection verdicts
    mqtt: MqttCollector | None = None
    sparkplug: SparkplugHost | None = None
    opcua: list[OpcuaCollector] = field(default_factory=list)
    edit_lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # API edits, one at a time
    status_answers: AnswerCache = field(default_factory=AnswerCache)
    _pipeline_task: asyncio.Task[None] | None = None
    _grades_task: asyncio.Task[None] | None = None
    _escalation_task: asyncio.Task[None] | None = None
    _quiet_task: asyncio.Task[None] | None = None
    _ledger_task: asyncio.Task[None] | None = None

    @classmethod
    def build(cls, settings: Settings) -> Service:
        plant = load_checked_plant(settings)
        store = build_store(settings)
        engine = Engine(baseline_size=settings.spc.baseline_size, window=settings.spc.window)
        events = EventBus()
        alarms = IncidentManager(store, lambda c: ("", ""), settings.alerts.policy())
        monitor = Monitor(store, alarms, engine, events)
        alarms.locate = monitor.locate
        alarms.on_change = monitor.publish_alarm
        alarms.on_resolved = monitor.restart_statistics
        for record in characteristic_records(plant):
            monitor.register(record)
        registry = CollectorRegistry()
        ingest_metrics = IngestMetrics(registry)
        monitor.on_engine_time = ingest_metrics.engine_updated
        register_build_info(registry, settings.version)
        pipeline = Pipeline(store, monitor, monitor, observer=ingest_metrics)
        registry.register(SpcCollector(monitor, pipeline, alarms))
        g = settings.grades
        grades = GradeKeeper(
            monitor, store, plant.plant.id, g.period, g.refresh_s, g.snapshot_interval_s
        )
        registry.register(GradeCollector(grades))
        keys = KeyRing(settings.keys_file)
        notifications = Notifications(build_dispatcher(settings), settings.alerts.dashboard_url)
        alarms.on_transition = notifications.incident
        grades.on_change = notifications.grade_change

        warnings = EarlyWarningFeed(monitor.record, monitor.limits, monitor.publish_warning)
        warnings.batch_listener = lambda found: notifications.warnings(found, monitor.locate)
        monitor.early_warnings = warnings
        pipeline.on_bad_quality = warnings.submit_bad
        registry.register(AlertCollector(alarms, warnings, notifications, monitor.locate))
        service = cls(
            settings, plant, store, monitor, alarms, pipeline, registry, grades, keys, events,
            notifications, warnings,
        )  # fmt: skip
        registry.register(SpoolCollector(lambda: service.spooled_rows))
        service.attributes = AttributeMonitor(
            store, events, settings.spc.attribute_subgroup_size,
            settings.spc.attribute_baseline_subgroups,
        )  # fmt: skip
        pipeline.on_verdicts = service.attributes.observe
        registry.register(AttributeCollector(service.attributes))
        service._build_collectors()
        return service

    def _mqtt_options(self, client_id: str) -> MqttOptions:
        mq = self.settings.mqtt
        host, port = mq.host_port
        tls = None
        if mq.tls:
            tls = MqttTls(*(str(f) if f else None for f in (mq.ca_file, mq.cert_file, mq.key_file)))
        password = mq.password.get_secret_value() if mq.password else None
        return MqttOptions(
            host, port, client_id, mq.username, password, protocol=mq.protocol, tls=tls
        )

    def _build_collectors(self) -> None:
        bindings = mqtt_bindings(self.plant)
        if self.settings.mqtt.url and bindings:
            options = self._mqtt_options(self.settings.mqtt.client_id)
            self.mqtt = MqttCollector(options, bindings, self.pipeline)
        elif bindings:
            _log.warning("MQTT sources configured but SPCMON_MQTT__URL is not set")
        metrics = sparkplug_bindings(self.plant)
        if self.settings.mqtt.url and metrics:
            sp = self.settings.sparkplug
            client_id = sp.client_id or f"{self.settings.mqtt.client_id}-sparkplug"
            host_options = SparkplugHostOptions(sp.host_id, sp.reorder_timeout_s)
            self.sparkplug = SparkplugHost(
                self._mqtt_options(client_id), host_options, metrics, self.pipeline
            )
            self.registry.register(SparkplugCollector(self.sparkplug))
        elif metrics:
            _log.warning("Sparkplug sources configured but SPCMON_MQTT__URL is not set")
        opc = self.settings.opcua
        for endpoint, nodes in opcua_bindings(self.plant, opc.endpoint).items():
            self.opcua.append(
                OpcuaCollector(
                    endpoint,
                    nodes,
                    self.pipeline,
                    opc.publishing_interval_ms,
                    opc.queue_size,
                    opc.security(),
                )
            )

    async def start(self) -> None:
        """Open the store, restore state, warm the JIT, then start ingest."""
        await self.store.open()
        await self.store.upsert_characteristics(self.monitor.characteristics)
        for record in await self.store.list_characteristics():
            if record.origin == "api" and record.id not in self.monitor:
                self.monitor.register(record)  # created through the API, kept in the store
        await asyncio.to_thread(self.monitor.engine.warm_up)
        await self.alarms.load()
        if taken := self.monitor.ledger.load_pending(self._ledger_file):
            _log.info("%d capability-sum buckets taken back from %s", taken, self._ledger_file)
        await self.monitor.restore()
        if self.attributes is not None:
            await self.attributes.restore(self.monitor.process_ids())
        self._pipeline_task = asyncio.create_task(self.pipeline.run(), name="pipeline")
        self._grades_task = asyncio.create_task(self.grades.run(), name="grades")
        self._escalation_task = asyncio.create_task(self._escalate(), name="escalation")
        self._quiet_task = asyncio.create_task(self._early_warnings(), name="early-warnings")
        self._ledger_task = asyncio.create_task(
            self.monitor.ledger.run(CAPABILITY_FLUSH_S), name="capability-sums"
        )
        if self.notifications.dispatcher is not None:
            await self.notifications.dispatcher.start()
        await asyncio.sleep(0)  # let the pipeline bind its loop before collectors submit
        if self.mqtt is not None:
            self.mqtt.start()
        if self.sparkplug is not None:
            loop = asyncio.get_running_loop()

            def died(characteristics: list[str]) -> None:  # on paho's or a timer's thread
                loop.call_soon_threadsafe(self._sources_offline, characteristics)

            self.sparkplug.on_death = died
            self.sparkplug.start()
        for collector in self.opcua:
            collector.start()
        # the start-up objects (engine state, numba, config) live as long as the service:
        # out of the collector's way, full collections no longer walk them (shorter pauses)
        gc.freeze()

    async def stop(self) -> None:
        """Stop intake, flush what was accepted (its PUBACKs go out), then disconnect."""
        if self.mqtt is not None:
            self.mqtt.pause()
        if self.sparkplug is not None:
            self.sparkplug.pause()
        for collector in self.opcua:
            await collector.stop()
        if not await self.pipeline.drain(timeout_s=SHUTDOWN_DRAIN_S):
            _log.warning("shutdown: %d submissions not stored within %.0f s; senders that "
                         "were not acknowledged will resend", self.pipeline.queued,
                         SHUTDOWN_DRAIN_S)  # fmt: skip
        if self.mqtt is not None:
            await asyncio.to_thread(self.mqtt.stop)
        if self.sparkplug is not None:
            await asyncio.to_thread(self.sparkplug.stop)
        tasks = (self._quiet_task, self._escalation_task, self._grades_task, self._pipeline_task,
                 self._ledger_task)  # fmt: skip
        for task in tasks:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        try:  # the last increments; what cannot be written waits in a file for the next start
            await asyncio.wait_for(self.monitor.ledger.flush(), SHUTDOWN_DRAIN_S)
        except TimeoutError:
            _log.warning("shutdown: the capability sums could not be written in time")
        if kept := self.monitor.ledger.save_pending(self._ledger_file):
            _log.warning("shutdown: %d capability-sum buckets kept in %s for the next start",
                         kept, self._ledger_file)  # fmt: skip
        if isinstance(self.store, SpooledStore) and not await self.store.drain(SHUTDOWN_DRAIN_S):
            spool = self.store.spool
            _log.warning(
                "shutdown: %d rows stay in the spool %s, replayed at the next start",
                spool.rows,
                spool.directory,
            )
        if self.notifications.dispatcher is not None:
            await self.notifications.dispatcher.aclose(timeout_s=5.0)
        await self.store.close()

    def _sources_offline(self, characteristics: list[str]) -> None:
        """Sparkplug deaths (on the event loop): quiet-source warnings at once."""
        if self.warnings is not None:
            reason = "Sparkplug edge node or device offline (NDEATH/DDEATH, or broker lost)"
            found = self.warnings.sources_offline(characteristics, datetime.now(UTC), reason)
            self.warnings.tell(found)

    async def _early_warnings(self) -> None:
        """Evaluate the waiting live values every second, the quiet sources every 5 s.

        On the event loop, a few characteristics at a time: in a worker thread the
        evaluation held the interpreter for 5 ms at each of the loop's turns (the GIL's
        switch interval) and status answers waited 100 ms and more behind it.
        """
        feed = self.warnings
        if feed is None:
            return
        tick = 0
        while True:
            await asyncio.sleep(1.0)
            tick += 1
            try:
                found: list[EarlyWarning] = []
                try:
                    for start in range(0, feed.max_per_call, EARLY_WARNING_CHUNK):
                        if not feed.due():
                            break
                        chunk = min(EARLY_WARNING_CHUNK, feed.max_per_call - start)
                        found += feed.evaluate_due(limit=chunk)
                        await asyncio.sleep(0)  # requests waiting are answered in between
                    if tick % 5 == 0:
                        found += feed.check_quiet(datetime.now(UTC))
                finally:  # what earlier chunks found is told even if a later one fails
                    feed.tell(found)
            except Exception:  # advice must not end for good over one bad batch
                _log.exception("could not evaluate the early warnings")

    async def _escalate(self) -> None:
        """Escalate unacknowledged incidents: checked every 10 s (or the delay if shorter)."""
        period = min(10.0, self.settings.alerts.escalate_after_s)
        while True:
            await asyncio.sleep(period)
            try:
                await self.alarms.escalate_due()
            except Exception:  # a store hiccup must not end escalation for good
                _log.exception("could not escalate incidents")

    @property
    def _ledger_file(self) -> Path:
        """Capability sums a stop could not write (the database away)."""
        return self.settings.data_dir / "capability-pending.json"

    @property
    def spooled_rows(self) -> int:
        """Rows waiting on disk for the database (0 without a spool)."""
        return self.store.spool.rows if isinstance(self.store, SpooledStore) else 0
