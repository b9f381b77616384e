"""Alarm messages name the pattern with the characteristic's own run lengths."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from alerts.signals import ChartSignal, pattern_sizes
from spc import NELSON, WESTERN_ELECTRIC, RuleSet

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("rule", "side", "rules", "text"),
    [
        ("2", "high", NELSON, "Rule 2: 9 points in a row on one side of the centre line"),
        ("2", "low", WESTERN_ELECTRIC, "Rule 2: 8 points in a row on one side"),
        ("3", "up", NELSON, "Rule 3: 6 points in a row steadily increasing"),
        ("3", "down", RuleSet(trend=7), "Rule 3: 7 points in a row steadily decreasing"),
        ("4", "none", NELSON, "Rule 4: 14 points in a row alternating up and down"),
        ("5", "high", NELSON, "Rule 5: 2 of the last 3 points beyond 2 sigma"),
        ("6", "low", NELSON, "Rule 6: 4 of the last 5 points beyond 1 sigma"),
        ("7", "none", NELSON, "Rule 7: 15 points in a row within 1 sigma"),
        ("8", "none", NELSON, "Rule 8: 8 points in a row beyond 1 sigma, none within"),
    ],
)
def test_pattern_messages_carry_the_configured_run_lengths(
    rule: str, side: str, rules: RuleSet, text: str
) -> None:
    signal = ChartSignal("c1", T0, 25.01, rule, "i", side, None, 2, pattern_sizes(rules, rule))
    message = signal.describe()
    assert message.startswith(text)
    assert "limits v2" in message


def test_ewma_and_cusum_messages_give_the_statistic_and_the_limit() -> None:
    ewma = ChartSignal("c1", T0, 25.04, "ewma", "ewma", "high", 25.03, 1).describe()
    cusum = ChartSignal("c1", T0, 0.061, "cusum", "cusum", "low", 0.04, 1).describe()
    assert ewma == "EWMA upper signal: statistic 25.04 beyond 25.03 (limits v1)"
    assert cusum == "CUSUM lower signal: statistic 0.061 beyond 0.04 (limits v1)"
