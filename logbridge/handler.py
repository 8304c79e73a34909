"""``AnalyticsHandler``: the logging handler users configure. Thin glue.

The caller's thread does only cheap work here: a name check against the loop guard and
a put on a queue. The listener (started lazily on first use, stopped and drained in
``close()``) does everything else.
"""

from __future__ import annotations

import logging
import logging.handlers
import queue as queue_module
import sys
import threading
import types
import weakref
from collections.abc import Callable, Iterable
from threading import get_ident
from typing import Any

from .context import capture as capture_bound
from .errors import ConfigurationError
from .forking import at_fork
from .guard import OWN_THREADS, is_internal
from .listener import AnalyticsListener
from .options import Options, plain
from .record import BOUND_ATTR, compact
from .stats import DropReason

__all__ = ["AnalyticsHandler", "flush"]

#: Keys the stdlib's QueueHandler forms of dictConfig may pass; accepted and used.
_STDLIB_QUEUE_KEYS = frozenset({"queue", "listener", "handlers", "respect_handler_level"})


class AnalyticsHandler(logging.handlers.QueueHandler):
    """Sends log records as Segment-spec analytics messages, in batches.

    Example::

        handler = logbridge.AnalyticsHandler(write_key="...", destination="segment")
        logging.getLogger("analytics").addHandler(handler)
        logging.getLogger("analytics").info("Order Completed", extra={"user_id": "u1"})

    In ``dictConfig`` use the factory key: ``{"()": "logbridge.AnalyticsHandler",
    "write_key": ..., ...}``. Options are documented in the README.
    """

    def __init__(
        self,
        queue: Any = None,
        *,
        handlers: Iterable[Any] | None = None,
        respect_handler_level: bool = False,
        listener: Any = None,
        **options: Any,
    ) -> None:
        if not options:
            dropped = _dropped_class_options()
            if dropped:
                raise ConfigurationError(
                    f"this Python ({sys.version.split()[0]}) drops the options {dropped} of a "
                    "dictConfig 'class' entry naming a QueueHandler subclass "
                    "(python/cpython#118868); configure the handler with the factory key "
                    "instead: {'()': 'logbridge.AnalyticsHandler', ...}"
                )
        self.options = Options.from_kwargs(**{key: plain(options[key]) for key in options})
        super().__init__(queue if queue is not None else self._new_queue())
        self._target_names = list(handlers or ())
        self._respect_handler_level = respect_handler_level
        self._state_lock = threading.Lock()
        self._closed = False
        self._inline = False
        self._listener = self._new_listener()
        self._started = False
        self._compact = False  # queue compact records (no stdlib target handlers)
        at_fork(self, after_in_child="_after_fork_in_child")
        _LIVE_HANDLERS.add(self)

    def __repr__(self) -> str:
        level = logging.getLevelName(self.level)
        where = self.options.endpoint or self._listener.destination.name
        return f"<AnalyticsHandler {where} ({level})>"

    # The stdlib (3.12+) assigns ``handler.listener`` after building a QueueHandler
    # subclass from a 'class' entry. A data descriptor keeps our own listener in place.
    @property
    def listener(self) -> AnalyticsListener:  # type: ignore[override,unused-ignore]
        """The :class:`AnalyticsListener` that batches and sends for this handler."""
        return self._listener

    @listener.setter
    def listener(self, value: Any) -> None:
        if value is None or value is getattr(self, "_listener", None):
            return
        self._listener.handlers = tuple(self._listener.handlers) + tuple(
            getattr(value, "handlers", ())
        )
        self._listener.respect_handler_level = bool(getattr(value, "respect_handler_level", False))

    def handle(self, record: logging.LogRecord) -> Any:
        """Filter, then emit, without the per-record handler lock (the queue is safe)."""
        result: Any = self.filter(record)  # a bool, or (3.12+) a replacement record
        if isinstance(result, logging.LogRecord):
            record = result
        if result:
            self.emit(record)
        return result

    def emit(self, record: logging.LogRecord) -> None:
        """Queue the record for the listener; never blocks, never raises."""
        try:
            if is_internal(record.name) or get_ident() in OWN_THREADS:
                return  # logbridge's own and its HTTP stack's records: never events
            bound = capture_bound()
            if bound is not None:
                record.__dict__[BOUND_ATTR] = bound
            hook = capture_hook  # logbridge.testing.capture(): no queue, no network
            if hook is not None:
                hook(self, record)
                return
            if self._started and not self._closed and not self.options.sync:
                item = compact(record, bound) if self._compact else None
                self.enqueue(record if item is None else item)
            else:  # sync mode: every record is delivered inline, not only the first
                self._start(record)
        except Exception:
            self.handleError(record)

    def prepare(self, record: logging.LogRecord) -> Any:
        """Return the record unchanged: no formatting or copying on the caller's thread."""
        return record

    def enqueue(self, record: Any) -> None:
        """Put the record on the queue, or count it dropped when the queue is full."""
        queue: Any = self.queue
        if self.options.block:
            try:
                queue.put(record, timeout=self.options.block_timeout)
                return
            except queue_module.Full:
                pass
        elif queue.qsize() < self.options.max_queue_size:
            queue.put_nowait(record)
            return
        self._listener.stats.drop(DropReason.QUEUE_FULL)
        self._listener.reporter.problem(
            DropReason.QUEUE_FULL.value,
            f"queue full ({self.options.max_queue_size} records); newest record dropped",
        )

    def flush(self, timeout: float | None = None) -> bool:  # type: ignore[override]
        """Deliver every record emitted before this call; False if ``timeout`` ran out."""
        if self._closed or not self._started:
            return True
        if _holds_logging_lock():
            # Called by dictConfig/fileConfig (under logging's lock) right before close();
            # close() delivers, and waiting here could only wait out the timeout.
            return False
        return self._listener.flush(timeout)

    def close(self) -> None:
        """Drain and deliver what is queued (within ``shutdown_timeout``), then close."""
        with self._state_lock:
            closed, self._closed = self._closed, True
            started = self._started
            self._started = True  # later records take the slow path and are counted
        if not closed and started:
            # dictConfig/fileConfig close the old handlers while holding logging's module
            # lock; the listener's HTTP stack logs (urllib3), which needs that lock. Waiting
            # for the listener then would only wait out the deadline: let it finish alone.
            self._listener.stop(wait=not _holds_logging_lock())
        super().close()

    def stats(self) -> dict[str, object]:
        """Counters: queued, processed, sent, batches, retries, failed, dropped by reason."""
        return self._listener.snapshot()

    def _start(self, record: logging.LogRecord) -> None:
        """The first record (and any after close): start the listener or go inline."""
        with self._state_lock:
            closed = self._closed
            first = not closed and not self._started
            if first:
                self._attach_target_handlers()
                self._compact = not self._listener.handlers
                if self.options.sync:
                    self._inline = True
                else:
                    try:
                        self._listener.start()
                    except RuntimeError:
                        # Python 3.12+ refuses new threads at interpreter exit: go inline.
                        self._inline = True
                self._started = True
        if first:
            _warn_if_duplicated(self, record.name)
        if closed:
            self._listener.stats.drop(DropReason.AFTER_CLOSE)
            self._listener.reporter.problem(
                DropReason.AFTER_CLOSE.value,
                f"record {record.msg!r:.80} emitted after the handler was closed",
            )
        elif self._inline:
            self._listener.deliver_inline(record, send=self.options.sync)
        else:
            self.enqueue(record)

    def _attach_target_handlers(self) -> None:
        """Resolve ``handlers`` given by name (a 'class' entry on Python < 3.12)."""
        targets = []
        for target in self._target_names:
            if isinstance(target, logging.Handler):
                targets.append(target)
                continue
            found = logging._handlers.get(str(target))  # type: ignore[attr-defined]
            if found is None:
                raise ConfigurationError(f"handler {target!r} named in 'handlers' does not exist")
            targets.append(found)
        if targets:
            self._listener.handlers = tuple(self._listener.handlers) + tuple(targets)
            self._listener.respect_handler_level = self._respect_handler_level

    def _new_queue(self) -> Any:
        if self.options.block:
            return queue_module.Queue(self.options.max_queue_size)
        return queue_module.SimpleQueue()

    def _new_listener(self) -> AnalyticsListener:
        return AnalyticsListener(self.queue, options=self.options)

    def _after_fork_in_child(self) -> None:
        """In a forked child: a fresh queue and listener; the parent's records stay its own."""
        self._state_lock = threading.Lock()
        if self._closed:
            return
        # The parent's listener is never used or finalised here: its spool connection and
        # sockets belong to the parent (closing them from the child could harm it).
        _PARENTS_LISTENERS.append(self._listener)
        _close_at_multiprocessing_exit(self)
        self.queue = self._new_queue()
        handlers = self._listener.handlers
        self._listener = self._new_listener()
        self._listener.handlers = handlers
        self._started = False
        self._inline = False


#: Set by :func:`logbridge.testing.capture` while it runs: takes every record instead of
#: the queue (the record already carries the bound fields).
capture_hook: Callable[[AnalyticsHandler, logging.LogRecord], None] | None = None

#: Every open AnalyticsHandler, for :func:`flush` (serverless and task runners).
_LIVE_HANDLERS: weakref.WeakSet[AnalyticsHandler] = weakref.WeakSet()
#: In a forked child, the listeners inherited from the parent: kept, never run.
_PARENTS_LISTENERS: list[AnalyticsListener] = []


#: Handlers already named in a duplicate warning: one warning per pair, not per record.
_WARNED_DUPLICATES: weakref.WeakSet[AnalyticsHandler] = weakref.WeakSet()


def _warn_if_duplicated(handler: AnalyticsHandler, logger_name: str) -> None:
    """At ``handler``'s first record: warn if another one on the record's path is its twin.

    Two AnalyticsHandlers for one endpoint and write key that a logger reaches (easy
    with dictConfig plus code) deliver every event twice. Checked once per handler, on
    the path of the first record's logger, reading handler lists without logging's lock.
    """
    options = handler.options
    if options.disabled or options.endpoint is None or handler in _WARNED_DUPLICATES:
        return  # (no endpoint: a local sink or an instance, which may well be shared)
    found = logging.root if logger_name == "root" else logging.Logger.manager.loggerDict.get(
        logger_name
    )
    current = found if isinstance(found, logging.Logger) else None
    while current is not None:
        for other in current.handlers:
            if (
                other is not handler
                and isinstance(other, AnalyticsHandler)
                and not other.options.disabled
                and other.options.endpoint == options.endpoint
                and other.options.write_key == options.write_key
            ):
                _WARNED_DUPLICATES.add(handler)
                _WARNED_DUPLICATES.add(other)
                handler._listener.reporter.problem(
                    "duplicate_handler",
                    f"{other!r} and {handler!r} send to the same endpoint with the same "
                    f"write key, and records of logger {logger_name!r} reach both: every "
                    "event is delivered twice (configure one of them)",
                )
                return
        current = current.parent if current.propagate else None


def flush(timeout: float | None = None) -> bool:
    """Flush every open AnalyticsHandler; False if any ran out of ``timeout``.

    For the end of an AWS Lambda invocation, a Celery task or a cron job, where the
    process may be frozen or killed before a background flush runs.
    """
    results = [handler.flush(timeout) for handler in list(_LIVE_HANDLERS)]
    return all(results)


def _holds_logging_lock() -> bool:
    lock = getattr(logging, "_lock", None)
    is_owned = getattr(lock, "_is_owned", None)
    return bool(is_owned()) if callable(is_owned) else False


def _close_at_multiprocessing_exit(handler: AnalyticsHandler) -> None:
    """In a child forked by multiprocessing, close ``handler`` when the child's work ends.

    Such a child ends with ``os._exit()``: no atexit, so no ``logging.shutdown()``. It
    runs multiprocessing's after-fork callbacks, then its finalizers before exiting.
    """
    mp_util = sys.modules.get("multiprocessing.util")
    if mp_util is None:
        return

    def at_child_start(target: AnalyticsHandler) -> None:
        mp_util.Finalize(target, target.close, exitpriority=0)

    mp_util.register_after_fork(handler, at_child_start)


def _dropped_class_options() -> list[str]:
    """The options dictConfig dropped from a 'class' entry (CPython 3.12.0-3.12.3), if any.

    Those versions build a QueueHandler subclass as ``klass(queue)``, losing the entry's
    other keys (python/cpython#118868). The dictConfig frame that makes the call still
    holds them, which is how the loss is seen.
    """
    frame: types.FrameType | None = sys._getframe(1)
    for _ in range(8):
        frame = frame.f_back if frame is not None else None
        if frame is None:
            return []
        if frame.f_code.co_name == "_configure_queue_handler":
            kwargs = frame.f_locals.get("kwargs", {})
            return sorted(set(kwargs) - _STDLIB_QUEUE_KEYS)
    return []
