"""Incident policies on estimated limits: in-control ARL and detection delay, by simulation.

    .venv/bin/python benchmarks/incident_policy.py [--replicates 4000] [--seed 1] [--quick]

An *incident policy* says which of the engine's signal kinds page someone (rule ids on
chart "i"/"mr", "ewma", "cusum"), with which EWMA/CUSUM parameters the characteristic's
engine runs, and whether a page needs a confirming second signal point. Each policy is
run on individuals data (I-MR), N(0, 1) in control, through ``spc.Engine`` itself: every
replicate is one characteristic of one engine, and the engine estimates its own Phase I
limits from its first ``m`` points (centre = mean, sigma = MR-bar / d2), exactly as on a
line. Rows with ``m = known`` install the true limits instead (centre 0, sigma 1), to
compare with the published known-parameter figures.

In-control ARL (``ARL0``): after Phase I, in-control points are fed until each
replicate's first incident; the run length counts Phase II points up to and including it
(zero-state: EWMA starts at the centre with its exact time-varying limits, CUSUM at 0).
The mean over replicates is the *unconditional* ARL (averaged over the randomness of the
Phase I estimate). With small baselines it is dominated by the few replicates whose sigma
was over-estimated (sigma-hat 40 % too large puts rule 1 at 4.2 sigma: a conditional ARL0
of about 37,000), so its standard error is unreliable there and it says little about a typical
characteristic: the median run length and the share of replicates paged within 100
in-control points are printed too (a known-parameter chart with ARL0 370, geometric run
lengths, has median 256 and 24 %). A run is cut at ``ARL0_CAP`` points and counted at the
cap; the table says how many were, and the mean is then a lower bound.

Detection delay (steady state): after Phase I, ``LEAD`` = 50 in-control Phase II points,
then the fault from the next point on: a mean shift of 0.5, 1, 2 or 3 sigma, a linear
drift of 0.05 sigma per point (0.05 on the first faulty point) or sigma x 2. The delay is
the run length from the first faulty point, inclusive, to the first incident. Replicates
that raise a (false) incident during the 50 lead points are excluded from the delay
statistics and counted separately (``false in lead``); faults not detected within
``DELAY_CAP`` points count as undetected (shown only when there are any).

Published known-parameter zero-state ARLs (normal data) printed for comparison: Shewhart
rule 1: 370.4, 155.2, 43.9, 6.3, 2.0 for shifts 0, 0.5, 1, 2, 3 sigma (Montgomery,
*Introduction to SQC*, ch. 6); EWMA lambda 0.1 L 2.814: 500, 31.3, 10.3, 4.4, 2.9, and
lambda 0.05 L 2.615: 500, 28.8, 11.4, 5.2, 3.5 (Lucas and Saccucci, Technometrics 32(1),
1990, asymptotic limits); tabular CUSUM k 0.5: h 4: 168, 26.6, 8.38, 3.34, 2.19; h 5:
465, 38.0, 10.4, 4.01, 2.57 (Montgomery, ch. 9).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from spc import CusumConfig, Engine, EwmaConfig, LimitSet, RuleSet
from spc.constants import D2_N2, D4_N2
from spc.signals import KINDS

LEAD = 50
DELAY_CAP = 2_000
ARL0_CAP = 200_000
BATCH_POINTS = 200_000  # points per ``Engine.process`` call while many replicates run
KNOWN = 0  # baseline size meaning "known parameters"
QUICK = ("service default today", "CUSUM k0.4 h6")  # the policies of a --quick run

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Policy:
    """Signal kinds that page, the engine parameters behind them, and the confirmation.

    ``pages`` holds (rule, chart) pairs as in ``spc.signals.KINDS``. ``confirm_within``
    = 1 pages on the first signal point; w > 1 pages on a signal point that follows
    another one at most w - 1 points earlier (2 signal points within w).
    """

    name: str
    pages: frozenset[tuple[str, str]]
    ewma: EwmaConfig | None = None
    cusum: CusumConfig | None = None
    confirm_within: int = 1

    def rules(self) -> RuleSet:
        """The run rules the engine must evaluate for this policy."""
        return RuleSet(enabled=frozenset(r for r, c in self.pages if c in ("i", "mr")))

    def describe(self) -> str:
        """What pages, in the engine's terms: rule ids per chart, EWMA and CUSUM parameters."""
        parts = []
        for chart in ("i", "mr"):
            rules = sorted(r for r, c in self.pages if c == chart)
            if rules:
                ids = f"{rules[0]}-{rules[-1]}" if len(rules) > 2 else ", ".join(rules)
                parts.append(f"rule {ids} ({chart.upper()})")
        if EWMA in self.pages and self.ewma:
            parts.append(f"EWMA λ{self.ewma.lam:g} L{self.ewma.L:g}")
        if CUSUM in self.pages and self.cusum:
            parts.append(f"CUSUM k{self.cusum.k:g} h{self.cusum.h:g}")
        confirm = self.confirm_within
        return " + ".join(parts) + (f"; 2 signal points within {confirm}" if confirm > 1 else "")

    def kind_mask(self) -> npt.NDArray[np.bool_]:
        """Which of the engine's signal kinds (``KINDS`` index) page."""
        return np.array([kind in self.pages for kind in KINDS])


@dataclass(frozen=True)
class Fault:
    """A fault from the first faulty point (index 0) on; ``kind`` shift, drift or sigma."""

    label: str
    kind: str
    size: float

    def profile(self, since: Ints) -> tuple[Floats, Floats]:
        """(mean, sigma) at points ``since`` the fault started (negative: before it)."""
        on = since >= 0
        mean = np.zeros(since.size)
        sigma = np.ones(since.size)
        if self.kind == "shift":
            mean[on] = self.size
        elif self.kind == "drift":
            mean[on] = self.size * (since[on] + 1)
        else:
            sigma[on] = self.size
        return mean, sigma


IN_CONTROL = Fault("in control", "shift", 0.0)
FAULTS = (
    Fault("0.5σ", "shift", 0.5),
    Fault("1σ", "shift", 1.0),
    Fault("2σ", "shift", 2.0),
    Fault("3σ", "shift", 3.0),
    Fault("drift 0.05σ/pt", "drift", 0.05),
    Fault("σ×2", "sigma", 2.0),
)
I1, MR1 = ("1", "i"), ("1", "mr")
EWMA, CUSUM = ("ewma", "ewma"), ("cusum", "cusum")
NELSON_I = frozenset((str(r), "i") for r in range(1, 9))
POLICIES = (
    Policy("service default today", NELSON_I | {MR1, EWMA, CUSUM}, EwmaConfig(0.2, 3.0),
           CusumConfig(0.5, 4.0)),
    Policy("rule 1 (I)", frozenset({I1})),
    Policy("rule 1 (I and MR)", frozenset({I1, MR1})),
    Policy("EWMA λ0.1 L2.814", frozenset({EWMA}), EwmaConfig(0.1, 2.814)),
    Policy("EWMA λ0.05 L2.615", frozenset({EWMA}), EwmaConfig(0.05, 2.615)),
    Policy("CUSUM k0.5 h5", frozenset({CUSUM}), cusum=CusumConfig(0.5, 5.0)),
    Policy("CUSUM k0.4 h6", frozenset({CUSUM}), cusum=CusumConfig(0.4, 6.0)),
    Policy("CUSUM k0.5 h6", frozenset({CUSUM}), cusum=CusumConfig(0.5, 6.0)),
    Policy("rule 1 (I) + CUSUM k0.5 h5", frozenset({I1, CUSUM}), cusum=CusumConfig(0.5, 5.0)),
    Policy("CUSUM k0.5 h5, confirmed", frozenset({CUSUM}), cusum=CusumConfig(0.5, 5.0),
           confirm_within=3),
)  # fmt: skip


def build_engine(policy: Policy, m: int, reps: int, rng: np.random.Generator) -> Engine:
    """``reps`` characteristics under ``policy``, past Phase I (``m`` points) or known."""
    engine = Engine(baseline_size=max(m, 2), window=2, capacity=reps)
    for _ in range(reps):
        engine.add_characteristic(rules=policy.rules(), ewma=policy.ewma, cusum=policy.cusum)
    if m == KNOWN:
        limits = LimitSet(1, 0.0, 3.0, -3.0, 1.0, D2_N2, D4_N2 * D2_N2, 10**6)
        for row in range(reps):
            engine.restore_limits(row, limits)
    else:
        engine.process(np.repeat(np.arange(reps), m), rng.standard_normal(reps * m))
    return engine


def first_incidents(
    policy: Policy, m: int, reps: int, fault: Fault, lead: int, cap: int, rng: np.random.Generator
) -> Ints:
    """Phase II index (0-based) of each replicate's first incident; -1 if none by ``cap``.

    The fault starts at Phase II index ``lead``. All replicates share one clock; each
    ``process`` call feeds every running replicate the next ``span`` points in order.
    """
    engine = build_engine(policy, m, reps, rng)
    mask = policy.kind_mask()
    first = np.full(reps, -1, dtype=np.int64)
    last = np.full(reps, -(10**9), dtype=np.int64)  # each replicate's last signal point
    alive = np.arange(reps, dtype=np.int64)
    t = 0
    while alive.size and t < cap:
        span = int(min(max(BATCH_POINTS // alive.size, 8), 8192, cap - t))
        mean, sigma = fault.profile(np.arange(t, t + span, dtype=np.int64) - lead)
        values = mean + sigma * rng.standard_normal((alive.size, span))
        table = engine.process(np.repeat(alive, span), values.ravel()).table
        points = np.unique(table.position[mask[table.kind]])
        local, when = points // span, t + points % span
        hit, at = _paging_points(local, when, last[alive], policy.confirm_within)
        np.maximum.at(last, alive[local], when)
        first[alive[hit]] = at
        alive = np.delete(alive, hit)
        t += span
    return first


def _paging_points(local: Ints, when: Ints, last: Ints, within: int) -> tuple[Ints, Ints]:
    """First paging point per replicate among its signal points (sorted by replicate, time).

    ``last`` is each replicate's last signal point before this batch (confirmation may
    pair a point with one of the previous batch).
    """
    if within > 1 and local.size:
        same = np.r_[False, local[1:] == local[:-1]]
        before = np.where(same, np.r_[0, when[:-1]], last[local])
        ok = when - before < within
        local, when = local[ok], when[ok]
    hit, index = np.unique(local, return_index=True)
    return hit, when[index]


@dataclass(frozen=True)
class Row:
    """One table row: a policy at one baseline size."""

    m: int
    arl0: Ints  # in-control run lengths
    delays: tuple[tuple[Ints, int, int], ...]  # per fault: (delays, false in lead, missed)


def measure(policy: Policy, m: int, reps: int, delay_reps: int, rng: np.random.Generator) -> Row:
    """In-control run lengths and the delay of every fault in ``FAULTS``."""
    calm = first_incidents(policy, m, reps, IN_CONTROL, 0, ARL0_CAP, rng) + 1
    calm[calm == 0] = ARL0_CAP
    delays = []
    for fault in FAULTS:
        first = first_incidents(policy, m, delay_reps, fault, LEAD, LEAD + DELAY_CAP, rng)
        false = int(np.sum((first >= 0) & (first < LEAD)))
        delays.append((first[first >= LEAD] - LEAD + 1, false, int(np.sum(first < 0))))
    return Row(m, calm, tuple(delays))


def table(policy: Policy, rows: Sequence[Row], delay_reps: int) -> str:
    """The Markdown table of one policy: one row per baseline size."""
    head = ["m", "ARL0 ± SE", "median RL0", "paged ≤ 100", *(f.label for f in FAULTS),
            "false in lead"]  # fmt: skip
    title = f"**{policy.name}** (pages on {policy.describe()})"
    lines = [title, "", _md(head), _md(["---"] * len(head))]
    for row in rows:
        rl = row.arl0
        se = rl.std(ddof=1) / math.sqrt(rl.size)
        censored = int(np.sum(rl >= ARL0_CAP))
        cells = [
            "known" if row.m == KNOWN else str(row.m),
            f"{rl.mean():.0f} ± {se:.0f}" + (f" ({censored} at cap)" if censored else ""),
            f"{np.median(rl):.0f}",
            f"{np.mean(rl <= 100):.0%}",
        ]
        cells += [_delay_cell(d, missed) for d, _, missed in row.delays]
        false = sum(f for _, f, _ in row.delays) / (len(FAULTS) * delay_reps)
        lines.append(_md([*cells, f"{false:.0%}"]))
    return "\n".join(lines)


def _delay_cell(delays: Ints, missed: int) -> str:
    if not delays.size:
        return "–"
    cell = f"{np.median(delays):.0f} / {delays.mean():.1f}"
    return cell + (f" ({missed} missed)" if missed else "")


def _md(cells: Sequence[object]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


_NOTE = """\
ARL0: {reps:,} replicates per row, mean ± standard error (runs cut at {cap:,} points are
counted at the cap), median, share with a false incident within 100 points. Delays: median /
mean run length from the first faulty point, {delay_reps:,} replicates per fault, the fault
after {lead} in-control Phase II points; "false in lead": share of those replicates paged
before the fault (left out of the delays); "missed": no incident within {delay_cap:,} points.
Known-parameter references (zero-state ARL for shifts 0 / 0.5 / 1 / 2 / 3 sigma): rule 1
370 / 155 / 44 / 6.3 / 2.0 (Montgomery ch. 6); EWMA λ0.1 L2.814 500 / 31.3 / 10.3 / 4.4 /
2.9 and λ0.05 L2.615 500 / 28.8 / 11.4 / 5.2 / 3.5 (Lucas and Saccucci 1990, asymptotic
limits; the engine's exact limits give a slightly lower ARL0); CUSUM k0.5 h4 168 / 26.6 /
8.38 / 3.34 / 2.19 and h5 465 / 38.0 / 10.4 / 4.01 / 2.57 (Montgomery ch. 9). Delays here are
steady-state, so they differ a little from these zero-state values."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run every policy at every baseline size; print one Markdown table per policy."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replicates", type=int, default=4000, help="in-control replicates")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="a smoke run: fewer of everything")
    args = parser.parse_args(argv)
    reps = 300 if args.quick else args.replicates
    delay_reps = max(reps // 4, 100)
    sizes = (25, 100) if args.quick else (KNOWN, 25, 50, 100, 200)
    rng = np.random.default_rng(args.seed)
    started = time.monotonic()
    for policy in [p for p in POLICIES if p.name in QUICK] if args.quick else POLICIES:
        rows = [measure(policy, m, reps, delay_reps, rng) for m in sizes]
        print(table(policy, rows, delay_reps) + "\n", flush=True)
    print(_NOTE.format(reps=reps, delay_reps=delay_reps, lead=LEAD, cap=ARL0_CAP,
                       delay_cap=DELAY_CAP), flush=True)  # fmt: skip
    print(f"({time.monotonic() - started:.0f} s, seed {args.seed})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
