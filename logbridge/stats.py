"""Delivery counters: what was sent, retried, failed and dropped, and why."""

from __future__ import annotations

import enum
import threading
from collections import Counter

__all__ = ["DropReason", "Stats"]


class DropReason(str, enum.Enum):
    """Why a record or message did not reach the endpoint."""

    INVALID = "invalid"
    """The record could not become a valid Segment message."""
    UNSUPPORTED = "unsupported"
    """The destination has no way to take this kind of message (an alias for Amplitude)."""
    OVERSIZE = "oversize"
    """The message is over the per-message limit once serialised."""
    QUEUE_FULL = "queue_full"
    """The queue held ``max_queue_size`` records; the newest was dropped."""
    AFTER_CLOSE = "after_close"
    """The record was emitted after the handler was closed."""
    REJECTED = "rejected"
    """The endpoint answered with a non-retryable status (4xx other than 408/413/429)."""
    RETRIES_EXHAUSTED = "retries_exhausted"
    """Every retry of the batch failed."""
    SHUTDOWN_TIMEOUT = "shutdown_timeout"
    """The process was closing and ``shutdown_timeout`` ran out before delivery."""
    SPOOL_FULL = "spool_full"
    """The spool was over ``spool_max_bytes``; its oldest messages were dropped."""


class Stats:
    """Thread-safe counters behind ``AnalyticsHandler.stats()``.

    Counting happens on the listener's thread, except for drops the caller's thread
    detects (a full queue, a record after close), which are rare and take a lock.
    """

    __slots__ = ("_counts", "_dropped", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._dropped: Counter[str] = Counter()

    def add(self, name: str, amount: int = 1) -> None:
        """Increase the counter ``name`` by ``amount``."""
        with self._lock:
            self._counts[name] += amount

    def drop(self, reason: DropReason, amount: int = 1) -> None:
        """Count ``amount`` records or messages dropped for ``reason``."""
        with self._lock:
            self._dropped[reason.value] += amount

    def dropped(self, reason: DropReason) -> int:
        """How many were dropped for ``reason`` so far."""
        with self._lock:
            return self._dropped[reason.value]

    def snapshot(self, *, queued: int) -> dict[str, object]:
        """A plain dict of every counter, with the current ``queued`` figure."""
        with self._lock:
            counts = dict(self._counts)
            dropped = {reason.value: self._dropped[reason.value] for reason in DropReason}
        return {
            "queued": queued,
            "processed": counts.get("processed", 0),
            "sent": counts.get("sent", 0),
            "batches": counts.get("batches", 0),
            "retries": counts.get("retries", 0),
            "failed": counts.get("failed", 0),
            "coerced_values": counts.get("coerced_values", 0),
            "spooled": counts.get("spooled", 0),
            "recovered": counts.get("recovered", 0),
            "ignored_keys": counts.get("ignored_keys", 0),
            "dropped": dropped,
            "dropped_total": sum(dropped.values()),
        }
