"""MES push throughput in process, and where each batch's time goes.

    .venv/bin/python -m benchmarks.ingest_profile [--batches 200] [--rows 500] [--cpus 1]
        [--concurrency 1] [--key] [--historical] [--prefill ROWS] [--gc-freeze] [--profile]

Builds the real app (``app.create_app``) over a generated plant of ``--rows`` I-MR
characteristics (default rules, EWMA and CUSUM, no collectors; SQLite store, default
settings) in a temporary directory, with an ingest key made as an administrator makes
one, and drives it through ``httpx.ASGITransport`` (no sockets: the HTTP server's own
cost is not counted, the framework's, the app's and the store's are). Every
characteristic is first primed past its 25-point baseline; then ``--batches`` bodies of
``--rows`` rows (one new value per characteristic, ``time`` now, bodies encoded before
the clock starts) are pushed, ``--concurrency`` at a time. ``--cpus 1`` pins the whole
process (event loop, SQLite writer and engine threads, client) to one core. ``--key``
sends an ``idempotency_key`` (ingest ids from it, not from each row's content);
``--historical`` marks the batches historical (charted, but no live events or alarms);
``--prefill`` stores that many older rows in the file first, as a plant that has been
running has them; ``--gc-freeze`` calls ``gc.freeze()`` once started, to show what the
cyclic garbage collector costs (its time is also measured in every run).

The split of each batch's server time comes from ``time.perf_counter`` wrappers that this
benchmark puts around the framework's and the service's functions (nothing is
instrumented in the product):

- parse: ``Request.json`` / reading the body (FastAPI's JSON decoding);
- validate: FastAPI's dependency solving, i.e. the body's pydantic validation plus the
  API-key check (``auth`` is that check alone, shown apart);
- normalise: ``ingest.mes.normalise`` (``Measurement`` objects, ingest ids);
- store: ``add_measurements`` (awaited: the writer thread's work), dead letters included;
- engine: the monitor's engine update (the numba kernel in a worker thread, the new
  limits saved);
- events: the live ``point`` and ``violation`` events of the monitor;
- alarms: the rest of ``Monitor.evaluate`` (the alarm manager, its saves awaited);
- metrics: the pipeline's observer, the Prometheus ingest metrics of each flush;
- pipeline: the rest of ``Pipeline.submit_and_wait`` (queueing, grouping);
- route rest: the rest of the route function (building the answer model);
- response: the rest of the ASGI call (response validation, JSON encoding, middleware).

Then a baseline of each stage alone, on the same bodies in the same run: pydantic
validation of the body bytes, ``normalise``, and the store's ``add_measurements`` on a
fresh store, so that the in-app figures can be told from the framework around them.
``--profile`` adds the top functions by own time (cProfile of the event loop's thread,
timed phase only).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import functools
import gc
import hashlib
import inspect
import io
import json
import os
import pstats
import sqlite3
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fastapi.routing
import httpx
import numpy as np
import starlette.requests
from fastapi import FastAPI

from app import Settings, create_app
from app.api.routes import measurements as measurement_routes
from app.auth import KeyRing, Role
from ingest import mes
from ingest.sqlite_store import SqliteStore

PRIME_POINTS = 30  # past the 25-point Phase I baseline: limits frozen, capability live
STAGES = (
    "parse",
    "validate",
    "auth",
    "normalise",
    "store",
    "engine",
    "events",
    "alarms",
    "metrics",
    "pipeline",
    "route rest",
    "response",
)


class Timers:
    """Seconds per stage, summed over the timed batches (switched on by ``active``)."""

    def __init__(self) -> None:
        self.active = False
        self.total: dict[str, float] = defaultdict(float)
        self.count: dict[str, int] = defaultdict(int)
        self._gc_started = 0.0

    def add(self, stage: str, seconds: float) -> None:
        if self.active:
            self.total[stage] += seconds
            self.count[stage] += 1

    def gc_callback(self, phase: str, info: dict[str, int]) -> None:
        """Time spent in the cyclic garbage collector (all of it, whatever stage ran)."""
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.add(f"gc{info['generation']}", time.perf_counter() - self._gc_started)

    def wrap_async(self, stage: str, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
        @functools.wraps(fn)
        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                self.add(stage, time.perf_counter() - started)

        return timed

    def wrap_sync(self, stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(stage, time.perf_counter() - started)

        return timed


def _plant_yaml(n: int) -> str:
    per_process = 10
    out = ["plant: {id: bench, name: Ingest profile plant}", "lines:", "  - id: line0"]
    out.append("    processes:")
    for p in range((n + per_process - 1) // per_process):
        out += [f"      - id: p{p}", "        characteristics:"]
        out += [
            f"          - {{id: line0.p{p}.c{c}, lsl: 9.0, target: 10.0, usl: 11.0}}"
            for c in range(min(per_process, n - p * per_process))
        ]
    return "\n".join(out) + "\n"


def _ids(n: int) -> list[str]:
    return [f"line0.p{i // 10}.c{i % 10}" for i in range(n)]


def _body(
    ids: list[str], t: datetime, rng: np.random.Generator, key: str | None, historical: bool
) -> bytes:
    stamp = t.isoformat()
    values = rng.normal(10.0, 0.1, len(ids)).tolist()
    rows = [
        {"characteristic": c, "value": v, "time": stamp} for c, v in zip(ids, values, strict=True)
    ]
    body: dict[str, Any] = {"measurements": rows}
    if key is not None:
        body["idempotency_key"] = key
    if historical:
        body["historical"] = True
    return json.dumps(body).encode()


@contextlib.contextmanager
def _instrumented(app: FastAPI, timers: Timers) -> Iterator[None]:
    """The framework's and the service's stage functions, wrapped in timers.

    Functions looked up at call time in a module or class are replaced there and put
    back; the service's methods are shadowed by instance attributes, then deleted.
    """
    service = app.state.service
    monitor, store, alarms = service.monitor, service.store, service.alarms
    shared: list[tuple[Any, str, str]] = [
        (starlette.requests.Request, "json", "parse"),
        (starlette.requests.Request, "body", "read body"),
        (fastapi.routing, "solve_dependencies", "validate"),
        (fastapi.routing, "run_endpoint_function", "endpoint"),
        (measurement_routes, "normalise", "normalise"),
    ]
    own: list[tuple[Any, str, str]] = [
        (service.keys, "verify", "auth"),
        (store, "add_measurements", "store"),
        (store, "add_dead_letters", "store"),
        (monitor, "evaluate", "evaluate"),
        (monitor, "_run_engine", "engine"),
        (monitor, "_versions_in_force", "events"),
        (monitor, "_publish_live", "events"),
        (alarms, "handle", "alarms"),
        (store, "save_alarm", "alarm saves"),
        (service.pipeline, "submit_and_wait", "submit"),
        (service.pipeline._observer, "flushed", "metrics"),
    ]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in shared]
    try:
        for owner, name, stage in shared + own:
            fn = getattr(owner, name)
            wrap = timers.wrap_async if inspect.iscoroutinefunction(fn) else timers.wrap_sync
            setattr(owner, name, wrap(stage, fn))
        yield
    finally:
        for owner, name, fn in saved:
            setattr(owner, name, fn)
        for owner, name, _ in own:
            with contextlib.suppress(AttributeError):
                delattr(owner, name)


def _split(raw: dict[str, float]) -> dict[str, float]:
    """Exclusive seconds per stage from the nested timers."""
    get = raw.get
    return {
        # a route that reads the body itself has no FastAPI "parse"; "read body" is
        # then the raw read, counted with the parse
        "parse": get("parse", 0.0) or get("read body", 0.0),
        "validate": get("validate", 0.0) - get("auth", 0.0),
        "auth": get("auth", 0.0),
        "normalise": get("normalise", 0.0),
        "store": get("store", 0.0),
        "engine": get("engine", 0.0),
        "events": get("events", 0.0),
        "alarms": get("evaluate", 0.0) - get("engine", 0.0) - get("events", 0.0),
        "metrics": get("metrics", 0.0),
        "pipeline": get("submit", 0.0)
        - get("store", 0.0)
        - get("evaluate", 0.0)
        - get("metrics", 0.0),
        "route rest": get("endpoint", 0.0) - get("normalise", 0.0) - get("submit", 0.0),
        "response": get("asgi", 0.0)
        - get("endpoint", 0.0)
        - get("validate", 0.0)
        - (get("parse", 0.0) or get("read body", 0.0)),
    }


class _TimedApp:
    """The ASGI app with its whole call timed (the server time of each request)."""

    def __init__(self, app: FastAPI, timers: Timers) -> None:
        self.app, self.timers = app, timers
        self.calls: list[float] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            if self.timers.active and scope["type"] == "http":
                seconds = time.perf_counter() - started
                self.timers.add("asgi", seconds)
                self.calls.append(seconds)


async def _prefill(settings: Settings, ids: list[str], rows: int, start: datetime) -> None:
    """``rows`` older measurements written straight into the store's file, as a plant
    running for a while has them (content-hashed ingest ids, as MES pushes get)."""
    store = SqliteStore(settings.sqlite_path)
    await store.open()  # creates the schema
    await store.close()
    t0 = int(start.timestamp() * 1e6)
    with contextlib.closing(sqlite3.connect(settings.sqlite_path)) as conn, conn:
        conn.executemany(
            "INSERT INTO measurements (ingest_id, characteristic, time_us, value, part, lot, "
            "source, quality) VALUES (?,?,?,?,NULL,NULL,'http:mes','good')",
            (
                (
                    "mes:" + hashlib.sha256(b"prefill%d" % k).hexdigest()[:32],
                    ids[k % len(ids)],
                    t0 + (k // len(ids)) * 1_000_000,
                    10.0 + (k % 97) * 1e-3,
                )
                for k in range(rows)
            ),
        )


async def _push_all(
    client: httpx.AsyncClient, bodies: list[bytes], concurrency: int, headers: dict[str, str]
) -> int:
    accepted = 0
    queue = list(reversed(bodies))

    async def worker() -> None:
        nonlocal accepted
        while queue:
            answer = await client.post("/api/v1/measurements", content=queue.pop(), headers=headers)
            if answer.status_code != 202:
                raise RuntimeError(f"push refused: {answer.status_code} {answer.text[:300]}")
            accepted += answer.json()["accepted"]

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return accepted


async def _drive(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    config = tmp / "plant.yaml"
    config.write_text(_plant_yaml(args.rows), encoding="utf-8")
    settings = Settings(config=config, data_dir=tmp / "data")
    _, token = KeyRing(settings.keys_file).create("bench-ingest", Role.INGEST)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    ids = _ids(args.rows)
    rng = np.random.default_rng(1)
    now = datetime.now(UTC)
    if args.prefill:
        await _prefill(settings, ids, args.prefill, now - timedelta(days=30))
    prime = [
        _body(ids, now - timedelta(minutes=30) + timedelta(seconds=k), rng, None, False)
        for k in range(PRIME_POINTS)
    ]
    timed = [
        _body(ids, now - timedelta(minutes=5) + timedelta(milliseconds=k), rng,
              f"bench-{k}" if args.key else None, args.historical)
        for k in range(args.batches)
    ]  # fmt: skip
    app, timers = create_app(settings), Timers()
    timed_app = _TimedApp(app, timers)
    transport = httpx.ASGITransport(app=timed_app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=120) as client,
    ):
        await _push_all(client, prime, 1, headers)
        if args.gc_freeze:
            gc.collect()
            gc.freeze()  # what a composition root could do once started: see the report
        profiler = cProfile.Profile() if args.profile else None
        with _instrumented(app, timers):
            timers.active = True
            gc.callbacks.append(timers.gc_callback)
            cpu0, wall0 = time.process_time(), time.perf_counter()
            if profiler is not None:
                profiler.enable()
            accepted = await _push_all(client, timed, args.concurrency, headers)
            if profiler is not None:
                profiler.disable()
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            timers.active = False
            gc.callbacks.remove(timers.gc_callback)
        stored = await app.state.service.store.count_measurements()
    expected = args.rows * (PRIME_POINTS + args.batches) + args.prefill
    if accepted != args.rows * args.batches or stored != expected:
        raise RuntimeError(f"accepted {accepted}, stored {stored}; expected {expected} stored")
    return {
        "wall": wall,
        "cpu": cpu,
        "accepted": accepted,
        "calls": timed_app.calls,
        "split": _split(timers.total),
        "raw": dict(timers.total),
        "counts": dict(timers.count),
        "bodies": timed,
        "profile": profiler,
    }


async def _stage_baselines(bodies: list[bytes], rows: int, tmp: Path) -> dict[str, float]:
    """Seconds per batch of each stage alone, on the same bodies."""
    n = len(bodies)
    known = frozenset(_ids(rows))
    started = time.perf_counter()
    batches = [mes.MesBatch.model_validate_json(b) for b in bodies]
    validate = (time.perf_counter() - started) / n
    started = time.perf_counter()
    batches2 = [mes.MesBatch.model_validate(json.loads(b)) for b in bodies]
    parse_then_validate = (time.perf_counter() - started) / n
    del batches2
    stamp = datetime.now(UTC)
    started = time.perf_counter()
    subs = [mes.normalise(b, known, stamp)[0] for b in batches]
    normalise = (time.perf_counter() - started) / n
    store = SqliteStore(tmp / "alone.sqlite3")
    await store.open()
    try:
        started = time.perf_counter()
        for sub in subs:
            await store.add_measurements(sub.measurements)
        write = (time.perf_counter() - started) / n
    finally:
        await store.close()
    return {
        "json.loads + MesBatch.model_validate": parse_then_validate,
        "MesBatch.model_validate_json (bytes)": validate,
        "normalise": normalise,
        "SqliteStore.add_measurements (fresh file)": write,
    }


def _command(args: argparse.Namespace) -> str:
    flags = [f"--batches {args.batches}", f"--rows {args.rows}", f"--cpus {args.cpus}"]
    flags += [f"--concurrency {args.concurrency}"] if args.concurrency != 1 else []
    flags += [f"--{flag}" for flag in ("key", "historical") if getattr(args, flag)]
    flags += ["--gc-freeze"] if args.gc_freeze else []
    flags += [f"--prefill {args.prefill}"] if args.prefill else []
    return " ".join([".venv/bin/python -m benchmarks.ingest_profile", *flags])


def _report(args: argparse.Namespace, run: dict[str, Any], alone: dict[str, float]) -> str:
    n = args.batches
    calls_ms = np.array(run["calls"]) * 1e3
    server = calls_ms.sum() / 1e3
    p50, p95, p99 = np.percentile(calls_ms, [50, 95, 99])
    raw, counts = run["raw"], run["counts"]
    gc_s = sum(v for k, v in raw.items() if k.startswith("gc"))
    gc2 = counts.get("gc2", 0)
    kind = "historical (no events, no alarms)" if args.historical else "live"
    lines = [
        f"`{_command(args)}`: {args.rows} I-MR characteristics, {n} {kind} batches of "
        f"{args.rows} rows ({'with' if args.key else 'without'} idempotency_key), "
        f"{args.concurrency} in flight, {args.prefill:,} rows stored before, process on "
        f"cores {sorted(os.sched_getaffinity(0))}",
        "",
        f"- through POST: **{run['accepted'] / run['wall']:,.0f} measurements/s** wall clock "
        f"(client included), {run['accepted'] / server:,.0f}/s of server time; process CPU "
        f"{run['cpu'] / run['wall']:.0%} of one core",
        f"- server time per batch: mean {calls_ms.mean():.1f} ms, p50 {p50:.1f}, "
        f"p95 {p95:.1f}, p99 {p99:.1f}, max {calls_ms.max():.1f}",
        f"- alarm saves per batch: {counts.get('alarm saves', 0) / n:.1f} "
        f"({raw.get('alarm saves', 0.0) / max(counts.get('alarm saves', 0), 1) * 1e3:.2f} ms "
        f"each, awaited); garbage collection: {gc_s / n * 1e3:.2f} ms per batch "
        f"({gc2} full collections)",
        "",
        "| stage | ms per batch | share of server time |",
        "|---|---|---|",
    ]
    split = run["split"]
    for stage in STAGES:
        seconds = split.get(stage, 0.0)
        lines.append(f"| {stage} | {seconds / n * 1e3:.2f} | {seconds / server:.0%} |")
    lines += ["", "| stage alone, same bodies | ms per batch |", "|---|---|"]
    lines += [f"| {name} | {seconds * 1e3:.2f} |" for name, seconds in alone.items()]
    if args.concurrency > 1:
        lines += ["", "With batches in flight together, stages overlap: the split is indicative."]
    return "\n".join(lines)


def _profile_text(profiler: cProfile.Profile, top: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--batches", type=int, default=200, help="timed batches")
    parser.add_argument("--rows", type=int, default=500, help="rows per batch = characteristics")
    parser.add_argument("--concurrency", type=int, default=1, help="batches in flight")
    parser.add_argument("--cpus", type=int, default=1, help="pin to this many cores (0: all)")
    parser.add_argument("--key", action="store_true", help="send an idempotency_key")
    parser.add_argument(
        "--historical", action="store_true", help="historical batches: no events or alarms"
    )
    parser.add_argument(
        "--gc-freeze", action="store_true", help="gc.freeze() after start-up and priming"
    )
    parser.add_argument(
        "--prefill", type=int, default=0, help="measurements already stored before the run"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile the timed phase")
    args = parser.parse_args()
    if args.cpus:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: args.cpus])
    with tempfile.TemporaryDirectory(prefix="spcmon-ingest-") as tmp:
        run = asyncio.run(_drive(args, Path(tmp)))
        alone = asyncio.run(_stage_baselines(run["bodies"], args.rows, Path(tmp)))
    print(_report(args, run, alone))
    if run["profile"] is not None:
        print("\n" + _profile_text(run["profile"], 40))


if __name__ == "__main__":
    main()
