"""Errors raised by alerts/notify.

NotifyError                one delivery attempt failed (``retryable`` says whether to try again)
NotifierConfigError        the notifiers file is invalid (names each entry, field and problem)
"""

from __future__ import annotations


class NotifyError(Exception):
    """One attempt to deliver a notification failed.

    ``retryable`` is True for what may pass (network errors, timeouts, HTTP 5xx and 429, a
    robot's rate limit) and False for what will not (other 4xx, a refused signature or
    recipient): the dispatcher dead-letters those at once.
    """

    def __init__(self, retryable: bool, message: str) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.message = message


class NotifierConfigError(ValueError):
    """The notifiers configuration is invalid; the message lists every problem."""

    def __init__(self, source: str, problems: list[str]) -> None:
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid notifiers configuration {source}:\n{lines}")
        self.source = source
        self.problems = problems
