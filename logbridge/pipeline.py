"""The data's path up to the sender: record, message, the destination's items, batch.

A :class:`Pipeline` is driven by one thread at a time: the listener's thread normally,
the caller's thread when no thread can be started (at interpreter exit) or in
``sync`` mode. It never raises: every record ends in a batch handed to the sender, or
dropped with a reason, counted in :class:`~logbridge.stats.Stats` and reported.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from .batch import Batch
from .destinations.base import Destination
from .encoding import Encoder
from .errors import InvalidEvent, UnsupportedEvent
from .message import message_for, type_word_hint
from .record import AnyRecord, read_record
from .report import Reporter, call_safely
from .stats import DropReason, Stats

__all__ = ["Pipeline"]


class Pipeline:
    """Turns records into the destination's items, and items into batches for ``sink``."""

    def __init__(
        self,
        destination: Destination,
        sink: Callable[[list[bytes]], None],
        *,
        flush_at: int,
        flush_interval: float,
        context: Mapping[str, Any],
        on_error: Callable[..., object] | None,
        stats: Stats,
        reporter: Reporter,
        backlog: Callable[[], bool] = lambda: False,
        max_batch_messages: int | None = None,
        max_batch_bytes: int | None = None,
    ) -> None:
        self.destination = destination
        self.backlog = backlog
        self.context = context
        self.on_error = on_error
        self.stats = stats
        self.reporter = reporter
        self.max_item_bytes = destination.limits.max_message_bytes
        self.batch = Batch.for_destination(
            destination.limits, flush_at, flush_interval,
            max_count=max_batch_messages, max_bytes=max_batch_bytes,
        )
        self._encoder = Encoder()
        self._sink = sink
        self._words_seen: set[str] = set()  # message words already checked for a hint
        self._hinted: set[str] = set()  # near type words already reported

    def add(self, record: AnyRecord) -> None:
        """Take one record: into the batch, or dropped with its reason."""
        self.stats.add("processed")
        try:
            items = self._encode(record)
        except InvalidEvent as exc:
            self._invalid(record, exc)
            return
        except Exception as exc:  # a value whose __str__ raises, a broken record factory...
            self._invalid(record, InvalidEvent(f"the record could not be read: {_reason(exc)}"))
            return
        batch = self.batch
        for item in items:
            if not batch.fits(item):
                self.flush()
            batch.add(item, time.monotonic())
            # A ready batch keeps filling while records wait: one request instead of many.
            if batch.full or (batch.ready and not self.backlog()):
                self.flush()

    def due_at(self) -> float | None:
        """When the current batch must be sent (monotonic), or None when it is empty."""
        return self.batch.due_at()

    def flush(self) -> None:
        """Hand the current batch to the sender now (nothing when empty)."""
        if self.batch.items:
            self._sink(self.batch.take())

    def pending(self) -> int:
        """Messages in the current batch."""
        return len(self.batch)

    def drop_unsent(self, count: int, reason: DropReason, detail: str) -> None:
        """Count records that will never be processed (left in the queue at a deadline)."""
        if count:
            self.stats.drop(reason, count)
            self.reporter.problem(reason.value, f"{count} records not delivered: {detail}")

    def _encode(self, record: AnyRecord) -> list[bytes]:
        """The serialised items ``record`` becomes; raises InvalidEvent."""
        event = read_record(record)
        if event.word is not None and event.word not in self._words_seen:
            self._hint_type_word(event.word)
        message, ignored = message_for(
            event.word, event.text, event.fields, created=record.created, context=self.context,
        )
        if ignored:
            self.stats.add("ignored_keys", len(ignored))
            self.reporter.problem(
                "ignored_keys",
                f"an alias carries no properties or traits; left out {sorted(ignored)}",
            )
        encoder = self._encoder
        coerced_before = encoder.coerced
        items = [encoder.encode(part) for part in self.destination.map_message(message)]
        if encoder.coerced != coerced_before:
            self.stats.add("coerced_values", encoder.coerced - coerced_before)
        for item in items:
            if len(item) > self.max_item_bytes:
                reason = (
                    f"{message['type']} message {message['messageId']} is {len(item)} bytes "
                    f"serialised, over the {self.max_item_bytes}-byte limit of "
                    f"{self.destination.name}"
                )
                self.stats.drop(DropReason.OVERSIZE)
                self.reporter.problem(DropReason.OVERSIZE.value, reason)
                call_safely(self.reporter, self.on_error, InvalidEvent(reason), [message])
                return []
        return items

    def _hint_type_word(self, word: str) -> None:
        """Report once a message word that is a type word but for case or spaces."""
        if len(self._words_seen) < 1000 and len(word) <= 64:  # words are few: check each once
            self._words_seen.add(word)
        hint = type_word_hint(word)
        if hint is None or word in self._hinted or len(self._hinted) >= 100:
            return
        self._hinted.add(word)
        self.reporter.problem(
            "type_word",
            f"{word!r} is sent as a track named {word!r}: did you mean {hint!r}? "
            "(type words are matched exactly, in lower case)",
            key=word,
        )

    def _invalid(self, record: AnyRecord, exc: InvalidEvent) -> None:
        unsupported = isinstance(exc, UnsupportedEvent)
        self.stats.drop(DropReason.UNSUPPORTED if unsupported else DropReason.INVALID)
        where = f"{record.name}:{record.lineno}"
        kind = DropReason.UNSUPPORTED if unsupported else DropReason.INVALID
        self.reporter.problem(kind.value, f"record from {where} dropped: {exc.reason}")
        if self.on_error is not None:
            try:
                fields: dict[str, Any] = dict(read_record(record).fields)
                fields.setdefault("event", record.msg)
            except Exception:
                fields = {"event": repr(record.msg)}
            call_safely(self.reporter, self.on_error, exc, [fields])


def _reason(exc: BaseException) -> str:
    try:
        return f"{type(exc).__name__}: {exc}"
    except Exception:
        return type(exc).__name__


