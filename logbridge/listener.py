"""The worker: a thread that turns queued records into batches for the sender.

Modelled on OpenTelemetry's batch processor: the thread wakes on a record or when the
current batch is due, hands full batches to the :class:`~logbridge.delivery.Sender` as
they fill, and drains everything at stop under a deadline. It also works with no
thread at all (``deliver_inline``), because Python 3.12 refuses to start threads at
interpreter exit, and in ``sync`` mode.
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import math
import queue as queue_module
import threading
import time
import weakref
from typing import Any

from .delivery import sender_for
from .destinations.registry import build_destination
from .errors import ConfigurationError
from .guard import OWN_THREADS, own_thread
from .options import Options
from .pipeline import Pipeline
from .record import AnyRecord
from .report import Reporter, describe
from .stats import DropReason, Stats

__all__ = ["AnalyticsListener"]


#: Seconds within which a stop is taken to follow a flush that ran out (logging.shutdown).
_FLUSH_THEN_STOP = 1.0


class _FlushRequest:
    """A marker put on the queue: deliver what came before it, then set ``done``."""

    __slots__ = ("done", "timeout")

    def __init__(self, timeout: float) -> None:
        self.done = threading.Event()
        self.timeout = timeout


class AnalyticsListener(logging.handlers.QueueListener):
    """A ``QueueListener`` that batches records as Segment messages and sends them.

    Usually made and owned by :class:`~logbridge.AnalyticsHandler`. It can also stand
    alone as the ``listener`` of the stdlib ``QueueHandler`` form of ``dictConfig``
    (Python 3.12+), which builds it as ``AnalyticsListener(queue, *handlers,
    respect_handler_level=...)``; it then reads its options from the ``LOGBRIDGE_*``
    environment, starts at once and stops at exit. Records are also passed to
    ``handlers``, as the stdlib listener does.
    """

    def __init__(
        self,
        queue: Any,
        *handlers: logging.Handler,
        respect_handler_level: bool = False,
        options: Options | None = None,
        **option_kwargs: Any,
    ) -> None:
        super().__init__(queue, *handlers, respect_handler_level=respect_handler_level)
        self._queue: Any = queue  # any object with the queue.Queue methods
        standalone = options is None
        if options is None:
            try:
                options = Options.from_kwargs(**option_kwargs)
            except ConfigurationError as exc:
                raise ConfigurationError(
                    f"{exc}. AnalyticsListener built by dictConfig's QueueHandler form gets "
                    "no options but the LOGBRIDGE_* environment; to pass options use the "
                    "handler entry {'()': 'logbridge.AnalyticsHandler', 'write_key': ...}"
                ) from None
        self.options = options
        self.stats = Stats()
        self.reporter = Reporter()
        self._deadline: float | None = None
        self._inline_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._sentinel_sent = False
        self._expired_flush = (-math.inf, math.inf)  # when a flush ran out, and its deadline
        self.ident: int | None = None
        self.destination = build_destination(options)
        self.sender = sender_for(
            options, None if options.disabled else self.destination,
            stats=self.stats, reporter=self.reporter, deadline=self._get_deadline,
        )
        self.pipeline = Pipeline(
            self.destination, self.sender.enqueue,
            flush_at=options.flush_at, flush_interval=options.flush_interval,
            context=options.context, on_error=options.on_error,
            stats=self.stats, reporter=self.reporter, backlog=self._has_backlog,
            max_batch_messages=options.max_queue_size, max_batch_bytes=options.max_queue_bytes,
        )
        if standalone:
            self.start()
            atexit.register(self.stop)

    def __repr__(self) -> str:
        where = self.options.endpoint or self.destination.name
        return f"<AnalyticsListener {where} running={self.running}>"

    @property
    def running(self) -> bool:
        """Whether the listener's thread is alive."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def owns_current_thread(self) -> bool:
        """True on the listener's or the sender's thread (their records are not events)."""
        return threading.get_ident() in OWN_THREADS

    def start(self) -> None:
        """Start the threads. Raises RuntimeError when Python cannot start one (at exit)."""
        if self._thread is not None:
            raise RuntimeError("AnalyticsListener already started")
        self.sender.start()
        thread = threading.Thread(target=self._monitor, name="logbridge-listener", daemon=True)
        thread.start()
        self._thread = thread
        self.ident = thread.ident
        _STARTED.add(self)

    def handle(self, record: AnyRecord) -> None:  # type: ignore[override,unused-ignore]
        """Send one record as an event, and pass it to any stdlib target handlers."""
        self.pipeline.add(record)
        if self.handlers and isinstance(record, logging.LogRecord):
            super().handle(record)

    def deliver_inline(
        self, record: logging.LogRecord | None = None, *, send: bool = False
    ) -> None:
        """Process on the calling thread, when there is no listener thread.

        Takes everything queued and ``record`` (if any); with ``send``, the current batch
        is delivered before returning, with the usual retries.
        """
        with self._inline_lock:
            self._drain_queue()
            if record is not None:
                self.handle(record)
            if send or self._deadline is not None:
                self.pipeline.flush()
                self.sender.drain_inline()

    def flush(self, timeout: float | None = None) -> bool:
        """Deliver everything enqueued before this call; False if ``timeout`` ran out."""
        timeout = self.options.shutdown_timeout if timeout is None else timeout
        if self.owns_current_thread():  # from a callback: no waiting on ourselves
            self.pipeline.flush()
            return True
        if not self.running:
            self.deliver_inline(send=True)
            return True
        request = _FlushRequest(timeout)
        self._queue.put(request)
        started = time.monotonic()
        if request.done.wait(timeout):
            return True
        # logging.shutdown() calls flush(), then close(): a stop that follows a flush that
        # ran out keeps the flush's deadline rather than starting a second one.
        self._expired_flush = (time.monotonic(), started + timeout)
        return False

    def stop(self, timeout: float | None = None, *, wait: bool = True) -> None:
        """Deliver what is queued within ``timeout`` (default ``shutdown_timeout``), then stop.

        Safe to call twice, from any thread, with a full queue or no thread at all. With
        ``wait=False`` the threads are told to drain and stop, and finish on their own.
        """
        timeout = self.options.shutdown_timeout if timeout is None else timeout
        if self._deadline is None:
            now = time.monotonic()
            self._deadline = now + timeout
            ended, flush_deadline = self._expired_flush
            if now - ended < _FLUSH_THEN_STOP:
                self._deadline = min(self._deadline, flush_deadline)
        # Reports stay on while the threads drain, also with wait=False (under dictConfig's
        # lock, or _stop_all_at_exit): report.warn takes no module lock, and nobody waits.
        thread = self._thread
        if thread is not None and thread.is_alive() and thread.ident != threading.get_ident():
            if not self._sentinel_sent:
                self._sentinel_sent = True
                self._queue.put(None)
            if not wait:
                return
            thread.join(max(0.0, self._deadline - time.monotonic()) + 1.0)
            if thread.is_alive():
                self.pipeline.drop_unsent(
                    self._queue_size(), DropReason.SHUTDOWN_TIMEOUT,
                    f"still queued when shutdown_timeout ({timeout:g}s) ran out",
                )
            self.reporter.summary()
            self.reporter.enabled = False
            return
        if thread is None or not thread.is_alive():
            self.deliver_inline(send=True)
            self.sender.stop()
        self.reporter.summary()
        self.reporter.enabled = False

    def snapshot(self) -> dict[str, object]:
        """The counters, with messages still waiting in the queue, the batch or the outbox."""
        queued = self._queue_size() + self.pipeline.pending() + self.sender.pending()
        return self.stats.snapshot(queued=queued)

    def reset_after_fork(self) -> None:
        """In a forked child, before first use: no inherited connections."""
        self.sender.reset_after_fork()

    def _get_deadline(self) -> float | None:
        return self._deadline

    def _has_backlog(self) -> bool:
        """Whether records are waiting in the queue (the current batch may grow)."""
        return self._queue_size() > 0

    def _queue_size(self) -> int:
        # A queue handed over by dictConfig may not count: multiprocessing queues raise
        # NotImplementedError from qsize() on macOS.
        try:
            return int(self._queue.qsize())
        except (AttributeError, NotImplementedError):
            return 0

    def _monitor(self) -> None:
        """The thread's loop: records in, batches out, until the sentinel."""
        with own_thread():
            self._loop()

    def _loop(self) -> None:
        self.ident = threading.get_ident()
        get = self._queue.get
        pipeline = self.pipeline
        while True:
            due = pipeline.due_at()
            try:
                item = get(True) if due is None else get(True, max(0.0, due - time.monotonic()))
            except queue_module.Empty:
                self._guarded(pipeline.flush)
                continue
            if item is None:  # the stdlib's sentinel, put by stop()
                self._guarded(self._drain_queue)
                self._guarded(pipeline.flush)
                self.sender.stop()
                return
            self._take(item)

    def _guarded(self, step: Any) -> None:
        """Run one step of the loop; whatever it raises, the thread lives on."""
        try:
            step()
        except BaseException as exc:
            self.reporter.problem("listener", f"recovered from {describe(exc)}")

    def _take(self, item: Any) -> None:
        if isinstance(item, _FlushRequest):
            self._guarded(self.pipeline.flush)
            # Wait on the sender here: records after the request stay queued meanwhile.
            if self.sender.flush(item.timeout):
                item.done.set()
        elif item is not None:
            try:
                self.handle(item)
            except BaseException as exc:  # a target handler raised; the thread must live on
                self.reporter.problem("listener", f"handling a record raised {describe(exc)}")

    def _drain_queue(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue_module.Empty:
                return
            self._take(item)


#: Every listener whose thread was started: stopped together at exit (see below).
_STARTED: weakref.WeakSet[AnalyticsListener] = weakref.WeakSet()


def _stop_all_at_exit() -> None:
    """At exit, before ``logging.shutdown()``: stop every listener still running, together.

    Registered when logbridge is imported, so after logging's own exit hook, and atexit
    runs hooks last-registered first. Each listener gets one deadline, started at the
    same moment as the others', so the whole exit takes at most the longest
    ``shutdown_timeout``: ``logging.shutdown()`` then finds them stopped, and its
    ``flush()`` and ``close()`` return at once. Listeners of handlers closed earlier by a
    reconfiguration (``dictConfig``), still draining on their own, are waited for too.
    """
    running = [listener for listener in list(_STARTED) if listener.running]
    for listener in running:
        listener.stop(wait=False)
    for listener in running:
        listener.stop()


atexit.register(_stop_all_at_exit)
