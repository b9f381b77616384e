"""Capability from additive sums equals the batch reference on the same values."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from spc import capability
from spc.capability_sums import CapabilitySums, Dispersion, period_capability


def sums_of(values: np.ndarray, shift: float, dispersion: Dispersion, size: int) -> CapabilitySums:
    """The sums of one bucket, computed the plain way (the ledger's job in the service)."""
    d = values - shift
    if dispersion == "mr":
        disp = np.abs(np.diff(values))
    else:
        groups = values.reshape(-1, size)
        disp = np.ptp(groups, axis=1) if dispersion == "rbar" else groups.std(axis=1, ddof=1)
    return CapabilitySums(
        len(values), shift, float(d.sum()), float((d * d).sum()), float(disp.sum()), len(disp)
    )


def test_hand_computed_individuals() -> None:
    # 1..5, LSL 0, USL 6: mean 3, every MR 1 -> sigma_w = 1 / d2(2) = sqrt(pi) / 2,
    # Cpk = 3 / (3 sigma_w) = 2 / sqrt(pi); s = sqrt(2.5) -> Ppk = 1 / sqrt(2.5)
    sums = CapabilitySums(5, 0.0, 15.0, 55.0, 4.0, 4)
    cap = period_capability(sums, 0.0, 6.0)
    assert cap.mean == 3.0
    assert cap.sigma_within == pytest.approx(math.sqrt(math.pi) / 2)
    assert cap.cpk == pytest.approx(2 / math.sqrt(math.pi))
    assert cap.cp == pytest.approx(2 / math.sqrt(math.pi))
    assert cap.ppk == pytest.approx(1 / math.sqrt(2.5))
    assert cap.subgroups == 5


@pytest.mark.parametrize(("dispersion", "size"), [("mr", 1), ("rbar", 5), ("sbar", 4), ("rbar", 2)])
def test_buckets_added_equal_the_batch_reference(dispersion: Dispersion, size: int) -> None:
    rng = np.random.default_rng(11)
    values = rng.normal(25.0, 0.01, 600 * size)
    lsl, usl = 24.96, 25.05
    # uneven buckets, each about its own shift, as hours summed about changing midpoints
    cuts = [0, 70 * size, 300 * size, 301 * size, 600 * size]
    total = None
    for (a, b), shift in zip(itertools.pairwise(cuts), (25.0, 0.0, 24.9, 25.1), strict=True):
        part = sums_of(values[a:b], shift, dispersion, size)
        total = part if total is None else total + part
    assert total is not None
    if dispersion == "mr":
        # a moving range across each bucket boundary belongs to the later bucket
        boundary = sum(abs(values[c] - values[c - 1]) for c in cuts[1:-1])
        total = total + CapabilitySums(0, 25.0, 0.0, 0.0, float(boundary), len(cuts) - 2)
    ours = period_capability(total, lsl, usl, dispersion, size)
    ref = capability(values, lsl, usl, subgroup_size=size, sigma_within=dispersion)
    assert ours.n == ref.n
    assert ours.mean == pytest.approx(ref.mean, rel=1e-12)
    assert ours.sigma_within == pytest.approx(ref.sigma_within, rel=1e-9)
    assert ours.sigma_overall == pytest.approx(ref.sigma_overall, rel=1e-9)
    for name in ("cp", "cpk", "pp", "ppk"):
        assert getattr(ours, name) == pytest.approx(getattr(ref, name), rel=1e-9), name
    assert ours.cpk_ci == pytest.approx(ref.cpk_ci, rel=1e-9)


def test_shift_keeps_precision_far_from_zero() -> None:
    rng = np.random.default_rng(3)
    values = 100_000.0 + rng.normal(0.0, 0.001, 2_000)
    near = period_capability(sums_of(values, 100_000.0, "mr", 1), 99_999.99, 100_000.01)
    assert near.sigma_overall == pytest.approx(float(values.std(ddof=1)), rel=1e-9)
    # summed about 0 the squares lose the variance almost entirely: why the shift exists
    far = period_capability(sums_of(values, 0.0, "mr", 1), 99_999.99, 100_000.01)
    assert far.sigma_overall != pytest.approx(float(values.std(ddof=1)), rel=1e-3)


def test_one_sided_and_empty() -> None:
    sums = CapabilitySums(5, 0.0, 15.0, 55.0, 4.0, 4, out_of_spec=1)
    upper_only = period_capability(sums, None, 6.0)
    assert upper_only.cp is None
    assert upper_only.cpk == pytest.approx(2 / math.sqrt(math.pi))
    assert upper_only.out_of_spec == 1
    empty = period_capability(CapabilitySums(0, 0.0, 0.0, 0.0), 0.0, 6.0)
    assert empty.n == 0
    assert empty.cpk is None
    assert empty.cpk_ci is None


def test_constant_values_have_no_indices() -> None:
    cap = period_capability(CapabilitySums(30, 5.0, 0.0, 0.0, 0.0, 29), 4.0, 6.0)
    assert cap.sigma_within == 0.0
    assert cap.cpk is None
    assert cap.ppk is None


@pytest.mark.parametrize(
    ("dispersion", "size", "match"),
    [("mr", 5, "individuals"), ("rbar", 1, "subgroups"), ("iqr", 1, "one of")],
)
def test_bad_dispersion_named(dispersion: str, size: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        period_capability(CapabilitySums(1, 0.0, 0.0, 0.0), 0.0, 1.0, dispersion, size)  # type: ignore[arg-type]
