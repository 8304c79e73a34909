"""Requests in flight: a few worker threads, each making one request at a time.

The sender decides what to send and what an answer means, on its own thread; the workers
only call the destination's ``send`` and hand the :class:`~logbridge.destinations.Outcome`
back. So retrying, splitting, spooling and dead-lettering stay in one place, on one
thread, whatever the number of requests in flight.

Workers are daemon threads started as they are needed (Python refuses to start threads at
interpreter exit: by then the ones that will be needed are usually running), each with its
own connection when the destination keeps one per thread.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from ..destinations.base import Outcome
from ..errors import DeliveryError
from ..guard import own_thread
from ..report import describe

__all__ = ["InFlight"]

T = TypeVar("T")
Send = Callable[..., Outcome]  # destination.send(items, *, timeout=...)


class InFlight(Generic[T]):
    """Up to ``size`` requests at once; answers are collected with :meth:`take`.

    ``notify`` is called (from a worker) after each answer, so the sender can wait on its
    own condition for either an answer or new work.
    """

    def __init__(self, send: Send, size: int, notify: Callable[[], None]) -> None:
        self.size = size
        self._send = send
        self._notify = notify
        self._jobs: collections.deque[tuple[T, Sequence[bytes], float] | None] = (
            collections.deque()
        )
        self._answers: collections.deque[tuple[T, Outcome]] = collections.deque()
        self._ready = threading.Condition(threading.Lock())
        self._workers: list[threading.Thread] = []
        self._idle = 0
        self.in_flight = 0  # started and not yet taken back; touched by the sender only

    @property
    def answered(self) -> bool:
        """Whether an answer is waiting to be taken."""
        return bool(self._answers)

    @property
    def room(self) -> int:
        """How many more requests may start now."""
        return self.size - self.in_flight

    def start(self, key: T, items: Sequence[bytes], timeout: float) -> bool:
        """Send ``items`` on a worker; False (nothing started) when no worker thread can run."""
        with self._ready:
            # Every idle worker may already have a job waiting for it: count those out.
            if self._idle <= len(self._jobs) and len(self._workers) < self.size:
                worker = threading.Thread(
                    target=self._work, name=f"logbridge-request-{len(self._workers) + 1}",
                    daemon=True,
                )
                try:
                    worker.start()
                except RuntimeError:  # at interpreter exit
                    if not self._workers:
                        return False
                else:
                    self._workers.append(worker)
                    self._idle += 1
            self._jobs.append((key, items, timeout))
            self._ready.notify()
        self.in_flight += 1
        return True

    def take(self) -> tuple[T, Outcome] | None:
        """The oldest answer not yet taken, or None."""
        try:
            answer = self._answers.popleft()
        except IndexError:
            return None
        self.in_flight -= 1
        return answer

    def close(self) -> None:
        """Let every worker end after its current request; answers still to come are lost."""
        with self._ready:
            self._jobs.extend([None] * len(self._workers))
            self._workers = []
            self._ready.notify_all()

    def _work(self) -> None:
        with own_thread():
            while True:
                with self._ready:
                    while not self._jobs:
                        self._ready.wait()
                    job = self._jobs.popleft()
                    if job is None:
                        return
                    self._idle -= 1
                key, items, timeout = job
                try:
                    outcome = self._send(items, timeout=timeout)
                except BaseException as exc:  # send never raises; if it does, a failed attempt
                    error = DeliveryError(f"the destination raised {describe(exc)}", retryable=True)
                    outcome = Outcome(error)
                with self._ready:
                    self._idle += 1
                self._answers.append((key, outcome))
                self._notify()
