"""The data's path up to the sender: record, message, bytes, batch.

A :class:`Pipeline` is driven by one thread at a time: the listener's thread normally,
the caller's thread when no thread can be started (at interpreter exit) or in
``sync`` mode. It never raises: every record ends in a batch handed to the sender, or
dropped with a reason, counted in :class:`~logbridge.stats.Stats` and reported.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .batch import Batch
from .encoding import MAX_MESSAGE_BYTES, Encoder
from .errors import InvalidEvent
from .message import message_for, type_word_hint
from .options import Options
from .record import AnyRecord, read_record
from .report import Reporter
from .stats import DropReason, Stats

__all__ = ["Pipeline"]


class Pipeline:
    """Turns records into batches and batches into requests."""

    def __init__(
        self,
        options: Options,
        sink: Callable[[list[bytes]], None],
        *,
        stats: Stats,
        reporter: Reporter,
    ) -> None:
        self.options = options
        self.stats = stats
        self.reporter = reporter
        self.batch = Batch(options.flush_at, options.flush_interval)
        self._encoder = Encoder()
        self._sink = sink
        self._words_seen: set[str] = set()  # message words already checked for a hint
        self._hinted: set[str] = set()  # near type words already reported

    def add(self, record: AnyRecord) -> None:
        """Take one record: into the batch, or dropped with its reason."""
        self.stats.add("processed")
        try:
            item = self._encode(record)
        except InvalidEvent as exc:
            self._invalid(record, exc)
            return
        except Exception as exc:  # a value whose __str__ raises, a broken record factory...
            self._invalid(record, InvalidEvent(f"the record could not be read: {_describe(exc)}"))
            return
        if item is None:
            return
        if not self.batch.fits(item):
            self.send()
        self.batch.add(item, time.monotonic())
        if self.batch.full:
            self.send()

    def due_at(self) -> float | None:
        """When the current batch must be sent (monotonic), or None when it is empty."""
        return self.batch.due_at()

    def send(self) -> None:
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

    def _encode(self, record: AnyRecord) -> bytes | None:
        event = read_record(record)
        if event.word is not None and event.word not in self._words_seen:
            self._hint_type_word(event.word)
        message, ignored = message_for(
            event.word, event.text, event.fields, created=record.created,
            context=self.options.context,
        )
        if ignored:
            self.stats.add("ignored_keys", len(ignored))
            self.reporter.problem(
                "ignored_keys",
                f"an alias carries no properties or traits; left out {sorted(ignored)}",
            )
        coerced_before = self._encoder.coerced
        item = self._encoder.encode(message)
        if self._encoder.coerced != coerced_before:
            self.stats.add("coerced_values", self._encoder.coerced - coerced_before)
        if len(item) > MAX_MESSAGE_BYTES:
            reason = (
                f"{message['type']} message {message['messageId']} is {len(item)} bytes "
                f"serialised, over the {MAX_MESSAGE_BYTES}-byte limit"
            )
            self.stats.drop(DropReason.OVERSIZE)
            self.reporter.problem(DropReason.OVERSIZE.value, reason)
            self._callback(self.options.on_error, InvalidEvent(reason), [message])
            return None
        return item

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
        self.stats.drop(DropReason.INVALID)
        where = f"{record.name}:{record.lineno}"
        self.reporter.problem(
            DropReason.INVALID.value, f"record from {where} dropped: {exc.reason}"
        )
        if self.options.on_error is not None:
            try:
                fields: dict[str, Any] = dict(read_record(record).fields)
                fields.setdefault("event", record.msg)
            except Exception:
                fields = {"event": repr(record.msg)}
            self._callback(self.options.on_error, exc, [fields])

    def _callback(self, callback: Callable[..., object] | None, *args: Any) -> None:
        if callback is None:
            return
        try:
            callback(*args)
        except Exception as exc:
            name = getattr(callback, "__qualname__", repr(callback))
            self.reporter.problem("callback", f"{name} raised {exc!r}")


def _describe(exc: BaseException) -> str:
    try:
        return f"{type(exc).__name__}: {exc}"
    except Exception:
        return type(exc).__name__


