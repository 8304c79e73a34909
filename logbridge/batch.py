"""Messages become batches: a pure policy on count, bytes and age; no threads, no I/O.

A batch holds messages already serialised, so its size is known exactly and the body
is built by joining bytes, never by encoding a message twice.
"""

from __future__ import annotations

from .destinations.base import Limits

__all__ = ["Batch"]


class Batch:
    """Serialised messages waiting to be sent together.

    Ready at ``ready_at`` messages (``flush_at``: it may leave), full at ``max_count``
    (it must leave: the destination takes no more in one request); a message that would
    take the body (its ``envelope_bytes``, the messages and a separator between two) over
    ``max_bytes`` does not fit and starts the next batch; due ``max_age`` seconds after its
    first message. Whoever drives the batch decides whether a ready batch leaves or keeps
    filling: with messages waiting, a batch fills up to the destination's limits.
    """

    __slots__ = (
        "_envelope", "_started", "items", "max_age", "max_bytes", "max_count", "nbytes",
        "ready_at",
    )

    def __init__(
        self,
        max_count: int,
        max_age: float,
        max_bytes: int,
        envelope_bytes: int = 0,
        *,
        ready_at: int | None = None,
    ) -> None:
        self.max_count = max_count
        self.ready_at = max_count if ready_at is None else min(ready_at, max_count)
        self.max_age = max_age
        self.max_bytes = max_bytes
        self.items: list[bytes] = []
        self._envelope = envelope_bytes
        self.nbytes = envelope_bytes
        self._started = 0.0

    @classmethod
    def for_destination(
        cls,
        limits: Limits,
        flush_at: int,
        flush_interval: float,
        *,
        max_count: int | None = None,
        max_bytes: int | None = None,
    ) -> Batch:
        """A batch ready at ``flush_at`` messages, full at a destination's request limits.

        ``max_count``/``max_bytes`` cap it further: the outbox's bounds, so that one batch
        never holds more than the outbox may.
        """
        count = limits.max_request_count if max_count is None else min(
            max_count, limits.max_request_count
        )
        size = limits.max_request_bytes if max_bytes is None else min(
            max_bytes, limits.max_request_bytes
        )
        return cls(
            count, flush_interval, size, limits.envelope_bytes, ready_at=min(flush_at, count),
        )

    def __len__(self) -> int:
        return len(self.items)

    def fits(self, item: bytes) -> bool:
        """Whether ``item`` can join without taking the body over ``max_bytes``."""
        return self.nbytes + len(item) + (1 if self.items else 0) <= self.max_bytes

    def add(self, item: bytes, now: float) -> None:
        """Add one serialised message; ``now`` (monotonic) starts the age of a new batch."""
        if not self.items:
            self._started = now
        self.nbytes += len(item) + (1 if self.items else 0)
        self.items.append(item)

    @property
    def ready(self) -> bool:
        """Whether the batch holds ``ready_at`` messages: it may leave."""
        return len(self.items) >= self.ready_at

    @property
    def full(self) -> bool:
        """Whether the batch holds ``max_count`` messages: it must leave."""
        return len(self.items) >= self.max_count

    def due_at(self) -> float | None:
        """When (monotonic) the batch must be sent at the latest; None when empty."""
        return self._started + self.max_age if self.items else None

    def take(self) -> list[bytes]:
        """Hand over the messages and start empty."""
        items, self.items = self.items, []
        self.nbytes = self._envelope
        return items
