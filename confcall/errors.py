"""The errors confcall raises on purpose; anything else is a bug."""

from __future__ import annotations


class ConfcallError(Exception):
    """An expected failure, shown to a person as one line."""


class ConfigError(ConfcallError):
    """The configuration is missing, malformed or incomplete."""


class StoreError(ConfcallError):
    """The database is missing, damaged or not one of ours."""


class StoreUnavailable(StoreError):
    """The database cannot be written just now: locked by another process, the disk full,
    the file read-only, deleted or replaced. A webhook answers 503 so Bandwidth retries."""


class BadNumbers(ConfcallError):
    """A phone number that does not parse."""


class BandwidthError(ConfcallError):
    """Bandwidth answered, but not with what was asked for: an error status, a redirect, or
    a success whose body is not Bandwidth's shape (`malformed`)."""

    def __init__(self, status: int, body: str, retry_after: float | None = None, *,
                 malformed: bool = False) -> None:
        shape = ", not shaped like Bandwidth's answer" if malformed else ""
        super().__init__(f"Bandwidth answered {status}{shape}: {body[:300]!r}" if malformed
                         else f"Bandwidth answered {status}: {body[:300]}")
        self.status = status
        self.body = body
        self.retry_after = retry_after
        self.malformed = malformed

    @property
    def retryable(self) -> bool:
        """Worth trying again: throttled (429), Bandwidth's fault (5xx), a redirect (a proxy
        or a moved URL: the operator may fix it), or a success we cannot read. Any other
        4xx is a refusal that will not change."""
        return self.malformed or self.status == 429 or self.status >= 500 or (
            300 <= self.status < 400)

    @property
    def maybe_accepted(self) -> bool:
        """Whether Bandwidth may have acted on the request all the same: a 2xx we cannot
        read may be an acceptance whose body went wrong, so sending again may duplicate."""
        return self.malformed


class BandwidthUnavailable(ConfcallError):
    """Bandwidth could not be reached, or did not answer in time."""

    def __init__(self, message: str, *, maybe_accepted: bool = True) -> None:
        super().__init__(message)
        # False only when the request never left (no connection): a time-out or a dropped
        # connection after sending may follow an acceptance we never heard of
        self.maybe_accepted = maybe_accepted
