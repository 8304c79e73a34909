"""The data's path in one place: record, message, bytes, batch, transport.

A :class:`Pipeline` is driven by one thread at a time: the listener's thread normally,
the caller's thread when no thread can be started (at interpreter exit) or in
``sync`` mode. It never raises: every record ends delivered or dropped with a reason,
counted in :class:`~logbridge.stats.Stats` and reported.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from .batch import Batch
from .encoding import MAX_MESSAGE_BYTES, Encoder
from .errors import DeliveryError, InvalidEvent
from .message import MESSAGE_TYPES, build_message
from .options import Options
from .record import read_record
from .report import Reporter
from .stats import DropReason, Stats
from .transport import Outcome, Transport

__all__ = ["Pipeline"]


class Pipeline:
    """Turns records into batches and batches into requests."""

    def __init__(
        self,
        options: Options,
        transport: Transport | None,
        *,
        stats: Stats,
        reporter: Reporter,
        deadline: Callable[[], float | None] = lambda: None,
    ) -> None:
        self.options = options
        self.transport = transport
        self.stats = stats
        self.reporter = reporter
        self.batch = Batch(options.flush_at, options.flush_interval)
        self._encoder = Encoder()
        self._deadline = deadline

    def add(self, record: logging.LogRecord) -> None:
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
        """Send the current batch now (nothing when empty)."""
        if not self.batch.items:
            return
        items = self.batch.take()
        if self.transport is None:  # disabled: validated and counted, sent nowhere
            return
        limit = self._deadline()
        if limit is not None and time.monotonic() >= limit:
            self._settle(
                [
                    Outcome(
                        items,
                        DeliveryError("shutdown_timeout ran out before delivery"),
                        DropReason.SHUTDOWN_TIMEOUT,
                    )
                ]
            )
            return
        retries_before = self.transport.retries
        outcomes = self.transport.deliver(items)
        self.stats.add("retries", self.transport.retries - retries_before)
        self._settle(outcomes)

    def pending(self) -> int:
        """Messages in the current batch."""
        return len(self.batch)

    def drop_unsent(self, count: int, reason: DropReason, detail: str) -> None:
        """Count records that will never be processed (left in the queue at a deadline)."""
        if count:
            self.stats.drop(reason, count)
            self.reporter.problem(reason.value, f"{count} records not delivered: {detail}")

    def _encode(self, record: logging.LogRecord) -> bytes | None:
        event = read_record(record)
        if event.word in MESSAGE_TYPES:
            message, ignored = build_message(
                event.word, event.fields, created=record.created, context=self.options.context
            )
        else:
            message, ignored = build_message(
                "track",
                event.fields,
                event=event.text,
                created=record.created,
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

    def _invalid(self, record: logging.LogRecord, exc: InvalidEvent) -> None:
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

    def _settle(self, outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            count = len(outcome.items)
            if outcome.error is None:
                self.stats.add("sent", count)
                self.stats.add("batches")
                if self.options.on_success is not None:
                    self._callback(self.options.on_success, _decode(outcome.items))
                continue
            reason = outcome.reason or DropReason.RETRIES_EXHAUSTED
            self.stats.add("failed", count)
            self.stats.drop(reason, count)
            self.reporter.problem(
                reason.value,
                f"{count} messages not delivered after {outcome.attempts} attempt(s): "
                f"{outcome.error}",
            )
            if self.options.on_error is not None:
                self._callback(self.options.on_error, outcome.error, _decode(outcome.items))

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


def _decode(items: list[bytes]) -> list[dict[str, Any]]:
    return [json.loads(item) for item in items]
