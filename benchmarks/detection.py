"""Detection delay and false alarms per scenario, end to end through the service.

    .venv/bin/python -m benchmarks.detection [--replicates 30] [--seed 1] [--quick]

For every scenario the simulators know, a fresh service (SQLite store, in this process,
called through its HTTP API with FastAPI's test client) monitors ``--replicates``
independent characteristics (nominal 10, sigma 0.111, spec 9.5..10.5: Cp 1.5, I-MR)
three times over, each copy with another alarm policy, all fed the very same values:

- ``default``: the service's defaults (chart: Nelson rules 1-8 on the I chart, rule 1 on
  the MR chart, EWMA lambda 0.2 L 3, CUSUM k 0.4 h 6; incidents page on the CUSUM alone),
  scored twice: by its incidents (what pages people) and by its chart signals;
- ``western_electric``: the Western Electric rules 1, 2 (8 in a row), 5, 6, no EWMA/CUSUM,
  scored by its chart signals (each a page in a product that alarms on every rule);
- ``rule_1``: Shewhart's rule 1 alone (I and MR charts), scored by its chart signals.

The scenario's values (`simulators.scenario.ValueGenerator`) make ``baseline + lead +
watch`` parts per characteristic, one per second, stamped backwards from now, and the
simulators' MES pusher posts them live (alarms on). A first row without any fault shows
how often a false alarm lands in the same window by chance. Phase I is
the service's default baseline (25 points; ``--baseline``): limits are *estimated*, as on
a real line, so the in-control ARLs are below the known-parameter textbook values
(benchmarks/arl.py).
The simulators' scorer (`simulators.scorer`, which defines every figure) then reads the
charts and alarms back through the API. In-control figures come from the in-control
scenario (``--in-control-parts`` Phase II points per characteristic).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from fastapi.testclient import TestClient

from app import Settings, create_app
from app.auth import KeyRing, Role
from app.settings import SpcSettings
from simulators.faults import FaultKind
from simulators.mes_pusher import MesPusher
from simulators.plant import SimCharacteristic, derive_sigma
from simulators.plant_run import Pace
from simulators.scenario import Scenario, ValueGenerator
from simulators.scorer import ScoreReport, parse_ground_truth, score
from simulators.service_reader import read_signals

LSL, TARGET, USL = 9.5, 10.0, 10.5
POLICIES: dict[str, dict[str, Any]] = {
    "default": {},
    "western_electric": {"rules": "western_electric", "ewma": None, "cusum": None},
    "rule_1": {"rules": ["1"], "ewma": None, "cusum": None},
}


@dataclass(frozen=True)
class Case:
    """One scenario of the table: a fault kind with its size, and how long to watch."""

    label: str
    kind: FaultKind
    size: float | None = None


CASES = (
    # the null case: the same windows without any fault, so that a "detection" here is a
    # false alarm that fell in the window; every other row must be read against it
    Case("no fault (shift of 0)", "mean-shift", 0.0),
    Case("mean shift 0.5 sigma", "mean-shift", 0.5),
    Case("mean shift 1 sigma", "mean-shift", 1.0),
    Case("mean shift 2 sigma", "mean-shift", 2.0),
    Case("mean shift 3 sigma", "mean-shift", 3.0),
    Case("drift 0.05 sigma/part", "drift", 0.05),
    Case("variance x2", "variance", 2.0),
    Case("stratification (sigma x0.3)", "stratification", 0.3),
    Case("mixture ±2 sigma", "mixture", 2.0),
    Case("cycle ±1.5 sigma / 40 parts", "cyclic", 1.5),
    Case("outliers 5 sigma, 2 %", "outliers", 5.0),
    Case("frozen sensor", "freeze"),
    Case("bad OPC UA quality (20 parts)", "bad-quality"),
    Case("lost connection (30 parts)", "lost-connection"),
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run every scenario and print the Markdown table."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("alerts").setLevel(logging.ERROR)  # alarms opening are the point here
    reps = 4 if args.quick else args.replicates
    watch = 60 if args.quick else args.fault_parts
    calm = 100 if args.quick else args.in_control_parts
    cases = CASES[:3] if args.quick else CASES
    chars = _replicates(reps)
    started = time.monotonic()
    base = args.baseline
    in_control = _measure(Case("in control", "in-control"), chars, base + calm, args.seed, base)
    rows = [
        (case, _measure(case, chars, base + args.lead + watch, args.seed, base, args.lead))
        for case in cases
    ]
    print(f"Phase I baseline: {base} points per characteristic.\n")
    print(_table(in_control, rows, reps, args.lead, watch, calm))
    print(f"\n({time.monotonic() - started:.0f} s, seed {args.seed})", file=sys.stderr)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicates", type=int, default=30, help="characteristics per case")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--lead", type=int, default=50, help="in-control Phase II parts before each fault"
    )
    parser.add_argument("--fault-parts", type=int, default=300, help="parts watched per fault")
    parser.add_argument(
        "--in-control-parts",
        type=int,
        default=1000,
        help="Phase II parts per characteristic in the in-control case",
    )
    parser.add_argument("--baseline", type=int, default=SpcSettings().baseline_size,
                        help="Phase I points (default: the service's default)")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 cases, 4 replicates")
    return parser


def _replicates(count: int) -> list[SimCharacteristic]:
    sigma = derive_sigma(LSL, USL, TARGET)
    return [
        SimCharacteristic(
            f"bench.rep.r{r:03d}",
            "bench",
            "rep",
            LSL,
            USL,
            TARGET,
            TARGET,
            sigma,
            None,
            None,
            None,
            "mm",
        )
        for r in range(count)
    ]


def _service_id(policy: str, char: SimCharacteristic) -> str:
    return f"bench.{policy}.{char.id.rsplit('.', 1)[-1]}"


def _plant_yaml(chars: Sequence[SimCharacteristic]) -> dict[str, Any]:
    # one process per characteristic: the replicates are independent machines, so the
    # incidents of one must not be grouped with another's (grouping is per process)
    processes = [
        {
            "id": f"{policy}-{c.id.rsplit('.', 1)[-1]}",
            "characteristics": [
                {
                    "id": _service_id(policy, c),
                    "unit": "mm",
                    "lsl": LSL,
                    "target": TARGET,
                    "usl": USL,
                    "chart": "imr",
                    **overrides,
                }
            ],
        }
        for policy, overrides in POLICIES.items()
        for c in chars
    ]
    return {"plant": {"id": "bench"}, "lines": [{"id": "bench", "processes": processes}]}


@contextmanager
def _service(chars: Sequence[SimCharacteristic], baseline: int) -> Iterator[TestClient]:
    with tempfile.TemporaryDirectory(prefix="spcmon-detection-") as tmp:
        config = Path(tmp) / "plant.yaml"
        config.write_text(yaml.safe_dump(_plant_yaml(chars)), encoding="utf-8")
        settings = Settings(
            config=config, data_dir=Path(tmp) / "data", spc=SpcSettings(baseline_size=baseline)
        )
        settings.data_dir.mkdir()
        _, token = KeyRing(settings.keys_file).create("detection-benchmark", Role.ADMIN)
        headers = {"Authorization": f"Bearer {token}"}
        with TestClient(create_app(settings), headers=headers) as client:
            yield client


def _measure(
    case: Case,
    chars: Sequence[SimCharacteristic],
    parts: int,
    seed: int,
    baseline: int,
    lead: int = 0,
) -> dict[str, ScoreReport]:
    """Push one scenario through a fresh service; score each policy's copy.

    Each replicate has its own generator (seed ``seed * 1000 + r``): independent machines,
    whose faults (a mixture's stream, an outlier) do not strike together.
    """
    pace = Pace(takt_s=1.0, fast=True, parts=parts)
    generators = [
        ValueGenerator(
            Scenario(case.kind, seed * 1000 + r, start_part=baseline + lead, size=case.size),
            [char],
            plant_id="bench",
            takt_s=pace.takt_s,
        )
        for r, char in enumerate(chars)
    ]
    with _service(chars, baseline) as client, tempfile.TemporaryDirectory() as tmp:
        pusher = MesPusher(
            client,
            dead_letter_path=Path(tmp) / "dead.jsonl",
            batch_size=5000,
            flush_interval_s=None,
        )
        start = time.time() - parts * pace.takt_s
        for i in range(parts):
            at = datetime.fromtimestamp(start + i, UTC)
            for char, generator in zip(chars, generators, strict=True):
                readings = generator.next_readings(at)
                if char.id in readings.lost:
                    continue
                quality = "bad" if char.id in readings.bad else "good"
                for policy in POLICIES:
                    pusher.add_measurement(
                        _service_id(policy, char),
                        readings.values[char.id],
                        readings.at,
                        quality=quality,
                    )
        pusher.close()
        if pusher.stats.rows_dead_lettered:
            raise RuntimeError(f"{case.label}: the service refused rows: {pusher.stats}")
        truth = _merged_truth([g.ground_truth() for g in generators])
        return {policy: _score(client, truth, policy) for policy in POLICIES}


def _merged_truth(truths: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One ground truth of all replicates (they share the clock; faults and
    characteristics add up)."""
    merged = dict(truths[0])
    merged["characteristics"] = {k: v for t in truths for k, v in t["characteristics"].items()}
    merged["faults"] = [f for t in truths for f in t["faults"]]
    return merged


def _score(client: TestClient, truth: dict[str, Any], policy: str) -> ScoreReport:
    renamed = dict(truth)
    ids = {c: f"bench.{policy}.{c.rsplit('.', 1)[-1]}" for c in truth["characteristics"]}
    renamed["characteristics"] = {ids[c]: v for c, v in truth["characteristics"].items()}
    renamed["faults"] = [{**f, "characteristic": ids[f["characteristic"]]} for f in truth["faults"]]
    parsed = parse_ground_truth(renamed)
    return score(parsed, read_signals(client, parsed))


COLUMNS = (
    # (heading, policy, scored by): incidents are what pages people; signals are the chart
    ("default policy: incidents", "default", "incidents"),
    ("default policy: chart signals", "default", "signals"),
    ("Western Electric: chart signals", "western_electric", "signals"),
    ("rule 1 alone: chart signals", "rule_1", "signals"),
)


def _table(
    calm: dict[str, ScoreReport],
    rows: Sequence[tuple[Case, dict[str, ScoreReport]]],
    reps: int,
    lead: int,
    watch: int,
    calm_parts: int,
) -> str:
    head = ["scenario", *(c[0] for c in COLUMNS)]
    lines = [
        f"Median detection delay in chart points (detected of {reps}; a fault is watched for "
        f"{watch} points after {lead} in-control Phase II points):",
        "",
        _row(head),
        _row(["---"] * len(head)),
    ]
    for case, reports in rows:
        cells = [case.label]
        for _, policy, basis in COLUMNS:
            cells.append(_delay_cell(reports[policy], basis, reps))
        lines.append(_row(cells))
    lines += ["", f"In control ({reps} x {calm_parts} Phase II points):", ""]
    head = ["policy", "incidents or signal episodes per 1,000", "in-control ARL (points per "
            "incident or episode)", "signal points per 1,000"]  # fmt: skip
    lines += [_row(head), _row(["---"] * len(head))]
    for heading, policy, basis in COLUMNS:
        f = calm[policy].false_alarms
        if basis == "incidents":
            rate = f.alarms_per_1000
            arl = f.in_control_points / f.alarms if f.alarms else None
        else:
            rate, arl = f.episodes_per_1000, f.arl
        lines.append(_row([heading, _num(rate), _num(arl), _num(f.per_1000)]))
    return "\n".join(lines)


def _delay_cell(report: ScoreReport, basis: str, reps: int) -> str:
    """ "median (detected/reps)", and what else happened to the rest."""
    (kind,) = report.kinds
    if basis == "incidents":
        statuses = [s.alarm.status for s in report.faults]
        cell = f"{_num(kind.alarm_delay_points.median)} ({kind.alarm_detected}/{reps})"
    else:
        statuses = [s.chart.status for s in report.faults]
        cell = f"{_num(kind.delay_points.median)} ({kind.detected}/{reps})"
    extra = [f"{statuses.count(s)} {s}" for s in ("masked", "unjudged") if statuses.count(s)]
    return cell + (f", {', '.join(extra)}" if extra else "")


def _row(cells: Sequence[object]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:.3g}"


if __name__ == "__main__":
    raise SystemExit(main())
