"""Batches leave: one sender delivers the outbox to a destination, retrying wisely.

The listener hands over batches of serialised items; the sender sends them, oldest
first, from its own thread, so the listener keeps turning records into bytes while
requests are in flight or the endpoint is down. The outbox is bounded (:class:`OutboxLimits`): past
that, new batches are dropped and counted (or, with ``block``, the listener waits).

While the endpoint answers, up to ``max_in_flight`` requests are out at once, each on a
worker of :class:`~logbridge.delivery.inflight.InFlight`; what an answer means is decided
here, on the sender's thread, one answer at a time. Batches may therefore arrive in
another order than they were made.

Retrying follows the endpoint, not each batch: while it fails, only the oldest batch
is tried, one request at a time, once per backoff interval (exponential with full
jitter, capped, never shorter than ``Retry-After``), so an outage costs one probe at a
time instead of every batch burning its retries in turn. An answer that says the
endpoint is unavailable costs a batch nothing: it is held, bounded, until the endpoint
is back. A batch that meets another retryable error is given up after ``max_retries``
such failures or ``retry_budget`` seconds; a 413 splits it; other refusals fail it at
once. What the destination refuses or defers message by message
(:class:`~logbridge.destinations.Outcome`)
is dropped with its reason or held back, and the rest goes on.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable

from ..destinations.base import Destination, Outcome
from ..errors import DeliveryError
from ..guard import own_thread
from ..report import Reporter, describe
from ..stats import DropReason, Stats
from .deadletter import DeadLetter
from .inflight import InFlight
from .outbox import Entry, FlushMarker, Outbox, OutboxLimits, Parking
from .retry import RetryPolicy
from .settle import Callbacks, Settler
from .spool import Spool
from .spooling import SpoolBook

__all__ = ["Sender"]


class Sender:
    """Delivers batches from a bounded outbox, on its thread or the caller's.

    ``destination`` None means disabled: batches are accepted and sent nowhere.
    ``deadline()`` gives the monotonic time past which nothing more is attempted
    (None while the process is not stopping). ``max_in_flight`` requests may be out at
    once when the destination says its ``send`` is ``thread_safe`` (1: one at a time).
    """

    def __init__(
        self,
        destination: Destination | None,
        *,
        retry: RetryPolicy,
        limits: OutboxLimits,
        stats: Stats,
        reporter: Reporter,
        deadline: Callable[[], float | None],
        spool: Spool | None = None,
        dead_letter: DeadLetter | None = None,
        callbacks: Callbacks | None = None,
        sync: bool = False,
        max_in_flight: int = 1,
    ) -> None:
        callbacks = callbacks or Callbacks()
        self.destination = destination
        self.max_in_flight = max_in_flight
        self.retry = retry
        self.stats = stats
        self.reporter = reporter
        self.outbox = Outbox(limits)
        self.spool_book = None if spool is None else SpoolBook(
            spool, self.outbox, stats=stats, reporter=reporter, on_error=callbacks.on_error,
        )
        self.settler = Settler(
            stats=stats, reporter=reporter, callbacks=callbacks,
            spool_book=self.spool_book, dead_letter=dead_letter,
        )
        self._deadline = deadline
        self._wake = threading.Event()  # set by stop(): interrupts a backoff wait
        self._stopping = False
        self._inline_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._failures = 0  # consecutive retryable failures: the endpoint's health
        self._parked = Parking()  # items the destination deferred, until their time
        self._flight: InFlight[Entry] | None = None  # made by the sender's thread
        self._flying: set[Entry] = set()  # entries with a request out
        self._rng = random.Random()
        recovered = 0
        if self.spool_book is not None:
            limits_of = destination.limits if destination is not None else None
            recovered = self.spool_book.recover(limits_of)
        if recovered and destination is not None and not sync:
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
        """Messages waiting in the outbox or held back."""
        return self.outbox.messages

    def enqueue(self, items: list[bytes]) -> None:
        """Take a batch for delivery; never raises, blocks only with ``block``."""
        if self.destination is None:  # disabled: validated and counted, sent nowhere
            return
        spool_ids = self.spool_book.persist(items) if self.spool_book is not None else None
        entry = Entry(items, spool_ids)
        if not self.outbox.put(entry, may_wait=self.running and not self._stopping):
            limits = self.outbox.limits
            self.settler.dropped(entry, DropReason.QUEUE_FULL, None,
                                 f"(outbox full at {limits.max_messages} messages, "
                                 f"{limits.max_bytes} bytes)")
            return
        if not self.running:
            self.drain_inline()

    def flush(self, timeout: float) -> bool:
        """Wait until every batch enqueued before this call is settled."""
        if self.destination is None:
            return True
        marker = FlushMarker()
        self.outbox.put_unbounded(marker)
        if not self.running or self.ident == threading.get_ident():
            self.drain_inline()
            return True
        return marker.done.wait(timeout)

    def stop(self, *, wait: bool = True) -> None:
        """Deliver the outbox until the deadline, then stop; leftovers are accounted for."""
        with self.outbox.cond:
            self._stopping = True
            self.outbox.cond.notify_all()
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

    def join(self, timeout: float) -> bool:
        """Wait for the thread to end; True when it has (or never ran)."""
        thread = self._thread
        if thread is not None and thread.is_alive() and thread.ident != threading.get_ident():
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def drain_inline(self) -> None:
        """Deliver the outbox on the calling thread (no sender thread, or sync mode)."""
        with self._inline_lock:
            while self._step() or self._wait_for_parked():
                pass
            if self._stopping:
                self._abandon_rest()

    def reset_after_fork(self) -> None:
        """In a forked child: new connections; the parent's outbox stays the parent's."""
        self._flight = None  # the parent's workers did not follow into the child
        self._flying = set()
        if self.destination is not None:
            self.destination.reset_after_fork()

    # The loop ------------------------------------------------------------------

    def _run(self) -> None:
        with own_thread():
            self._loop()

    def _loop(self) -> None:
        if self.destination is not None:
            self.destination.warm_up()
            if self.max_in_flight > 1 and getattr(self.destination, "thread_safe", False):
                self._flight = InFlight(self.destination.send, self.max_in_flight, self._wake_up)
        cond = self.outbox.cond
        while True:
            with cond:
                while not self._stopping and not self._ready():
                    cond.wait(self._parked_wait())
                    self._release_parked()
            try:
                progressed = self._step()
            except Exception as exc:  # a bug must not end delivery: report, pause, go on
                self.reporter.problem("sender", f"recovered from {describe(exc)}")
                progressed = self._backoff(1.0)
            if not progressed and self._stopping and not self._wait_for_parked():
                self._abandon_rest()
                self._close()
                return

    def _step(self) -> bool:
        """Settle the oldest entry of the outbox, or the next answer of a request in flight.

        False when there is nothing to do or no time left.
        """
        self._release_parked()
        flight = self._flight
        if flight is not None and threading.get_ident() == self.ident:
            self._launch(flight)
            if flight.in_flight:
                return self._land(flight)
        head = self.outbox.head()
        if head is None:
            return False
        if isinstance(head, FlushMarker):
            if self._parked:  # deferred items came before the marker: wait for them
                return False
            self.outbox.pop(head)
            head.done.set()
            return True
        if self._unspooled(head):
            return True
        return self._deliver(head)

    def _deliver(self, entry: Entry) -> bool:
        """One request of ``entry`` on this thread, and what its answer means."""
        assert self.destination is not None
        limit = self._deadline()
        now = time.monotonic()
        if limit is not None and now >= limit:
            return False
        timeout = self.destination_timeout(limit, now)
        return self._answered(entry, self.destination.send(entry.items, timeout=timeout))

    def _answered(self, entry: Entry, outcome: Outcome, *, alongside: bool = False) -> bool:
        """Settle, split, shrink or keep ``entry`` after one request's ``outcome``.

        ``alongside``: the request went out together with others (``max_in_flight``).
        """
        entry.attempts += 1
        self.stats.add("requests")
        if outcome.refused or outcome.deferred:
            self._shed(entry, outcome)
            if not entry.items:
                self.outbox.pop(entry)
                return True
            if outcome.error is not None and outcome.error.retryable:
                return True  # the request shrank: the rest goes again at once
        error = outcome.error
        if error is None:
            self._failures = 0
            self._settle(entry, None, None)
            return True
        if error.status == 413:
            self._failures = 0
            if len(entry.items) > 1:
                half = len(entry.items) // 2
                parts = [entry.part(range(half)), entry.part(range(half, len(entry.items)))]
                self.outbox.replace(entry, parts)
            else:
                self._settle(entry, error, DropReason.OVERSIZE)
            return True
        if not error.retryable:
            self._failures = 0
            self._settle(entry, error, DropReason.REJECTED)
            return True
        return self._failed(entry, outcome, alongside=alongside)

    # Requests in flight -----------------------------------------------------------

    def _launch(self, flight: InFlight[Entry]) -> None:
        """Send the oldest waiting batches while the endpoint answers, up to the limit."""
        if self._failures:  # failing: one probe at a time, by _deliver
            return
        limit = self._deadline()
        now = time.monotonic()
        if limit is not None and now >= limit:
            return
        for entry in self.outbox.waiting(self._flying, flight.room):
            if self._unspooled(entry):
                continue
            if not flight.start(entry, entry.items, self.destination_timeout(limit, now)):
                self._flight = None  # no thread to be had (at exit): one at a time, here
                return
            self._flying.add(entry)

    def _land(self, flight: InFlight[Entry]) -> bool:
        """Act on the next answer; wait for one, or for a batch to launch, if none is in."""
        answer = flight.take()
        if answer is None:
            limit = self._deadline()
            with self.outbox.cond:
                # A deadline set meanwhile (stop()) ends the wait too: it may be sooner.
                self.outbox.cond.wait_for(
                    lambda: flight.answered or self._launchable(flight)
                    or self._deadline() != limit,
                    None if limit is None else max(0.0, limit - time.monotonic()),
                )
            answer = flight.take()
            if answer is None:  # a batch to launch, or out of time
                limit = self._deadline()
                return limit is None or time.monotonic() < limit
        entry, outcome = answer
        self._flying.discard(entry)
        return self._answered(entry, outcome, alongside=True)

    def _launchable(self, flight: InFlight[Entry]) -> bool:
        return (
            flight.room > 0
            and not self._failures
            and bool(self.outbox.waiting(self._flying, 1))
        )

    def _wake_up(self) -> None:
        """A worker has an answer: wake the sender's thread."""
        with self.outbox.cond:
            self.outbox.cond.notify_all()

    def destination_timeout(self, limit: float | None, now: float) -> float:
        """The request timeout: the destination's, cut to what the deadline leaves."""
        full = float(getattr(self.destination, "timeout", 10.0))
        return full if limit is None else min(full, max(0.05, limit - now))

    def _failed(self, entry: Entry, outcome: Outcome, *, alongside: bool = False) -> bool:
        """A retryable failure: charge the batch unless the endpoint was unavailable.

        The first failure backs off; the answers of requests that were out with it
        (``alongside``) only charge their batches: one backoff, then one probe at a time.
        """
        assert outcome.error is not None
        backs_off = not alongside or self._failures == 0
        if backs_off:
            self._failures += 1
        if not outcome.unavailable:  # the endpoint answered, or TLS failed: the batch pays
            now = time.monotonic()
            if entry.failures == 0:
                entry.first_failure = now
            entry.failures += 1
            if self.retry.gives_up(entry.failures, entry.first_failure, now):
                self._settle(entry, outcome.error, DropReason.RETRIES_EXHAUSTED)
                return True
        self.stats.add("retries")
        if not backs_off:
            return True
        delay = self.retry.delay(self._failures - 1, outcome.retry_after, rng=self._rng)
        return self._backoff(delay)

    def _shed(self, entry: Entry, outcome: Outcome) -> None:
        """Drop the refused items with their reasons and park the deferred ones."""
        count = len(entry.items)
        refused = {i: r for i, r in outcome.refused.items() if 0 <= i < count}
        deferred = {
            i: s for i, s in outcome.deferred.items() if 0 <= i < count and i not in refused
        }
        by_reason: dict[str, list[int]] = {}
        for index, reason in refused.items():
            by_reason.setdefault(reason, []).append(index)
        for reason, indices in by_reason.items():
            part = entry.part(sorted(indices))
            failure = DeliveryError(reason, status=_status(outcome))
            self.settler.dropped(part, DropReason.REJECTED, failure,
                                 f"refused by the destination: {reason}")
        by_delay: dict[float, list[int]] = {}
        for index, seconds in deferred.items():
            by_delay.setdefault(seconds, []).append(index)
        held = []
        for seconds, indices in by_delay.items():
            part = entry.part(sorted(indices))
            self._parked.park(part, time.monotonic() + seconds)
            held.append(part)
            self.stats.add("deferred", len(indices))
        kept = entry.part(i for i in range(count) if i not in refused and i not in deferred)
        self.outbox.shrink(entry, kept, held=held)

    def _release_parked(self) -> None:
        """Put parked batches whose time has come back at the front of the outbox."""
        if self._parked:
            due = self._parked.due(time.monotonic())
            if due:
                self.outbox.put_front(due, counted=True)

    def _parked_wait(self) -> float | None:
        return self._parked.wait(time.monotonic())

    def _wait_for_parked(self) -> bool:
        """With only held-back items ahead, wait for the first; False if the deadline forbids."""
        wait = self._parked_wait()
        if wait is None or isinstance(self.outbox.head(), Entry):
            return False
        return self._backoff(wait)

    def _ready(self) -> bool:
        """Whether the head of the outbox can be settled now."""
        head = self.outbox.head()
        return isinstance(head, Entry) or (head is not None and not self._parked)

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

    def _unspooled(self, entry: Entry) -> bool:
        """Drop the messages of ``entry`` evicted from a full spool; True if none is left."""
        if self.spool_book is None or not self.spool_book.take_evicted(entry):
            return False
        if entry.items:
            return False
        self.outbox.pop(entry)
        return True

    # Settling ------------------------------------------------------------------

    def _settle(self, entry: Entry, error: DeliveryError | None, reason: DropReason | None) -> None:
        self.outbox.pop(entry)
        if error is None:
            self.settler.delivered(entry)
        else:
            self.settler.dropped(entry, reason or DropReason.RETRIES_EXHAUSTED, error,
                                 f"after {entry.attempts} attempt(s): {error}")

    def _abandon_rest(self) -> None:
        """At the deadline: what is left stays in the spool, or is dropped and counted."""
        rest: list[Entry | FlushMarker] = list(self._parked.take_all())
        rest += self.outbox.take_all()
        for entry in rest:
            if isinstance(entry, FlushMarker):
                entry.done.set()
            elif self.spool_book is not None and entry.spool_ids:
                self.spool_book.take_evicted(entry)
                self.stats.add("spooled", len(entry.items))
            else:
                self.settler.dropped(entry, DropReason.SHUTDOWN_TIMEOUT, None,
                                     "before the shutdown deadline (shutdown_timeout) ran out")

    def _close(self) -> None:
        if self._flight is not None:
            self._flight.close()
        if self.destination is not None:
            self.destination.close()
        self.settler.close()



def _status(outcome: Outcome) -> int | None:
    return outcome.error.status if outcome.error is not None else None

