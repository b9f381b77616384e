"""Early warnings beyond the control-chart rules: capability, drift forecast, data health
and autocorrelation, raised once per condition and cleared with hysteresis.

The service builds one `EarlyWarningEvaluator`, tells it each characteristic's Phase II
context (`set_context`), feeds it every batch (`observe`) and calls `check_quiet`
periodically; the pure checks below are usable on their own.
"""

from alerts.early_warnings.autocorrelation import (
    AutocorrelationCheck,
    ar1_residuals,
    check_autocorrelation,
    lag1_autocorrelation,
)
from alerts.early_warnings.capability import CapabilityCheck, check_cpk, rolling_cpk
from alerts.early_warnings.data_health import QuietCheck, RunState, check_quiet, usual_interval
from alerts.early_warnings.drift import (
    DriftForecast,
    DriftJudgement,
    LimitEta,
    SlopeEstimate,
    forecast_drift,
    judge_drift,
    theil_sen,
)
from alerts.early_warnings.evaluator import (
    CharacteristicContext,
    EarlyWarningConfig,
    EarlyWarningEvaluator,
)
from alerts.early_warnings.model import EarlyWarning, Severity, WarningKey, WarningKind

__all__ = [
    "AutocorrelationCheck",
    "CapabilityCheck",
    "CharacteristicContext",
    "DriftForecast",
    "DriftJudgement",
    "EarlyWarning",
    "EarlyWarningConfig",
    "EarlyWarningEvaluator",
    "LimitEta",
    "QuietCheck",
    "RunState",
    "Severity",
    "SlopeEstimate",
    "WarningKey",
    "WarningKind",
    "ar1_residuals",
    "check_autocorrelation",
    "check_cpk",
    "check_quiet",
    "forecast_drift",
    "judge_drift",
    "lag1_autocorrelation",
    "rolling_cpk",
    "theil_sen",
    "usual_interval",
]
