"""alerts.notify: notifications to people and machines (webhook, DingTalk, WeCom, e-mail,
MQTT), fanned out by a dispatcher with retries, backoff and a dead-letter file."""

from alerts.notify.config import load_notifiers, parse_notifiers
from alerts.notify.dingtalk import DingTalkNotifier
from alerts.notify.dispatcher import Dispatcher, NotifierStats, RetryPolicy
from alerts.notify.email import EmailNotifier
from alerts.notify.errors import NotifierConfigError, NotifyError
from alerts.notify.model import SEVERITIES, Notification, Notifier
from alerts.notify.mqtt import MqttNotifier
from alerts.notify.webhook import WebhookNotifier
from alerts.notify.wecom import WeComNotifier

__all__ = [
    "SEVERITIES",
    "DingTalkNotifier",
    "Dispatcher",
    "EmailNotifier",
    "MqttNotifier",
    "Notification",
    "Notifier",
    "NotifierConfigError",
    "NotifierStats",
    "NotifyError",
    "RetryPolicy",
    "WeComNotifier",
    "WebhookNotifier",
    "load_notifiers",
    "parse_notifiers",
]
