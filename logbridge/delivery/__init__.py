"""Delivery: the outbox, the sender and its retry policy, the spool and the dead letter.

:func:`sender_for` builds a :class:`Sender` and its parts from validated options; the
sender itself only gets what it needs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..report import Reporter
from ..stats import Stats
from .deadletter import DeadLetter
from .outbox import OutboxLimits
from .retry import RetryPolicy
from .sender import Sender
from .settle import Callbacks
from .spool import Spool

if TYPE_CHECKING:
    from ..destinations.base import Destination
    from ..options import Options

__all__ = ["Callbacks", "OutboxLimits", "RetryPolicy", "Sender", "sender_for"]


def sender_for(
    options: Options,
    destination: Destination | None,
    *,
    stats: Stats,
    reporter: Reporter,
    deadline: Callable[[], float | None],
) -> Sender:
    """The sender and its parts as ``options`` describe them (``destination`` None: disabled)."""
    return Sender(
        destination,
        retry=RetryPolicy(max_retries=options.max_retries, budget=options.retry_budget),
        limits=OutboxLimits(
            max_messages=options.max_queue_size, max_bytes=options.max_queue_bytes,
            block=options.block, block_timeout=options.block_timeout,
        ),
        spool=Spool(options.spool, options.spool_max_bytes) if options.spool else None,
        dead_letter=DeadLetter(options.dead_letter) if options.dead_letter else None,
        callbacks=Callbacks(on_success=options.on_success, on_error=options.on_error),
        stats=stats, reporter=reporter, deadline=deadline, sync=options.sync,
        max_in_flight=options.max_in_flight,
    )
