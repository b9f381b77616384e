"""HTTP API under load: GET .../status latency at a fixed rate, with and without ingest.

    .venv/bin/python -m benchmarks.api_load [--rate 1000] [--ingest 10000] [--seconds 30]
        [--profile DIR] [--status-front]

Generates a plant of 500 characteristics (5 lines x 10 processes x 10, I-MR, the default
rules, EWMA and CUSUM, no OPC UA or MQTT sources), creates a viewer and an ingest key with
``spcmon keys create`` and starts the real service, ``spcmon serve`` (uvicorn, SQLite
store in a temporary directory), as its own process. Every characteristic is primed past
its Phase I baseline (the default 300 points). This process is then the load generator:
one asyncio loop, HTTP/1.1 keep-alive connections to 127.0.0.1 (a minimal client: httpx
costs 2-4 ms of CPU per request on this machine, more than the service it would measure):

- status: ``GET /api/v1/characteristics/{id}/status`` of random characteristics at a fixed
  open-loop rate over ``--connections`` connections; each latency runs from the request's
  *scheduled* send time to its complete answer, so a server that falls behind is not
  hidden (no coordinated omission); requests still queued 2 s after the phase are counted
  as not sent, with their wait so far as latency;
- ingest: ``POST /api/v1/measurements`` of 500-row batches (one new value for every
  characteristic, time now), paced open-loop to the ingest rate over 8 connections, from a
  second process of the load generator, so that building the bodies does not delay the
  status load's loop.

The status loop also measures its own lag (how late its 1 ms sleeps wake): the share of a
measured latency that may be the load generator's, not the service's.

Phases, each ``--seconds`` long after a short warm-up: the status load alone (baseline),
the same sending ``If-None-Match`` (ETag: 304 answers), and the status load while
ingesting. The load generator shares the cores with the service: the CPU of both is shown.
``--status-front`` runs the service as two processes (``SPCMON_HTTP__STATUS_FRONT=true``:
status polls answered by the front from copies, see ``app.status_front``); the service
CPU is then the sum of both.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import json
import multiprocessing
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from app.local_broker import free_port
from app.settings import SpcSettings
from benchmarks.service_process import running_service, spcmon

LINES, PROCESSES, CHARS = 5, 10, 10
PRIME_POINTS = SpcSettings().baseline_size + 5  # past Phase I: limits frozen, capability live
BATCH_ROWS = 500
INGEST_CONNECTIONS = 8
GRACE_S = 2.0  # after a phase's schedule, for answers still on their way
TIMEOUT_S = 10.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
Answer = tuple[int, dict[str, str], bytes]


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time, Content-Length bodies."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._waiter: asyncio.Future[Answer] | None = None
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._waiter is not None and not self._waiter.done():
            with contextlib.suppress(ValueError):  # not complete yet
                self._waiter.set_result(_parse(self._buffer))

    def connection_lost(self, exc: Exception | None) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionError("the service closed the connection"))

    async def request(self, raw: bytes) -> Answer:
        assert isinstance(self._transport, asyncio.WriteTransport)
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(raw)
        return await asyncio.wait_for(self._waiter, TIMEOUT_S)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def _parse(buffer: bytearray) -> Answer:
    """Status, headers (lower-case) and body of the first answer; ValueError if incomplete."""
    end = buffer.index(b"\r\n\r\n")
    lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    if headers.get("transfer-encoding"):
        raise RuntimeError("an answer without Content-Length: not handled by this client")
    size = end + 4 + int(headers.get("content-length", "0"))
    if len(buffer) < size:
        raise ValueError("incomplete")
    body = bytes(buffer[end + 4 : size])
    del buffer[:size]
    return int(lines[0].split(" ", 2)[1]), headers, body


def _request(method: str, path: str, key: str, body: bytes = b"", extra: str = "") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return (head + extra + "\r\n").encode("latin-1") + body


@dataclass
class Result:
    name: str
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    unsent: int = 0
    ingested: int = 0
    ingest_ms: list[float] = field(default_factory=list)
    server_cpu: float = 0.0
    own_cpu: float = 0.0
    own_lag_ms: list[float] = field(default_factory=list)


@dataclass
class Load:
    port: int
    pid: int
    viewer: str
    ingester: str
    ids: list[str]
    args: argparse.Namespace
    ingester_pool: concurrent.futures.ProcessPoolExecutor


@dataclass
class Ingested:
    """What the ingest process sent and measured (picklable, returned to the phase)."""

    ingested: int = 0
    errors: int = 0
    ingest_ms: list[float] = field(default_factory=list)
    cpu_seconds: float = 0.0


async def _connect(port: int) -> _Connection:
    loop = asyncio.get_running_loop()
    return (await loop.create_connection(_Connection, "127.0.0.1", port))[1]


Send = Callable[[_Connection, float], Coroutine[Any, Any, None]]


async def _open_loop(
    port: int, rate: float, seconds: float, workers: int, send: Send
) -> list[float]:
    """A fixed-rate schedule served by ``workers`` connections, one request at a time each.

    Each tick's scheduled time is queued and sent by the next free connection, so a server
    slower than the rate makes the queue and the measured latencies grow. Returns the
    scheduled times still queued ``GRACE_S`` after the schedule ends (not sent).
    """
    queue: asyncio.Queue[float] = asyncio.Queue()
    start = time.perf_counter()
    stop_at = start + seconds + GRACE_S

    async def work() -> None:
        conn = await _connect(port)
        try:
            while (left := stop_at - time.perf_counter()) > 0:
                with contextlib.suppress(TimeoutError):
                    due = await asyncio.wait_for(queue.get(), left)
                    try:
                        await send(conn, due)
                    except (OSError, TimeoutError):  # counted by send; start afresh
                        conn.close()
                        conn = await _connect(port)
                    queue.task_done()
        finally:
            conn.close()

    senders = [asyncio.create_task(work()) for _ in range(workers)]
    i = 0
    while (due := start + i / rate) < start + seconds:
        if (delay := due - time.perf_counter()) > 0:
            await asyncio.sleep(delay)
        queue.put_nowait(due)
        i += 1
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(queue.join(), stop_at - time.perf_counter())
    await asyncio.gather(*senders)
    return [queue.get_nowait() for _ in range(queue.qsize())]


async def _status_load(load: Load, res: Result, etags: dict[str, str] | None) -> None:
    async def send(conn: _Connection, due: float) -> None:
        char = random.choice(load.ids)
        extra = f"If-None-Match: {etags[char]}\r\n" if etags is not None else ""
        path = f"/api/v1/characteristics/{char}/status"
        try:
            status, headers, _ = await conn.request(_request("GET", path, load.viewer, extra=extra))
        except (OSError, TimeoutError):
            res.errors += 1
            raise
        res.latencies_ms.append((time.perf_counter() - due) * 1e3)
        res.statuses[status] = res.statuses.get(status, 0) + 1
        if etags is not None and status == 200:
            etags[char] = headers["etag"]

    unsent = await _open_loop(load.port, load.args.rate, res.seconds, load.args.connections, send)
    now = time.perf_counter()
    res.unsent = len(unsent)
    res.latencies_ms += [(now - due) * 1e3 for due in unsent]  # lower bounds


def _ingest_process(port: int, key: str, ids: list[str], rate: float, seconds: float) -> Ingested:
    """The ingest load, run in a process of its own: building and sending 500-row bodies
    must not delay the status load's loop, whose latencies would then include it."""
    res = Ingested()
    own0 = time.process_time()
    asyncio.run(_ingest_load(port, key, ids, rate, seconds, res))
    res.cpu_seconds = time.process_time() - own0
    return res


async def _ingest_load(
    port: int, key: str, ids: list[str], rate: float, seconds: float, res: Ingested
) -> None:
    rng = np.random.default_rng(2)

    async def send(conn: _Connection, due: float) -> None:
        body = json.dumps({"measurements": _rows(ids, datetime.now(UTC), rng)}).encode()
        try:
            status, _, answer = await conn.request(
                _request("POST", "/api/v1/measurements", key, body)
            )
        except (OSError, TimeoutError):
            res.errors += 1
            raise
        res.ingest_ms.append((time.perf_counter() - due) * 1e3)
        if status == 202:
            res.ingested += json.loads(answer)["accepted"]
        else:
            res.errors += 1

    await _open_loop(port, rate / BATCH_ROWS, seconds, INGEST_CONNECTIONS, send)


async def _loop_lag(lags_ms: list[float]) -> None:
    """How late this loop wakes from 1 ms sleeps: the share of a measured latency that may
    be the load generator's own delay (its loop busy or its process waiting for a core)."""
    while True:
        before = time.perf_counter()
        await asyncio.sleep(0.001)
        lags_ms.append((time.perf_counter() - before) * 1e3 - 1.0)


def _rows(ids: list[str], t: datetime, rng: np.random.Generator) -> list[dict[str, object]]:
    stamp = t.isoformat()
    values = rng.normal(10.0, 0.1, len(ids)).tolist()
    return [
        {"characteristic": c, "value": v, "time": stamp} for c, v in zip(ids, values, strict=True)
    ]


async def _phase(load: Load, name: str, seconds: float, ingest: bool, etag: bool) -> Result:
    print(f"  {name}: {seconds:.0f} s ...", flush=True)
    res, etags = Result(name, seconds), None
    if etag:
        conn = await _connect(load.port)
        paths = {c: f"/api/v1/characteristics/{c}/status" for c in load.ids}
        etags = {c: (await conn.request(_request("GET", p, load.viewer)))[1]["etag"]
                 for c, p in paths.items()}  # fmt: skip
        conn.close()
    cpu0, own0, wall0 = _cpu_seconds(load.pid), time.process_time(), time.perf_counter()
    loop = asyncio.get_running_loop()
    job = (load.port, load.ingester, load.ids, load.args.ingest, seconds)
    ingesting = loop.run_in_executor(load.ingester_pool, _ingest_process, *job) if ingest else None
    probe = asyncio.create_task(_loop_lag(res.own_lag_ms))
    with _sampled(load, name, seconds):
        await _status_load(load, res, etags)
        probe.cancel()
        sent = await ingesting if ingesting is not None else Ingested()
    wall = time.perf_counter() - wall0
    res.server_cpu = (_cpu_seconds(load.pid) - cpu0) / wall
    res.own_cpu = (time.process_time() - own0 + sent.cpu_seconds) / wall
    res.ingested, res.ingest_ms = sent.ingested, sent.ingest_ms
    res.errors += sent.errors
    return res


async def _run(load: Load) -> list[Result]:
    rng, start = np.random.default_rng(1), datetime.now(UTC) - timedelta(minutes=10)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{load.port}", timeout=60) as client:
        for k in range(PRIME_POINTS):
            rows = _rows(load.ids, start + timedelta(seconds=k), rng)
            answer = await client.post(
                "/api/v1/measurements",
                json={"measurements": rows},
                headers={"Authorization": f"Bearer {load.ingester}"},
            )
            answer.raise_for_status()
    await _phase(load, "warm-up", 3.0, ingest=True, etag=False)
    seconds = load.args.seconds
    return [
        await _phase(load, "status alone (baseline)", seconds, ingest=False, etag=False),
        await _phase(load, "status alone, If-None-Match (304)", seconds, ingest=False, etag=True),
        await _phase(load, "status + ingest", seconds, ingest=True, etag=False),
    ]


@contextlib.contextmanager
def _sampled(load: Load, name: str, seconds: float) -> Iterator[None]:
    """With ``--profile DIR``: py-spy (a dev dependency) samples the GIL holder; collapsed
    stacks per phase, for flamegraph tools."""
    if load.args.profile is None:
        yield
        return
    out = Path(load.args.profile) / f"{name.split(' (')[0].replace(' ', '-').replace(',', '')}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    spy = str(Path(sys.executable).with_name("py-spy"))
    command = [spy, "record", "--pid", str(load.pid), "--duration", str(int(seconds)),
               "--rate", "250", "--format", "raw", "--threads", "--gil", "--nonblocking",
               "-o", str(out)] + (["--subprocesses"] if load.args.status_front else [])  # fmt: skip
    sampler = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        sampler.wait(30)


def _cpu_seconds(pid: int) -> float:
    """CPU time of the process and its children alive now (the status front's service)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime, all threads
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return own + sum(_cpu_seconds(int(child)) for child in children)


def _plant_yaml() -> str:
    out = ["plant: {id: bench, name: Load benchmark plant}", "lines:"]
    for li in range(LINES):
        out += [f"  - id: line{li}", "    processes:"]
        for pi in range(PROCESSES):
            out += [f"      - id: p{pi}", "        characteristics:"]
            out += [
                f"          - {{id: line{li}.p{pi}.c{ci}, lsl: 9.0, target: 10.0, usl: 11.0}}"
                for ci in range(CHARS)
            ]
    return "\n".join(out) + "\n"


def _row(res: Result) -> str:
    lat = np.array(res.latencies_ms or [np.nan])
    p50, p95, p99 = np.percentile(lat, [50, 95, 99])
    codes = ", ".join(f"{n:,}×{code}" for code, n in sorted(res.statuses.items()))
    answered = (len(res.latencies_ms) - res.unsent) / res.seconds
    ingest = "—"
    if res.ingest_ms:
        post_p99 = np.percentile(res.ingest_ms, 99)
        ingest = f"{res.ingested / res.seconds:,.0f}/s (POST p99 {post_p99:,.0f} ms)"
    return (
        f"| {res.name} | {answered:,.0f}/s ({codes}) | {p50:.1f} | {p95:.1f} | **{p99:.1f}** "
        f"| {lat.max():.1f} | {res.errors} / {res.unsent:,} | {ingest} "
        f"| {res.server_cpu:.0%} | {res.own_cpu:.0%} | {np.percentile(res.own_lag_ms, 99):.1f} |"
    )


def _report(results: list[Result], args: argparse.Namespace, load_before: str) -> None:
    base, cached, loaded = (float(np.percentile(r.latencies_ms, 99)) for r in results)
    command = " ".join([".venv/bin/python -m benchmarks.api_load", *sys.argv[1:]])
    lines = [
        f"`{command}`: {LINES * PROCESSES * CHARS} characteristics; {args.rate:,.0f} status "
        f"requests/s and {args.ingest:,.0f} measurements/s offered; {args.seconds:.0f} s per "
        f"phase; {os.cpu_count()} cores, load average before: {load_before}",
        "",
        "| phase | status answered | p50 ms | p95 ms | p99 ms | max ms | errors / not sent "
        "| ingested | service CPU | load generator CPU | its loop's lag p99 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *(_row(res) for res in results),
        "",
        f"p99 with ingest / p99 alone: {loaded / base:.2f}; with If-None-Match / alone: "
        f"{cached / base:.2f}. Target, p99 < 10 ms while ingesting: "
        f"{'met' if loaded < 10 else 'NOT met'}.",
        "Latency runs from each request's scheduled send time to its complete answer. CPU is "
        "the share of one core; the load generator shares the 2 cores with the service. Its "
        "loop's lag: how late its own 1 ms sleeps woke (a bound on its share of a latency).",
    ]
    print("\n" + "\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rate", type=float, default=1000.0, help="status requests/s")
    parser.add_argument("--ingest", type=float, default=10_000.0, help="measurements/s")
    parser.add_argument("--seconds", type=float, default=30.0, help="per phase")
    parser.add_argument("--connections", type=int, default=16, help="for the status load")
    parser.add_argument(
        "--profile", metavar="DIR", help="sample the service with py-spy per phase (into DIR)"
    )
    parser.add_argument("--log-level", default="INFO", help="the service's SPCMON_LOG_LEVEL")
    parser.add_argument(
        "--status-front",
        action="store_true",
        help="run the service with SPCMON_HTTP__STATUS_FRONT=true (status polls answered "
        "by a second process)",
    )
    args = parser.parse_args()
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="spcmon-load-") as tmp:
        env = {**os.environ, "SPCMON_DATA_DIR": tmp, "SPCMON_LOG_LEVEL": args.log_level}
        if args.status_front:
            env["SPCMON_HTTP__STATUS_FRONT"] = "true"
        config = Path(tmp) / "plant.yaml"
        config.write_text(_plant_yaml(), encoding="utf-8")
        keys = [
            spcmon("keys", "create", "--name", f"bench-{role}", "--role", role, env=env).strip()
            for role in ("viewer", "ingest")
        ]
        ids = [f"line{li}.p{pi}.c{ci}" for li in range(LINES) for pi in range(PROCESSES)
               for ci in range(CHARS)]  # fmt: skip
        port = free_port()
        print(f"starting the service on 127.0.0.1:{port} ({len(ids)} characteristics) ...")
        spawn = multiprocessing.get_context("spawn")  # no copy of this process's loop
        with (
            concurrent.futures.ProcessPoolExecutor(1, mp_context=spawn) as pool,
            running_service(env, config, port, Path(tmp) / "service.log") as pid,
        ):
            pool.submit(time.sleep, 0).result()  # started and imported before the phases
            results = asyncio.run(_run(Load(port, pid, keys[0], keys[1], ids, args, pool)))
    _report(results, args, load_before)


if __name__ == "__main__":
    main()
