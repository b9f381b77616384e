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
from spc.ewma_cusum import CusumResult, EwmaResult, cusum, ewma
from spc.grades import (
    GRADES,
    EntityGrade,
    Grade,
    Metric,
    MetricGrade,
    MetricValue,
    grade,
    grade_defect_rate,
    grade_entity,
    grade_metric,
)
from spc.normality import PercentileCapability, anderson_darling_normal, percentile_capability
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
from spc.sigma_level import dpmo, sigma_level
from spc.signals import BatchResult

__all__ = [
    "AIAG",
    "DEFAULT",
    "GRADES",
    "NELSON",
    "WESTERN_ELECTRIC",
    "BatchResult",
    "Capability",
    "ChartConstants",
    "ControlLimits",
    "CusumConfig",
    "CusumResult",
    "Engine",
    "EntityGrade",
    "EwmaConfig",
    "EwmaResult",
    "Grade",
    "LimitSet",
    "Metric",
    "MetricGrade",
    "MetricValue",
    "PercentileCapability",
    "RollingCapability",
    "RuleSet",
    "RuleSignal",
    "Violation",
    "anderson_darling_normal",
    "capability",
    "chart_constants",
    "check_rules",
    "control_limits",
    "cusum",
    "dpmo",
    "ewma",
    "expected_ppm",
    "grade",
    "grade_defect_rate",
    "grade_entity",
    "grade_metric",
    "percentile_capability",
    "rule_set",
    "rules_for_chart",
    "sigma_level",
]
