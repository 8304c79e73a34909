"""The destination protocol: the one object that knows a service's far end.

Modelled on OpenTelemetry's exporters: batching, retrying and spooling are generic
(:mod:`logbridge.delivery`); a destination only knows its service:

- how a Segment-spec message becomes what the service takes (:meth:`Destination.map_message`),
- its limits, per message and per request, in bytes and in count (:attr:`Destination.limits`),
- how one request is made and what its answer means, message by message
  (:meth:`Destination.send` returns an :class:`Outcome`).

A user's own destination implements the same protocol and is configured by instance or
dotted path: ``destination="myapp.analytics.MyDestination"``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from ..errors import DeliveryError

__all__ = ["Destination", "Limits", "Outcome"]


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one message and one request may hold, for a service.

    ``envelope_bytes`` is the fixed overhead of a request body around the messages
    (``{"batch":[...],"sentAt":"..."}`` for Segment); a separator byte between two
    messages is counted on top.
    """

    max_message_bytes: int
    max_request_bytes: int
    max_request_count: int
    envelope_bytes: int = 0


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What one request gave, message by message (indices into the items sent).

    - ``error`` is None: every item not in ``refused`` or ``deferred`` was delivered.
    - ``error`` with status 413: the request was too large; the sender splits it.
    - ``error`` not retryable: the items not in ``refused``/``deferred`` fail for good.
    - ``error`` retryable: they are tried again, by the retry policy; ``unavailable``
      says the failure tells nothing about the items (no answer, 429, 502-504), so it
      costs them none of their retries.

    Whatever the error, ``refused`` items are dropped for good, each with its reason, and
    ``deferred`` items are held back for the given seconds (a throttled user). When either
    is non-empty and the rest are to be retried, they are retried at once: the request
    shrank, so the next one is a different request.
    """

    error: DeliveryError | None = None
    refused: Mapping[int, str] = dataclasses.field(default_factory=dict)
    deferred: Mapping[int, float] = dataclasses.field(default_factory=dict)
    retry_after: float | None = None
    unavailable: bool = False
    wire_bytes: int = 0

    @property
    def ok(self) -> bool:
        """Whether the request as a whole was accepted."""
        return self.error is None


@runtime_checkable
class Destination(Protocol):
    """A service's far end. Implement it to send somewhere logbridge doesn't know.

    Example::

        class PrintDestination:
            name = "print"
            wire_format = "segment"
            limits = Limits(32_768, 500_000, 100)

            def map_message(self, message):
                return [message]

            def send(self, items, *, timeout):
                for item in items:
                    print(item.decode())
                return Outcome()

            def warm_up(self): ...
            def reset_after_fork(self): ...
            def close(self): ...

    ``map_message`` runs on the listener's thread, ``send`` and the rest on the
    sender's; never on the application's thread.
    """

    #: A short name for logs and the debugger: "segment", "amplitude", "console"...
    name: str
    #: The shape of the items: "segment" (spec messages) or "amplitude" (its events).
    wire_format: str
    limits: Limits

    def map_message(self, message: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
        """The items a spec message becomes (usually one, none to skip it).

        Raise :class:`~logbridge.errors.InvalidEvent` for a message the service
        would refuse: it is dropped at the record, counted and reported with its reason.
        """
        ...

    def send(self, items: Sequence[bytes], *, timeout: float) -> Outcome:
        """Make one request of ``items`` (serialised by the caller), within ``timeout``.

        Never raises: every failure is an :class:`Outcome` with an error.
        """
        ...

    def warm_up(self) -> None:
        """Prepare on the sending thread (resolve the host); optional work, never raises."""
        ...

    def reset_after_fork(self) -> None:
        """In a forked child: drop connections inherited from the parent."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...
