"""Flush at the end of each invocation: AWS Lambda, cron jobs, task runners.

A process that is frozen (Lambda between invocations), killed, or ended with
``os._exit`` (multiprocessing and Celery pool children) may never run the background
flush or the exit-time drain. :func:`flushing` delivers what was logged before it
returns::

    @logbridge.flushing(timeout=2.0)
    def handler(event, context):
        analytics.track("Invoked", user_id=event["user"])

    with logbridge.flushing() as result:
        run_job()
    print(result.delivered)
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar, overload

from .handler import flush
from .report import warn

__all__ = ["Flushing", "flushing"]

F = TypeVar("F", bound=Callable[..., Any])



class Flushing:
    """Flushes every open AnalyticsHandler on leaving a block or a decorated call.

    Made by :func:`flushing`. The outcome of the last flush is in :attr:`delivered`.
    The flush runs whether the block returns or raises, and never raises itself; one
    that runs out of ``timeout`` is reported as a warning on the ``logbridge`` logger.
    """

    def __init__(self, timeout: float | None = None) -> None:
        if timeout is not None and (isinstance(timeout, bool) or not timeout >= 0):
            raise ValueError(f"timeout must be a number of seconds >= 0 or None, got {timeout!r}")
        self.timeout = timeout
        self.delivered: bool | None = None
        """After the block: True if everything was delivered in time (None before)."""

    def __repr__(self) -> str:
        return f"<Flushing timeout={self.timeout!r} delivered={self.delivered!r}>"

    def __enter__(self) -> Flushing:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.delivered = self.flush()

    def __call__(self, func: F) -> F:
        """Decorate ``func`` (a function or a coroutine function) to flush after each call."""
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                try:
                    return await func(*args, **kwargs)
                finally:
                    # Waiting for the network must not stall the event loop.
                    self.delivered = await asyncio.to_thread(self.flush)

            return run_async  # type: ignore[return-value]

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            finally:
                self.delivered = self.flush()

        return run  # type: ignore[return-value]

    def flush(self) -> bool:
        """Flush now; True if every handler delivered within ``timeout``."""
        try:
            delivered = flush(self.timeout)
        except Exception as exc:  # flush() should not raise; a broken handler might
            warn("logbridge: flush at the end of an invocation raised %r", exc)
            return False
        if not delivered:
            warn(
                "logbridge: events logged during the invocation were not all delivered "
                "within the flush timeout (%s)",
                "each handler's shutdown_timeout" if self.timeout is None else f"{self.timeout}s",
            )
        return delivered


@overload
def flushing(func: F, /) -> F: ...
@overload
def flushing(func: None = None, /, *, timeout: float | None = None) -> Flushing: ...
def flushing(func: F | None = None, /, *, timeout: float | None = None) -> F | Flushing:
    """Flush every open AnalyticsHandler at the end of a call or block.

    Use as ``@flushing``, ``@flushing(timeout=2.0)`` or ``with flushing():``. ``timeout``
    bounds each handler's flush (default: its ``shutdown_timeout``). Coroutine
    functions are supported: the flush then waits in a worker thread.
    """
    if func is not None:
        return Flushing(timeout)(func)
    return Flushing(timeout)
