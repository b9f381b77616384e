"""alerts: turning SPC signals into alarms with a lifecycle."""

from alerts.alarms import AlarmManager, apply_signals
from alerts.signals import ChartSignal

__all__ = ["AlarmManager", "ChartSignal", "apply_signals"]
