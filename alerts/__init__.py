"""alerts: SPC signals into incidents with a lifecycle, early warnings, notifiers."""

from alerts.incident_policy import IncidentPolicy
from alerts.incidents import AlarmStateError, IncidentManager, UnknownAlarm
from alerts.signals import ChartSignal

__all__ = ["AlarmStateError", "ChartSignal", "IncidentManager", "IncidentPolicy", "UnknownAlarm"]
