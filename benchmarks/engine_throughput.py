"""Engine throughput: point-updates per second, against a numpy baseline in the same run.

    .venv/bin/python benchmarks/engine_throughput.py [--chars 10000] [--points 10000000]

The engine runs every characteristic with all 8 Nelson rules, EWMA, CUSUM and the rolling
capability window. Points arrive interleaved across characteristics (as a plant's
measurements do) in batches, and each batch's signals are decoded. The baseline is what
a straightforward implementation does at each new point: recompute the window's mean,
standard deviation and moving ranges with numpy and check the point against the limits;
it is timed on a smaller sample and reported per point. One core (the kernels are serial).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from spc import Engine


def _engine_rate(n_chars: int, n_points: int, batch: int, window: int) -> tuple[float, int]:
    engine = Engine(baseline_size=25, window=window, capacity=n_chars)
    rows = np.array([engine.add_characteristic(lsl=-4.0, usl=4.0) for _ in range(n_chars)])
    engine.warm_up()
    rng = np.random.default_rng(1)
    signals = 0
    elapsed = 0.0
    for start in range(0, n_points, batch):
        size = min(batch, n_points - start)
        chars = rows[(start + np.arange(size)) % n_chars]
        values = rng.normal(0.0, 1.0, size)
        t0 = time.perf_counter()
        signals += engine.process(chars, values).count
        elapsed += time.perf_counter() - t0
    return n_points / elapsed, signals


def _baseline_rate(n_points: int, window: int) -> float:
    rng = np.random.default_rng(2)
    history = list(rng.normal(0.0, 1.0, window))
    values = rng.normal(0.0, 1.0, n_points)
    flagged = 0
    t0 = time.perf_counter()
    for x in values:
        history.append(float(x))
        w = np.asarray(history[-window:])
        mean, sd = w.mean(), w.std(ddof=1)
        sigma_within = np.abs(np.diff(w)).mean() / 1.128
        cpk = min(4.0 - mean, mean + 4.0) / (3 * sigma_within)
        flagged += int(abs(x) > 3.0) + int(sd < 0) + int(cpk < 0)
    return n_points / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chars", type=int, default=10_000)
    parser.add_argument("--points", type=int, default=10_000_000)
    parser.add_argument("--batch", type=int, default=100_000)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--baseline-points", type=int, default=50_000)
    args = parser.parse_args()
    base = _baseline_rate(args.baseline_points, args.window)
    rate, signals = _engine_rate(args.chars, args.points, args.batch, args.window)
    print(f"engine:   {rate:>14,.0f} point-updates/s  ({args.chars:,} characteristics, "
          f"{args.points:,} points, batches of {args.batch:,}, {signals:,} signals)")  # fmt: skip
    print(f"baseline: {base:>14,.0f} points/s (numpy window recompute per point)")
    print(f"ratio:    {rate / base:>14,.0f} x")


if __name__ == "__main__":
    main()
