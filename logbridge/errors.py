"""Exceptions raised or reported by logbridge."""

from __future__ import annotations

__all__ = [
    "ConfigurationError", "DeliveryError", "InvalidEvent", "LogbridgeError", "UnsupportedEvent",
]


class LogbridgeError(Exception):
    """Base class of every logbridge exception."""


class ConfigurationError(LogbridgeError, ValueError):
    """An option has an impossible value; raised when the handler is built."""


class InvalidEvent(LogbridgeError, ValueError):
    """A record or call cannot become a valid Segment message.

    A logging call never sees this exception: the record is dropped, counted and
    reported. The typed facade raises it synchronously.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnsupportedEvent(InvalidEvent):
    """A valid message the destination has no way to take (an alias for Amplitude)."""


class DeliveryError(LogbridgeError):
    """A batch could not be delivered; passed to ``on_error`` with its messages."""

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(reason if status is None else f"{reason} (HTTP {status})")
        self.reason = reason
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
