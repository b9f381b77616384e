"""Errors raised by ingest/.

IngestError
 ├── InvalidRecord      a measurement, verdict or cost event breaks the model (names the field)
 ├── PayloadError       a wire payload cannot be turned into records (names the field)
 ├── ConfigError        the plant configuration file is invalid (names the entry)
 └── StoreError         the store failed to read or write
      ├── StoreUnavailable  the database cannot be reached; writes can be spooled
      └── StoreRejected     the database refuses the data itself; retrying cannot help
"""

from __future__ import annotations


class IngestError(Exception):
    """Base of every error raised by ingest/."""


class InvalidRecord(IngestError):
    """A record breaks the measurement model; ``field`` names the offending field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class PayloadError(IngestError):
    """A wire payload (MQTT, OPC UA, HTTP) cannot be mapped; ``field`` names where."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class ConfigError(IngestError):
    """The plant configuration is invalid; the message lists every offending entry."""

    def __init__(self, source: str, problems: list[str]) -> None:
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid plant configuration {source}:\n{lines}")
        self.source = source
        self.problems = problems


class StoreError(IngestError):
    """The store could not complete an operation."""


class StoreUnavailable(StoreError):
    """The store cannot be reached (connection refused or lost, pool exhausted).

    Unlike other store errors this is expected to pass: writes can wait in the spool.
    """


class StoreRejected(StoreError):
    """The database refuses the data itself (a value out of range, a constraint).

    Retrying the same records cannot succeed: they are set aside, not retried for ever.
    """
