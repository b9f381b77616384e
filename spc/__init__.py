"""spc: the numeric core. Pure maths over numpy; no I/O, no asyncio, no web, no DB."""

from spc.capability import Capability, capability, expected_ppm
from spc.charts import ControlLimits, control_limits
from spc.constants import ChartConstants, chart_constants
from spc.engine import Engine
from spc.engine_types import (
    CusumConfig,
    EwmaConfig,
    LimitSet,
    RollingCapability,
    RuleSignal,
)
from spc.rules import (
    AIAG,
    DEFAULT,
    NELSON,
    WESTERN_ELECTRIC,
    RuleSet,
    Violation,
    check_rules,
    rule_set,
    rules_for_chart,
)
from spc.signals import BatchResult

__all__ = [
    "AIAG",
    "DEFAULT",
    "NELSON",
    "WESTERN_ELECTRIC",
    "BatchResult",
    "Capability",
    "ChartConstants",
    "ControlLimits",
    "CusumConfig",
    "Engine",
    "EwmaConfig",
    "LimitSet",
    "RollingCapability",
    "RuleSet",
    "RuleSignal",
    "Violation",
    "capability",
    "chart_constants",
    "check_rules",
    "control_limits",
    "expected_ppm",
    "rule_set",
    "rules_for_chart",
]
