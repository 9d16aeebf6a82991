"""The errors confcall raises on purpose; anything else is a bug."""

from __future__ import annotations


class ConfcallError(Exception):
    """An expected failure, shown to a person as one line."""


class ConfigError(ConfcallError):
    """The configuration is missing, malformed or incomplete."""


class StoreError(ConfcallError):
    """The database is missing or not one of ours."""


class BadNumbers(ConfcallError):
    """A phone number that does not parse."""


class BandwidthError(ConfcallError):
    """Bandwidth answered with an error status."""

    def __init__(self, status: int, body: str, retry_after: float | None = None) -> None:
        super().__init__(f"Bandwidth answered {status}: {body[:300]}")
        self.status = status
        self.body = body
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.status == 429 or self.status >= 500


class BandwidthUnavailable(ConfcallError):
    """Bandwidth could not be reached, or did not answer in time."""
