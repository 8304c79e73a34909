"""Batches leave: a bounded outbox and one sender that delivers it, retrying wisely.

The listener hands over batches of serialised messages; the sender posts them in
order on its own thread, so the listener keeps turning records into compact bytes
while a request is in flight or the endpoint is down. What it holds is bounded by
``max_queue_size`` messages and ``max_queue_bytes``: past that, new batches are
dropped and counted (or, with ``block=True``, the listener waits for room).

Retrying follows the endpoint, not each batch: while it fails, only the oldest batch
is tried, once per backoff interval (exponential with full jitter, capped, never
shorter than ``Retry-After``), so an outage costs one probe at a time instead of every
batch burning its retries in turn. An endpoint that is unavailable (no answer at all:
refused, reset, timed out; or 429, 502, 503, 504) costs a batch nothing: it is held,
bounded, until the endpoint is back. A batch that the endpoint answers with another
retryable error (500, 408...) or that fails TLS is given up after ``max_retries``
such failures or ``retry_budget`` seconds after the first of them; a 413 splits it;
other 4xx fail it at once.
"""

from __future__ import annotations

import collections
import contextlib
import json
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from .batch import Batch
from .deadletter import DeadLetter
from .errors import DeliveryError
from .options import Options
from .record import own_thread
from .report import Reporter
from .retry import RetryPolicy
from .spool import Spool
from .stats import DropReason, Stats
from .transport import Transport

__all__ = ["Sender"]


class _Batch:
    __slots__ = ("attempts", "failures", "first_failure", "items", "nbytes", "spool_ids")

    def __init__(self, items: list[bytes], spool_ids: list[int] | None) -> None:
        self.items = items
        self.nbytes = sum(map(len, items))
        self.spool_ids = spool_ids
        self.attempts = 0  # every POST of this batch
        self.failures = 0  # the failures charged to it (not unavailability)
        self.first_failure = 0.0


class _Marker:
    """Put in the outbox by ``flush``: set once every batch before it is settled."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


class Sender:
    """Delivers batches from a bounded outbox, on its thread or the caller's."""

    def __init__(
        self,
        options: Options,
        transport: Transport | None,
        *,
        stats: Stats,
        reporter: Reporter,
        deadline: Callable[[], float | None],
    ) -> None:
        self.options = options
        self.transport = transport
        self.stats = stats
        self.reporter = reporter
        self.retry = RetryPolicy(max_retries=options.max_retries, budget=options.retry_budget)
        self._deadline = deadline
        self._outbox: collections.deque[_Batch | _Marker] = collections.deque()
        self._messages = 0
        self._bytes = 0
        self._cond = threading.Condition(threading.Lock())
        self._wake = threading.Event()  # set by stop(): interrupts a backoff wait
        self._stopping = False
        self._inline_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._failures = 0  # consecutive retryable failures: the endpoint's health
        self._evicted_upto = 0  # the newest spool row id evicted so far (0: none)
        self._rng = random.Random()
        self.spool = Spool(options.spool, options.spool_max_bytes) if options.spool else None
        self.dead_letter = DeadLetter(options.dead_letter) if options.dead_letter else None
        recovered = self._recover() if self.spool is not None else 0
        if recovered and transport is not None and not options.sync:
            # A killed process's messages go out now, not at this one's first event.
            with contextlib.suppress(RuntimeError):
                self.start()

    @property
    def running(self) -> bool:
        """Whether the sender's thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def ident(self) -> int | None:
        """The sender thread's identity (its records are never events)."""
        return self._thread.ident if self._thread is not None else None

    def start(self) -> None:
        """Start the thread (once). Raises RuntimeError when Python cannot start one (at exit)."""
        if self.running:
            return
        thread = threading.Thread(target=self._run, name="logbridge-sender", daemon=True)
        thread.start()
        self._thread = thread

    def pending(self) -> int:
        """Messages waiting in the outbox."""
        return self._messages

    def submit(self, items: list[bytes]) -> None:
        """Take a batch for delivery; never raises, blocks only with ``block=True``."""
        if self.transport is None:  # disabled: validated and counted, sent nowhere
            return
        spool_ids = None
        if self.spool is not None:
            try:
                spool_ids, evicted, newest_evicted = self.spool.add(items)
            except Exception as exc:
                self.reporter.problem("spool", f"could not persist {len(items)} messages: {exc!r}")
            else:
                if evicted:
                    # Counted when their batch comes up (see _unspooled): a batch in flight
                    # right now may still be delivered.
                    self._evicted_upto = max(self._evicted_upto, newest_evicted)
                    self.reporter.problem(
                        DropReason.SPOOL_FULL.value,
                        f"spool over {self.options.spool_max_bytes} bytes: dropping the "
                        f"{evicted} oldest messages",
                    )
        batch = _Batch(items, spool_ids)
        with self._cond:
            accepted = self._room_for(batch)
            if accepted:
                self._outbox.append(batch)
                self._messages += len(items)
                self._bytes += batch.nbytes
                self._cond.notify_all()
        if not accepted:
            limits = f"{self.options.max_queue_size} messages, {self.options.max_queue_bytes} bytes"
            self._drop(batch, DropReason.QUEUE_FULL, None, f"(outbox full at {limits})")
            return
        if not self.running:
            self.drain_inline()

    def flush(self, timeout: float) -> bool:
        """Wait until every batch submitted before this call is settled."""
        if self.transport is None:
            return True
        marker = _Marker()
        with self._cond:
            self._outbox.append(marker)
            self._cond.notify_all()
        if not self.running or self.ident == threading.get_ident():
            self.drain_inline()
            return True
        return marker.done.wait(timeout)

    def stop(self, *, wait: bool = True) -> None:
        """Deliver the outbox until the deadline, then stop; leftovers are accounted for."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and thread.ident != threading.get_ident():
            if not wait:
                return
            limit = self._deadline()
            thread.join(None if limit is None else max(0.0, limit - time.monotonic()) + 0.5)
            if thread.is_alive():
                return  # stuck in a request past the deadline; it is a daemon
        else:
            self.drain_inline()
        self._close()

    def drain_inline(self) -> None:
        """Deliver the outbox on the calling thread (no sender thread, or sync mode)."""
        with self._inline_lock:
            while self._step():
                pass
            if self._stopping:
                self._abandon_rest()

    def reset_after_fork(self) -> None:
        """In a forked child: a new session; the parent's outbox stays the parent's."""
        if self.transport is not None:
            self.transport.reset_after_fork()

    # The loop ------------------------------------------------------------------

    def _run(self) -> None:
        with own_thread():
            self._loop()

    def _loop(self) -> None:
        if self.transport is not None:
            self.transport.warm_up()
        while True:
            with self._cond:
                while not self._outbox and not self._stopping:
                    self._cond.wait()
            try:
                progressed = self._step()
            except Exception as exc:  # a bug must not end delivery: report, pause, go on
                self.reporter.problem("sender", f"recovered from {_describe(exc)}")
                progressed = self._backoff(1.0)
            if not progressed and self._stopping:
                self._abandon_rest()
                self._close()
                return

    def _step(self) -> bool:
        """Settle the oldest entry of the outbox; False when empty or out of time."""
        with self._cond:
            if not self._outbox:
                return False
            head = self._outbox[0]
        if isinstance(head, _Marker):
            self._pop(head)
            head.done.set()
            return True
        if self._unspooled(head):
            return True
        return self._deliver(head)

    def _unspooled(self, batch: _Batch) -> bool:
        """Drop the messages of ``batch`` evicted from a full spool; True if none is left."""
        gone = self._take_evicted(batch)
        if not gone:
            return False
        with self._cond:
            self._messages -= len(gone)
            self._bytes -= sum(map(len, gone))
        if batch.items:
            return False
        self._pop(batch)
        return True

    def _take_evicted(self, batch: _Batch) -> list[bytes]:
        """Remove from ``batch`` (and count) its messages evicted from the spool."""
        ids = batch.spool_ids
        if self.spool is None or not ids or ids[0] > self._evicted_upto:
            return []
        try:
            kept = set(self.spool.contains(ids))
        except Exception as exc:
            self.reporter.problem("spool", f"could not read {self.spool.path}: {exc!r}")
            return []
        if len(kept) == len(ids):
            return []
        pairs = list(zip(batch.items, ids, strict=True))
        gone = [item for item, row in pairs if row not in kept]
        with self._cond:
            batch.items = [item for item, row in pairs if row in kept]
            batch.spool_ids = [row for _, row in pairs if row in kept]
            batch.nbytes = sum(map(len, batch.items))
        self.stats.add("failed", len(gone))
        self.stats.drop(DropReason.SPOOL_FULL, len(gone))
        if self.options.on_error is not None:
            failure = DeliveryError(f"{DropReason.SPOOL_FULL.value}: evicted from the full spool")
            self._callback(self.options.on_error, failure, _decode(gone))
        return gone

    def _deliver(self, batch: _Batch) -> bool:
        assert self.transport is not None
        limit = self._deadline()
        now = time.monotonic()
        if limit is not None and now >= limit:
            return False
        timeout = self.transport.timeout if limit is None else min(
            self.transport.timeout, max(0.05, limit - now)
        )
        attempt = self.transport.post(batch.items, timeout=timeout)
        batch.attempts += 1
        error = attempt.error
        if error is None:
            self._failures = 0
            self._settle(batch, None, None)
            return True
        if error.status == 413:
            self._failures = 0
            if len(batch.items) > 1:
                self._split(batch)
            else:
                self._settle(batch, error, DropReason.OVERSIZE)
            return True
        if not error.retryable:
            self._failures = 0
            self._settle(batch, error, DropReason.REJECTED)
            return True
        self._failures += 1
        if not attempt.unavailable:  # the endpoint answered, or TLS failed: charge the batch
            now = time.monotonic()
            if batch.failures == 0:
                batch.first_failure = now
            batch.failures += 1
            if self.retry.gives_up(batch.failures, batch.first_failure, now):
                self._settle(batch, error, DropReason.RETRIES_EXHAUSTED)
                return True
        self.stats.add("retries")
        delay = self.retry.delay(self._failures - 1, attempt.retry_after, rng=self._rng)
        return self._backoff(delay)

    def _backoff(self, seconds: float) -> bool:
        """Wait before the next probe; False when the deadline does not leave the time."""
        end = time.monotonic() + seconds
        while True:
            limit = self._deadline()
            if limit is not None and end > limit:
                return False
            remaining = end - time.monotonic()
            if remaining <= 0:
                return True
            if self._wake.is_set():
                time.sleep(remaining)  # the deadline is known now and leaves room
                return True
            self._wake.wait(remaining)

    # Bookkeeping ---------------------------------------------------------------

    def _room_for(self, batch: _Batch) -> bool:
        """Whether ``batch`` fits the bounds; with ``block``, wait a while for room."""
        deadline = time.monotonic() + self.options.block_timeout
        while (
            self._messages + len(batch.items) > self.options.max_queue_size
            or self._bytes + batch.nbytes > self.options.max_queue_bytes
        ) and self._messages:
            remaining = deadline - time.monotonic()
            if not self.options.block or self._stopping or remaining <= 0 or not self.running:
                return False
            self._cond.wait(remaining)
        return True

    def _pop(self, entry: _Batch | _Marker) -> None:
        with self._cond:
            if self._outbox and self._outbox[0] is entry:
                self._outbox.popleft()
            if isinstance(entry, _Batch):
                self._messages -= len(entry.items)
                self._bytes -= entry.nbytes
            self._cond.notify_all()

    def _split(self, batch: _Batch) -> None:
        half = len(batch.items) // 2
        first = _Batch(batch.items[:half], batch.spool_ids[:half] if batch.spool_ids else None)
        second = _Batch(batch.items[half:], batch.spool_ids[half:] if batch.spool_ids else None)
        with self._cond:
            if self._outbox and self._outbox[0] is batch:
                self._outbox.popleft()
                self._outbox.appendleft(second)
                self._outbox.appendleft(first)

    def _settle(
        self, batch: _Batch, error: DeliveryError | None, reason: DropReason | None
    ) -> None:
        self._pop(batch)
        count = len(batch.items)
        if error is None:
            self.stats.add("sent", count)
            self.stats.add("batches")
            if self.options.on_success is not None:
                self._callback(self.options.on_success, _decode(batch.items))
            self._forget(batch)
        else:
            self._drop(batch, reason or DropReason.RETRIES_EXHAUSTED, error,
                       f"after {batch.attempts} attempt(s): {error}")

    def _forget(self, batch: _Batch) -> None:
        """Remove a settled batch from the spool."""
        if self.spool is not None and batch.spool_ids:
            try:
                self.spool.remove(batch.spool_ids)
            except Exception as exc:
                self.reporter.problem("spool", f"could not remove settled rows: {exc!r}")

    def _drop(
        self, batch: _Batch, reason: DropReason, error: BaseException | None, detail: str
    ) -> None:
        count = len(batch.items)
        self._forget(batch)
        self.stats.add("failed", count)
        self.stats.drop(reason, count)
        self.reporter.problem(reason.value, f"{count} messages not delivered {detail}")
        if self.dead_letter is not None:
            try:
                self.dead_letter.write(batch.items, reason, error)
            except Exception as exc:
                self.reporter.problem("dead_letter", f"could not write: {exc!r}")
        if self.options.on_error is not None:
            failure = error if error is not None else DeliveryError(reason.value)
            self._callback(self.options.on_error, failure, _decode(batch.items))

    def _abandon_rest(self) -> None:
        """At the deadline: what is left stays in the spool, or is dropped and counted."""
        with self._cond:
            rest = list(self._outbox)
            self._outbox.clear()
            self._messages = 0
            self._bytes = 0
        for entry in rest:
            if isinstance(entry, _Marker):
                entry.done.set()
            elif self.spool is not None and entry.spool_ids:
                self._take_evicted(entry)
                self.stats.add("spooled", len(entry.items))
            else:
                self._drop(entry, DropReason.SHUTDOWN_TIMEOUT, None,
                           f"before shutdown_timeout ({self.options.shutdown_timeout:g}s) ran out")

    def _recover(self) -> int:
        """Queue the spooled messages of processes that are gone, oldest first; how many."""
        assert self.spool is not None
        try:
            rows = self.spool.take_over()
        except Exception as exc:
            self.reporter.problem("spool", f"could not read {self.spool.path}: {exc!r}")
            return 0
        chunk = Batch(max(1, self.options.flush_at), 0.0)
        ids: list[int] = []
        for position, (row_id, body) in enumerate(rows):
            if chunk.items and not chunk.fits(body):
                self._append_recovered(chunk.take(), ids)
                ids = []
            chunk.add(body, 0.0)
            ids.append(row_id)
            if chunk.full or position == len(rows) - 1:
                self._append_recovered(chunk.take(), ids)
                ids = []
        if rows:
            self.stats.add("recovered", len(rows))
        return len(rows)

    def _append_recovered(self, items: list[bytes], ids: list[int]) -> None:
        batch = _Batch(items, ids)
        self._outbox.append(batch)
        self._messages += len(items)
        self._bytes += batch.nbytes

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        if self.spool is not None:
            self.spool.close()
        if self.dead_letter is not None:
            self.dead_letter.close()

    def _callback(self, callback: Callable[..., object], *args: Any) -> None:
        try:
            callback(*args)
        except BaseException as exc:  # a callback must not end the sender's thread
            self.reporter.problem("callback", f"{_name(callback)} raised {_describe(exc)}")


def _decode(items: list[bytes]) -> list[dict[str, Any]]:
    return [json.loads(item) for item in items]


def _name(callback: Callable[..., object]) -> str:
    try:
        return str(getattr(callback, "__qualname__", None) or type(callback).__name__)
    except BaseException:
        return "callback"


def _describe(exc: BaseException) -> str:
    try:
        return repr(exc)
    except BaseException:
        return type(exc).__name__
