"""The default paging policy, as shipped, meets its false-incident design on its default
Phase I (Brook-Evans chains over Phase I estimates, spc.cusum_arl)."""

from __future__ import annotations

from app.settings import SpcSettings
from ingest.plant import CusumSettings
from spc.cusum_arl import estimated_arl


def test_the_default_cusum_pages_at_most_once_per_370_in_control_points_over_a_plant() -> None:
    cusum, phase1 = CusumSettings(), SpcSettings().baseline_size
    in_control = estimated_arl(cusum.k, cusum.h, phase1, draws=300, seed=7, states=80)
    # pooled over many characteristics: what a pager sees (README, Alerts)
    assert in_control.pooled >= 370
    one_sigma = estimated_arl(cusum.k, cusum.h, phase1, shift=1.0, draws=100, seed=7, states=80)
    assert one_sigma.mean <= 12  # zero-state mean; the detection benchmark's median is lower
