"""What becomes of a batch's messages once their fate is known: delivered or dropped.

Delivered: counted, ``on_success`` called, their spool rows removed. Dropped: counted
by reason, reported, written to the dead letter, passed to ``on_error``, their spool rows
removed. The sender decides; this only carries it out, in one place.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from ..errors import DeliveryError
from ..report import Reporter, call_safely
from ..stats import DropReason, Stats
from .deadletter import DeadLetter
from .outbox import Entry
from .spooling import SpoolBook, decode

__all__ = ["Callbacks", "Settler"]


@dataclasses.dataclass(frozen=True)
class Callbacks:
    """The user's ``on_success(items)`` and ``on_error(error, items)``."""

    on_success: Callable[..., object] | None = None
    on_error: Callable[..., object] | None = None


class Settler:
    """Counts, reports and hands over settled messages."""

    def __init__(
        self,
        *,
        stats: Stats,
        reporter: Reporter,
        callbacks: Callbacks,
        spool_book: SpoolBook | None,
        dead_letter: DeadLetter | None,
    ) -> None:
        self.stats = stats
        self.reporter = reporter
        self.callbacks = callbacks
        self.spool_book = spool_book
        self.dead_letter = dead_letter

    def delivered(self, entry: Entry) -> None:
        """``entry`` was accepted by the destination."""
        self.stats.add("sent", len(entry.items))
        self.stats.add("batches")
        if self.callbacks.on_success is not None:
            call_safely(self.reporter, self.callbacks.on_success, decode(entry.items))
        self.forget(entry)

    def dropped(
        self, entry: Entry, reason: DropReason, error: BaseException | None, detail: str
    ) -> None:
        """``entry``'s messages will not be delivered, for ``reason``."""
        count = len(entry.items)
        self.forget(entry)
        self.stats.add("failed", count)
        self.stats.drop(reason, count)
        self.reporter.problem(reason.value, f"{count} messages not delivered {detail}")
        if self.dead_letter is not None:
            try:
                self.dead_letter.write(entry.items, reason, error)
            except Exception as exc:
                self.reporter.problem("dead_letter", f"could not write: {exc!r}")
        if self.callbacks.on_error is not None:
            failure = error if error is not None else DeliveryError(reason.value)
            call_safely(self.reporter, self.callbacks.on_error, failure, decode(entry.items))

    def forget(self, entry: Entry) -> None:
        """Remove a settled batch from the spool."""
        if self.spool_book is not None:
            self.spool_book.forget(entry)

    def close(self) -> None:
        """Close the spool and the dead letter."""
        if self.spool_book is not None:
            self.spool_book.close()
        if self.dead_letter is not None:
            self.dead_letter.close()
