"""Messages become batches: a pure policy on count, bytes and age; no threads, no I/O.

A batch holds messages already serialised, so its size is known exactly and the body
is built by joining bytes, never by encoding a message twice.
"""

from __future__ import annotations

from .destinations.base import Limits

__all__ = ["Batch"]


class Batch:
    """Serialised messages waiting to be sent together.

    Full at ``max_count`` messages; a message that would take the body (its
    ``envelope_bytes``, the messages and a separator between two) over ``max_bytes``
    does not fit and starts the next batch; due ``max_age`` seconds after its first
    message.
    """

    __slots__ = (
        "_envelope", "_started", "items", "max_age", "max_bytes", "max_count", "nbytes",
    )

    def __init__(
        self, max_count: int, max_age: float, max_bytes: int, envelope_bytes: int = 0
    ) -> None:
        self.max_count = max_count
        self.max_age = max_age
        self.max_bytes = max_bytes
        self.items: list[bytes] = []
        self._envelope = envelope_bytes
        self.nbytes = envelope_bytes
        self._started = 0.0

    @classmethod
    def for_destination(cls, limits: Limits, flush_at: int, flush_interval: float) -> Batch:
        """A batch of at most ``flush_at`` messages, within a destination's request limits."""
        return cls(
            min(flush_at, limits.max_request_count), flush_interval,
            limits.max_request_bytes, limits.envelope_bytes,
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
    def full(self) -> bool:
        """Whether the batch holds ``max_count`` messages."""
        return len(self.items) >= self.max_count

    def due_at(self) -> float | None:
        """When (monotonic) the batch must be sent at the latest; None when empty."""
        return self._started + self.max_age if self.items else None

    def take(self) -> list[bytes]:
        """Hand over the messages and start empty."""
        items, self.items = self.items, []
        self.nbytes = self._envelope
        return items
