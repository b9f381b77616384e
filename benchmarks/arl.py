"""Average run length (ARL) of the engine's detectors, by simulation.

    .venv/bin/python benchmarks/arl.py [--replicates 10000] [--seed 1]

Known-parameter (Phase II) setting: limits are installed at the true mean 0 and sigma 1,
then N(shift, 1) points are fed until each replicate's first signal ("zero-state": the
shift is present from the first point, EWMA starts at the centre, CUSUM at 0). Each
replicate is one characteristic of one engine; a replicate leaves once it signals. The
run length counts points up to and including the first signal.

Published values printed alongside (known parameters, normal data):
- Shewhart individuals chart, rule 1 alone: ARL = 1 / P(|Z + shift| > 3) = 370.4, 155.2,
  43.9, 6.3 for shifts 0, 0.5, 1, 2 sigma (Montgomery, Introduction to SQC, ch. 6).
- Western Electric zone rules 1, 2 (8 in a row), 5, 6: in-control ARL 91.75 (Champ and
  Woodall, Technometrics 29(4), 1987).
- Tabular CUSUM, k = 0.5, h = 4: 168, 26.6, 8.38, 3.34 (Montgomery, ch. 9, table of
  CUSUM ARLs for k = 1/2).
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from spc import CusumConfig, Engine, EwmaConfig, LimitSet, RuleSet
from spc.constants import D2_N2, D4_N2

SHIFTS = (0.0, 0.5, 1.0, 2.0)
PUBLISHED: dict[str, tuple[float | None, ...]] = {
    "rule 1 (I chart)": (370.4, 155.2, 43.9, 6.3),
    "Western Electric 1,2,5,6": (91.75, None, None, None),
    "CUSUM k=0.5 h=4": (168.0, 26.6, 8.38, 3.34),
}
RULE_1 = RuleSet(enabled=frozenset({"1"}))
Config = tuple[RuleSet | None, EwmaConfig | None, CusumConfig | None, bool]
CONFIGS: dict[str, Config] = {
    # name: (rules, ewma, cusum, include the MR chart's rule 1)
    "rule 1 (I chart)": (RULE_1, None, None, False),
    "rule 1 (I and MR charts)": (RULE_1, None, None, True),
    "Western Electric 1,2,5,6": (
        RuleSet(enabled=frozenset("1256"), same_side=8),
        None,
        None,
        False,
    ),
    "Nelson 1-8 (default rules)": (RuleSet(), None, None, False),
    "EWMA lam=0.2 L=3": (None, EwmaConfig(0.2, 3.0), None, False),
    "CUSUM k=0.5 h=4": (None, None, CusumConfig(0.5, 4.0), False),
    "service default (Nelson+EWMA+CUSUM, I+MR)": (RuleSet(), EwmaConfig(), CusumConfig(), True),
}
NO_RULES = RuleSet(enabled=frozenset({"1"}))


def _engine(
    n: int, cfg: tuple[RuleSet | None, EwmaConfig | None, CusumConfig | None, bool]
) -> Engine:
    rules, ewma, cusum, with_mr = cfg
    engine = Engine(baseline_size=2, window=2, capacity=n)
    mr_ucl = D4_N2 * D2_N2 if with_mr else math.inf
    # rule 1 is disabled by limits at infinity when a config has no run rules at all
    ucl = 3.0 if rules is not None else math.inf
    limits = LimitSet(1, 0.0, ucl, -ucl, 1.0, D2_N2, mr_ucl, 2)
    for _ in range(n):
        row = engine.add_characteristic(rules=rules or NO_RULES, ewma=ewma, cusum=cusum)
        engine.restore_limits(row, limits)
    return engine


def arl(
    cfg: Config, shift: float, replicates: int, rng: np.random.Generator
) -> tuple[float, float]:
    """(mean run length, its standard error)."""
    engine = _engine(replicates, cfg)
    alive = np.arange(replicates)
    lengths = np.zeros(replicates)
    t = 0
    while alive.size:
        t += 1
        result = engine.process(alive, rng.normal(shift, 1.0, alive.size))
        hit = np.unique(alive[result.table.position]) if result.count else alive[:0]
        lengths[hit] = t
        alive = np.setdiff1d(alive, hit, assume_unique=True)
        if t > 100_000:
            raise RuntimeError("no signal after 100,000 points; check the configuration")
    return float(lengths.mean()), float(lengths.std(ddof=1) / math.sqrt(replicates))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replicates", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    header = "".join(f"{f'shift {s:g} sigma':>22}" for s in SHIFTS)
    print(f"{'detector':<44}{header}")
    for name, cfg in CONFIGS.items():
        cells = []
        for i, shift in enumerate(SHIFTS):
            mean, se = arl(cfg, shift, args.replicates, rng)
            published = PUBLISHED.get(name)
            value = published[i] if published else None
            ref = f" [{value:g}]" if value is not None else ""
            cells.append(f"{mean:8.1f} ±{se:5.1f}{ref}")
        print(f"{name:<44}" + "".join(f"{c:>22}" for c in cells), flush=True)
    print(f"\nsimulated ARL ± standard error, {args.replicates:,} replicates; "
          "[published value]")  # fmt: skip


if __name__ == "__main__":
    main()
