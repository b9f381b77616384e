"""End-to-end ingest over MQTT: publisher -> mosquitto -> collector -> pipeline -> engine ->
PostgreSQL, next to the broker's own loopback throughput with the same payloads.

    .venv/bin/python -m benchmarks.mqtt_ingest [--messages 20000] [--features 20]
        [--lines 5] [--rate 500] [--seconds 30] [--sqlite]

Every process runs on this machine's 2 cores: mosquitto (from Debian, started on a free
port), a publisher process (paho, QoS 1, 1,000 messages in flight), the real service
(``spcmon serve``; a throwaway PostgreSQL from the installed binaries, durable settings;
``--sqlite`` for the embedded store) and this process. The plant has ``--lines`` vision
stations, each publishing one JSON result per part on ``bench/<line>/vision/result`` with
``--features`` features, each feature a characteristic (I-MR, default rules, EWMA, CUSUM).

1. **ceiling**: a subscriber process (paho, QoS 1) takes ``--messages`` results from the
   publisher through the broker: what the broker and a Python MQTT client move, with
   nothing else done.
2. **sustained**: the service first takes each station's Phase I baseline (300 parts), then
   the publisher sends ``--messages`` results as fast as the broker accepts them;
   measurements/s is rows stored in the database (counted there) over the time from the
   first publish to the last row stored.
3. **latency**: the publisher sends ``--rate`` results/s (x features = measurements/s) for
   ``--seconds`` while this process publishes a probe every 0.5 s, a part whose first
   feature is 20 sigma off, and reads the service's event stream (``/api/v1/stream``) for
   its rule-1 violation: latency is from the probe's publish to the violation's arrival.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from app.local_broker import Broker, free_port, running_mosquitto
from app.settings import SpcSettings
from benchmarks.service_process import running_service, spcmon

BASELINE = SpcSettings().baseline_size  # parts per station before limits are frozen
MEAN, SD = 10.0, 0.1
PROBE_OFFSET = 20 * SD  # far beyond the 3-sigma limits: a rule-1 violation at once
PROBE_EVERY_S = 0.5
IN_FLIGHT = 1000


def _topic(line: int) -> str:
    return f"bench/line{line}/vision/result"


def _plant_yaml(lines: int, features: int) -> str:
    out = ["plant: {id: bench, name: MQTT ingest benchmark}", "lines:"]
    for li in range(lines):
        out += [f"  - id: line{li}", "    processes:", "      - id: vision",
                "        characteristics:"]  # fmt: skip
        out += [
            f"          - {{id: line{li}.vision.f{fi}, lsl: 9.0, target: 10.0, usl: 11.0, "
            f"source: {{mqtt: {{topic: {_topic(li)}, field: features.f{fi}}}}}}}"
            for fi in range(features)
        ]
    return "\n".join(out) + "\n"


def _result(serial: str, when: datetime, values: np.ndarray) -> bytes:
    features = {f"f{i}": round(float(v), 5) for i, v in enumerate(values)}
    body = {"serial": serial, "time": when.isoformat(), "features": features}
    return json.dumps(body).encode()


def _client(port: int, name: str, clean: bool = True) -> mqtt.Client:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"bench-{name}-{uuid.uuid4().hex[:6]}",
        clean_session=clean,
        protocol=mqtt.MQTTv311,
    )
    client.max_inflight_messages_set(IN_FLIGHT)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port, keepalive=30)
    client.loop_start()
    return client


def publish(port: int, lines: int, features: int, count: int, rate: float, tag: str,
            start: datetime, out: Any) -> None:  # fmt: skip
    """Child process: publish ``count`` results round-robin over the stations, at ``rate``
    results/s (0: as fast as QoS 1 allows); puts (first, last acknowledged) wall times."""
    rng = np.random.default_rng(abs(hash(tag)) % 2**32)
    payloads = [
        (_topic(i % lines), _result(f"{tag}-{i:08d}", start + timedelta(milliseconds=i),
                                    rng.normal(MEAN, SD, features)))
        for i in range(count)
    ]  # fmt: skip
    client = _client(port, f"pub-{tag}")
    infos = []
    first = time.time()
    for i, (topic, payload) in enumerate(payloads):
        if rate > 0 and (delay := first + i / rate - time.time()) > 0:
            time.sleep(delay)
        while True:
            info = client.publish(topic, payload, qos=1)
            if info.rc == mqtt.MQTT_ERR_SUCCESS:
                break
            time.sleep(0.001)  # the client's queue is full: wait for acknowledgements
        infos.append(info)
    for info in infos:
        info.wait_for_publish(timeout=120)
    out.put((first, time.time()))
    client.disconnect()
    client.loop_stop()


def subscribe(port: int, count: int, out: Any) -> None:
    """Child process: take ``count`` results (QoS 1); puts (first, last) receive times."""
    seen = [0, 0.0, 0.0]
    done = threading.Event()

    def on_message(client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.time()
        if seen[0] == 0:
            seen[1] = now
        seen[0] += 1
        seen[2] = now
        if seen[0] >= count:
            done.set()

    client = _client(port, "ceiling")
    client.on_message = on_message
    client.subscribe("bench/+/vision/result", qos=1)
    time.sleep(0.5)  # the subscription is in place before the publisher starts
    out.put("ready")
    done.wait(300)
    out.put((seen[0], seen[1], seen[2]))
    client.disconnect()
    client.loop_stop()


@dataclass
class Run:
    port: int
    lines: int
    features: int
    args: argparse.Namespace

    def publisher(self, count: int, rate: float, tag: str, start: datetime) -> tuple[Any, Any]:
        out: Any = mp.get_context("spawn").Queue()
        proc = mp.get_context("spawn").Process(
            target=publish,
            args=(self.port, self.lines, self.features, count, rate, tag, start, out),
        )
        proc.start()
        return proc, out


def _ceiling(run: Run) -> float:
    ctx = mp.get_context("spawn")
    out: Any = ctx.Queue()
    sub = ctx.Process(target=subscribe, args=(run.port, run.args.messages, out))
    sub.start()
    assert out.get(timeout=30) == "ready"
    pub, _ = run.publisher(run.args.messages, 0, "ceiling", datetime.now(UTC))
    got, first, last = out.get(timeout=600)
    pub.join(60)
    sub.join(10)
    if got < run.args.messages:
        print(f"  ceiling: only {got:,} of {run.args.messages:,} results arrived")
    return got * run.features / (last - first)


def _count(dsn: str | None, sqlite: Path | None) -> int:
    if dsn is not None:
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT count(*) FROM measurements").fetchone()
    else:
        import sqlite3

        assert sqlite is not None
        with contextlib.closing(sqlite3.connect(sqlite)) as conn:
            row = conn.execute("SELECT count(*) FROM measurements").fetchone()
    return int(row[0]) if row else 0


def _wait_stored(dsn: str | None, sqlite: Path | None, target: int, timeout_s: float) -> float:
    """Poll until ``target`` rows are stored; returns the time (time.time()) it was seen."""
    deadline = time.time() + timeout_s
    while (n := _count(dsn, sqlite)) < target:
        if time.time() > deadline:
            raise RuntimeError(f"only {n:,} of {target:,} rows stored in {timeout_s:.0f} s")
        time.sleep(0.05)
    return time.time()


def _sustained(run: Run, dsn: str | None, sqlite: Path | None) -> tuple[float, float]:
    """(stored measurements/s, the publisher's own results/s x features)."""
    start = datetime.now(UTC) - timedelta(hours=2)
    prime = BASELINE * run.lines
    proc, out = run.publisher(prime, 0, "prime", start)
    proc.join(300)
    _wait_stored(dsn, sqlite, prime * run.features, 600)
    before = _count(dsn, sqlite)
    proc, out = run.publisher(run.args.messages, 0, "sustained", start + timedelta(minutes=10))
    first, published = out.get(timeout=600)
    proc.join(60)
    stored_at = _wait_stored(dsn, sqlite, before + run.args.messages * run.features, 900)
    rows = run.args.messages * run.features
    return rows / (stored_at - first), rows / (published - first)


class _Violations:
    """Reads the service's event stream for rule-1 violations of the probed feature."""

    def __init__(self, base: str, key: str, characteristic: str) -> None:
        self.arrived: dict[str, float] = {}  # probe time (ISO) -> perf_counter on arrival
        self._url = f"{base}/api/v1/stream?characteristic={characteristic}"
        self._headers = {"Authorization": f"Bearer {key}"}
        self._stop = threading.Event()
        self.ready = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        with httpx.stream("GET", self._url, headers=self._headers, timeout=None) as answer:
            self.ready.set()
            kind = ""
            for line in answer.iter_lines():
                if self._stop.is_set():
                    return
                if line.startswith("event:"):
                    kind = line.partition(":")[2].strip()
                elif line.startswith("data:") and kind == "violation":
                    data = json.loads(line.partition(":")[2])
                    if data.get("rule") == "1":
                        self.arrived.setdefault(data["time"], time.perf_counter())

    def stop(self) -> None:
        self._stop.set()


def _latency(run: Run, base: str, key: str) -> tuple[list[float], int, int]:
    """Probe latencies (ms), probes sent, and results the background load published."""
    watched = "line0.vision.f0"
    reader = _Violations(base, key, watched)
    if not reader.ready.wait(15):
        raise RuntimeError("the event stream did not open")
    count = int(run.args.rate * run.args.seconds)
    proc, out = run.publisher(count, run.args.rate, "load", datetime.now(UTC) - timedelta(hours=1))
    prober = _client(run.port, "probe")
    sent: dict[str, float] = {}
    rng = np.random.default_rng(99)
    t_end = time.perf_counter() + run.args.seconds
    while time.perf_counter() < t_end:
        values = rng.normal(MEAN, SD, run.features)
        values[0] = MEAN + PROBE_OFFSET
        when = datetime.now(UTC)
        sent[when.isoformat()] = time.perf_counter()
        prober.publish(_topic(0), _result(f"probe-{len(sent)}", when, values), qos=1)
        time.sleep(PROBE_EVERY_S)
    out.get(timeout=600)
    proc.join(60)
    time.sleep(5)  # the last probes' answers
    reader.stop()
    prober.disconnect()
    prober.loop_stop()
    latencies = [(reader.arrived[t] - s) * 1e3 for t, s in sent.items() if t in reader.arrived]
    return latencies, len(sent), count


@contextlib.contextmanager
def _database(use_sqlite: bool) -> Iterator[str | None]:
    if use_sqlite:
        yield None
        return
    from tests.support.postgres import DURABLE_SETTINGS, running_postgres

    with running_postgres(settings=DURABLE_SETTINGS) as server:
        yield server.dsn


def _percentiles(values: list[float]) -> str:
    if not values:
        return "none arrived"
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms, max {max(values):.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=20_000, help="results per run")
    parser.add_argument("--features", type=int, default=20, help="features per result")
    parser.add_argument("--lines", type=int, default=5, help="vision stations (topics)")
    parser.add_argument("--rate", type=float, default=500.0, help="results/s, latency phase")
    parser.add_argument("--seconds", type=float, default=30.0, help="latency phase length")
    parser.add_argument("--sqlite", action="store_true", help="the embedded store instead")
    args = parser.parse_args()
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    with (
        tempfile.TemporaryDirectory(prefix="spcmon-mqtt-bench-") as tmp,
        running_mosquitto(Path(tmp) / "broker") as broker,
        _database(args.sqlite) as dsn,
    ):
        run = Run(broker.port, args.lines, args.features, args)
        print(f"broker on {broker.port}; store: {'SQLite' if dsn is None else 'PostgreSQL'}")
        print("  ceiling ...", flush=True)
        ceiling = _ceiling(run)
        report = _with_service(run, broker, dsn, Path(tmp))
    sustained, offered, latencies, probes, load = report
    command = " ".join([".venv/bin/python -m benchmarks.mqtt_ingest", *sys.argv[1:]])
    per_s = args.rate * args.features
    store = "SQLite" if dsn is None else "PostgreSQL"
    seen = f"{len(latencies)} of {probes} probes seen"
    p99_met = bool(latencies) and float(np.percentile(latencies, 99)) < 100
    lines = [
        f"`{command}`: {args.lines} stations x {args.features} features, "
        f"{args.messages:,} results per run; {os.cpu_count()} cores, load average before: "
        f"{load_before}",
        "",
        "| path | measurements/s |",
        "|---|---|",
        f"| broker loopback (publisher -> mosquitto -> subscriber): the ceiling | {ceiling:,.0f} |",
        f"| end to end, stored in {store} | {sustained:,.0f} |",
        f"| (the publisher alone, to the broker's acknowledgements) | {offered:,.0f} |",
        "",
        f"end to end / ceiling: {sustained / ceiling:.2f}. Target >= 50,000/s: "
        f"{'met' if sustained >= 50_000 else 'NOT met'}.",
        f"Latency, probe publish -> its rule-1 violation on the event stream, while "
        f"{per_s:,.0f} measurements/s are offered ({load:,} results): "
        f"{_percentiles(latencies)} ({seen}). Target p99 < 100 ms: "
        f"{'met' if p99_met else 'NOT met'}.",
    ]
    print("\n" + "\n".join(lines))


def _with_service(
    run: Run, broker: Broker, dsn: str | None, tmp: Path
) -> tuple[float, float, list[float], int, int]:
    env = {
        **os.environ,
        "SPCMON_DATA_DIR": str(tmp / "data"),
        "SPCMON_MQTT__URL": broker.url,
        "SPCMON_LOG_LEVEL": "WARNING",
    }
    if dsn is not None:
        env["SPCMON_DATABASE__URL"] = dsn
    config = tmp / "plant.yaml"
    config.write_text(_plant_yaml(run.lines, run.features), encoding="utf-8")
    key = spcmon("keys", "create", "--name", "bench", "--role", "viewer", env=env).strip()
    port = free_port()
    sqlite = None if dsn is not None else tmp / "data" / "spcmon.sqlite3"
    with running_service(env, config, port, tmp / "service.log"):
        print("  sustained ...", flush=True)
        sustained, offered = _sustained(run, dsn, sqlite)
        print("  latency ...", flush=True)
        latencies, probes, load = _latency(run, f"http://127.0.0.1:{port}", key)
    return sustained, offered, latencies, probes, load


if __name__ == "__main__":
    main()
