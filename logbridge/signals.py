"""Deliver queued events when the process is told to stop (SIGTERM, SIGINT).

Python runs no ``atexit`` (so no ``logging.shutdown()``) when a default SIGTERM kills
it, which is how containers, systemd and most deploy tools stop a process. Call
:func:`install_signal_handlers` once, from the main thread, at start-up::

    import logbridge
    logbridge.install_signal_handlers()

On SIGTERM or SIGINT every open :class:`~logbridge.AnalyticsHandler` is flushed (each
within its ``shutdown_timeout``, or ``timeout``), then the previous handler runs: a
Python handler is called, an ignored signal stays ignored, and the default action
becomes ``SystemExit(128 + signum)`` (143 for SIGTERM) for SIGTERM, or
``KeyboardInterrupt`` for SIGINT, so ``finally`` blocks and ``atexit`` still run.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any

from .handler import flush
from .report import warn

__all__ = ["install_signal_handlers"]

_Previous = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


def _default_signals() -> tuple[signal.Signals, ...]:
    return tuple(
        getattr(signal, name) for name in ("SIGTERM", "SIGINT") if hasattr(signal, name)
    )


def install_signal_handlers(
    signals: Iterable[int] | None = None, *, timeout: float | None = None
) -> dict[int, _Previous]:
    """Flush every AnalyticsHandler on ``signals`` (SIGTERM, SIGINT), then chain.

    ``timeout`` bounds each handler's flush (default: its ``shutdown_timeout``).
    Returns the handlers replaced, by signal number. Must be called from the main
    thread (Python's rule for signal handlers); installing twice does not flush twice.
    """
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("install_signal_handlers() must be called from the main thread")
    replaced: dict[int, _Previous] = {}
    for signum in _default_signals() if signals is None else tuple(signals):
        previous = signal.getsignal(signum)
        if getattr(previous, "_logbridge_flush", False):
            previous = getattr(previous, "_logbridge_previous", signal.SIG_DFL)
        handler = _make_handler(signum, previous, timeout)
        signal.signal(signum, handler)
        replaced[int(signum)] = previous
    return replaced


def _make_handler(
    signum: int, previous: _Previous, timeout: float | None
) -> Callable[[int, FrameType | None], None]:
    def on_signal(received: int, frame: FrameType | None) -> None:
        try:
            delivered = flush(timeout)
        except Exception as exc:  # flushing must never stop the chain
            warn("logbridge: flush on signal %d raised %r", received, exc)
        else:
            if not delivered:
                warn(
                    "logbridge: signal %d: not everything was delivered in time; see stats()",
                    received,
                )
        _chain(received, frame, previous)

    on_signal._logbridge_flush = True  # type: ignore[attr-defined]
    on_signal._logbridge_previous = previous  # type: ignore[attr-defined]
    return on_signal


def _chain(signum: int, frame: FrameType | None, previous: _Previous) -> None:
    """Do what would have happened without logbridge's handler."""
    if callable(previous):
        previous(signum, frame)
        return
    if previous == signal.SIG_IGN:
        return
    if signum == getattr(signal, "SIGINT", None):
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)
