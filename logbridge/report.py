"""logbridge's own diagnostics: warnings on the ``logbridge`` logger, rate-limited.

Two duties pull apart here. A library must not configure its application's logging or
flood it, which is why the ``logbridge`` logger carries a ``NullHandler`` (as urllib3's
does) and each problem is written at most once per ``interval``. But a rejected write
key or events given up must not be lost without a word, and that ``NullHandler`` turns
off the stdlib's ``logging.lastResort``. So logbridge's handler is a ``NullHandler``
that hands a record to ``logging.lastResort`` (stderr) when nothing else takes it, the
way the stdlib decides it for a library without a handler: a warning goes where the
application routed it (a handler on ``logbridge`` or root), nowhere when it said so
(``propagate`` off or a level on ``logbridge``), and to stderr when it said nothing.
dictConfig's ``disable_existing_loggers`` does not silence the reporter (see
:func:`warn`).

Each distinct problem (its kind and its detail with the numbers, quoted values and
ids taken out) is written at least once; repeats within ``interval`` are counted and
told with the next line of that problem, or by :meth:`Reporter.summary` at stop.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Reporter", "call_safely", "callback_name", "describe", "logger", "warn"]

logger = logging.getLogger("logbridge")


class _LastResortWhenUnrouted(logging.NullHandler):
    """logbridge's own handler on its logger: a ``NullHandler``, except when it is alone.

    When no other handler takes the record on its way up (and ``propagate`` was left
    on), the record goes to ``logging.lastResort``, as it would with no handler at all.
    So every WARNING on ``logbridge`` and its children (logger.warning anywhere in the
    package, not only :class:`Reporter`'s lines) is heard when nothing is configured.
    """

    def handle(self, record: logging.LogRecord) -> bool:
        if not routed(record.name):
            last_resort = logging.lastResort
            if last_resort is not None and record.levelno >= last_resort.level:
                last_resort.handle(record)
        return True


#: The handler logbridge itself puts on its logger: not a choice of the application's.
_OWN_HANDLER = _LastResortWhenUnrouted()
logger.addHandler(_OWN_HANDLER)

#: How many distinct problems one reporter tells apart; past that, one per kind.
MAX_DISTINCT = 100

#: What varies between reports of one problem: quoted values, UUIDs, numbers.
_VARYING = re.compile(
    r"'[^']*'|\"[^\"]*\"|[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}|\d+(?:\.\d+)?"
)


def problem_key(detail: str) -> str:
    """``detail`` without what varies between reports of the same problem."""
    return _VARYING.sub("#", detail)


def routed(name: str = "logbridge") -> bool:
    """Whether the application said where the records of logger ``name`` go.

    As ``Logger.callHandlers`` decides when to use ``logging.lastResort``, except that
    logbridge's own handler does not count and an application that turned
    ``propagate`` off has chosen where they go (nowhere, if it added no handler).
    Reads handler lists without logging's lock: this may run while another thread
    holds it (dictConfig).
    """
    found = logging.Logger.manager.loggerDict.get(name)
    current: logging.Logger | None = found if isinstance(found, logging.Logger) else logger
    while current is not None:
        if any(handler is not _OWN_HANDLER for handler in current.handlers):
            return True
        if not current.propagate:
            return True
        current = current.parent
    return False


def warn(message: str, *args: object) -> None:
    """Write one WARNING on the ``logbridge`` logger, heard even when nothing is set up.

    A level on ``logbridge`` (or above it), ``logging.disable()`` and the logger's
    filters apply. ``Logger.disabled`` does not: dictConfig and fileConfig set it on
    every logger that existed before them unless ``disable_existing_loggers=False``,
    logbridge's among them (it is imported while they build the handler); that is no
    choice about where logbridge's warnings go, and events would be lost unheard.
    """
    if logger.manager.disable >= logging.WARNING or logger.getEffectiveLevel() > logging.WARNING:
        return
    record = logger.makeRecord(logger.name, logging.WARNING, __file__, 0, message, args, None)
    if logger.filter(record):
        logger.callHandlers(record)  # what logger.warning does, but for ``disabled``


class Reporter:
    """Writes problems to the ``logbridge`` logger, one line per problem per interval."""

    __slots__ = ("_held", "_last", "_lock", "enabled", "interval")

    def __init__(self, interval: float = 10.0) -> None:
        self.interval = interval
        self.enabled = True
        self._lock = threading.Lock()
        self._last: dict[tuple[str, str], float] = {}
        #: Per problem: the reports held back since its last line, and the latest detail.
        self._held: dict[tuple[str, str], tuple[int, str]] = {}

    def problem(self, kind: str, detail: str, *, key: str | None = None) -> None:
        """Report one problem of ``kind``; ``detail`` says what happened and why.

        ``key`` tells this problem from others of its kind (default: ``detail`` with
        its numbers, quoted values and ids taken out).
        """
        if not self.enabled:
            return
        now = time.monotonic()
        key_of = (kind, problem_key(detail) if key is None else key)
        with self._lock:
            if key_of not in self._last and len(self._last) >= MAX_DISTINCT:
                key_of = (kind, "")  # bounded memory: past the bound, one per kind
            last = self._last.get(key_of)
            if last is not None and now - last < self.interval:
                held, _ = self._held.get(key_of, (0, ""))
                self._held[key_of] = (held + 1, detail)
                return
            self._last[key_of] = now
            held, _ = self._held.pop(key_of, (0, ""))
        if held:
            detail = f"{detail} (and {held} more like it in the last {self.interval:g}s)"
        self._write(kind, detail)

    def summary(self) -> None:
        """Tell the counts the rate limit held back, one line per kind (at stop)."""
        with self._lock:
            held, self._held = self._held, {}
        by_kind: dict[str, tuple[int, str]] = {}
        for (kind, _), (count, detail) in held.items():
            total, _ = by_kind.get(kind, (0, ""))
            by_kind[kind] = (total + count, detail)
        if not self.enabled:
            return
        for kind, (count, detail) in by_kind.items():
            self._write(kind, f"{count} more not shown by the rate limit; the last: {detail}")

    def _write(self, kind: str, detail: str) -> None:
        # If logging itself is broken or shutting down, the counts remain.
        with contextlib.suppress(Exception):
            warn("logbridge: %s: %s", kind, detail)


def describe(exc: BaseException) -> str:
    """``repr(exc)``, or its class name when even that raises."""
    try:
        return repr(exc)
    except BaseException:
        return type(exc).__name__


def callback_name(callback: Callable[..., object]) -> str:
    """A callback's qualified name, for a report."""
    try:
        return str(getattr(callback, "__qualname__", None) or type(callback).__name__)
    except BaseException:
        return "callback"


def call_safely(reporter: Reporter, callback: Callable[..., object] | None, *args: Any) -> None:
    """Call a user's callback; whatever it raises is reported, never propagated.

    ``KeyboardInterrupt`` alone goes on: in ``sync`` mode the callback runs on the
    application's main thread, and Ctrl-C there must still stop the application.
    """
    if callback is None:
        return
    try:
        callback(*args)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # a callback must not end a logbridge thread
        reporter.problem("callback", f"{callback_name(callback)} raised {describe(exc)}")
