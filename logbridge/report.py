"""logbridge's own diagnostics: warnings on the ``logbridge`` logger, rate-limited.

A library must not flood its application's logs, so each kind of problem is written at
most once per ``interval`` seconds, with the count of the similar ones held back.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Reporter", "call_safely", "callback_name", "describe"]

logger = logging.getLogger("logbridge")


class Reporter:
    """Writes problems to the ``logbridge`` logger, one line per kind per interval."""

    __slots__ = ("_held", "_last", "_lock", "enabled", "interval")

    def __init__(self, interval: float = 10.0) -> None:
        self.interval = interval
        self.enabled = True
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def problem(self, kind: str, detail: str) -> None:
        """Report one problem of ``kind``; ``detail`` says what happened and why."""
        if not self.enabled:
            return
        now = time.monotonic()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self.interval:
                self._held[kind] = self._held.get(kind, 0) + 1
                return
            self._last[kind] = now
            held = self._held.pop(kind, 0)
        if held:
            detail = f"{detail} (and {held} more like it in the last {self.interval:g}s)"
        # If logging itself is broken or shutting down, the counts remain.
        with contextlib.suppress(Exception):
            logger.warning("logbridge: %s: %s", kind, detail)


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
