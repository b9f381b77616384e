"""spc: the numeric core. Pure maths over numpy; no I/O, no asyncio, no web, no DB."""

from spc.capability import Capability, capability, expected_ppm
from spc.charts import ControlLimits, control_limits
from spc.engine import BatchResult, Engine, LimitSet, RollingCapability, RuleSignal
from spc.rules import Violation, check_rules

__all__ = [
    "BatchResult",
    "Capability",
    "ControlLimits",
    "Engine",
    "LimitSet",
    "RollingCapability",
    "RuleSignal",
    "Violation",
    "capability",
    "check_rules",
    "control_limits",
    "expected_ppm",
]
