"""Chart signals described for people: the value, the limit and the limit version."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alerts.signals import ChartSignal

T0 = datetime(2025, 3, 14, 8, 0, tzinfo=UTC)


def _signal(i: int = 0, **overrides: Any) -> ChartSignal:
    signal = ChartSignal(
        characteristic="line1.turning.diameter",
        time=T0 + timedelta(seconds=i),
        value=25.04 + i / 1000,
        rule="1",
        chart="i",
        side="high",
        limit=25.031,
        limit_version=1,
    )
    return replace(signal, **overrides)


@pytest.mark.parametrize(
    ("signal", "fragments"),
    [
        pytest.param(
            _signal(),
            ["Rule 1", "above UCL", "individuals", "25.04", "25.031", "v1"],
            id="high point",
        ),
        pytest.param(
            _signal(side="low", value=24.96, limit=24.969, limit_version=3),
            ["below LCL", "24.96", "24.969", "v3"],
            id="low point",
        ),
        pytest.param(
            _signal(chart="mr", value=0.0512, limit=0.0369),
            ["moving range", "0.0512", "above its UCL", "0.0369"],
            id="moving range",
        ),
    ],
)
def test_describe_mentions_the_value_and_the_limit(
    signal: ChartSignal, fragments: list[str]
) -> None:
    text = signal.describe()

    for fragment in fragments:
        assert fragment in text
