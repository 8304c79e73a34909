"""Replaying messages: a dead letter, a JSON-lines archive or a spool, delivered again.

What it reads, line by line (or row by row):

- a dead letter (the ``dead_letter`` option): ``{"reason": ..., "message": {...}}``;
- a JSON-lines archive of messages: the ``jsonl`` destination, an ``AnalyticsFormatter``
  on a ``FileHandler``, ``logbridge collect --output``; a ``{"batch": [...]}`` body too;
- a spool (the ``spool`` option's SQLite file), read only: its rows stay where they are.

Each message goes out as it was, with its ``messageId`` and ``timestamp``: a historical
import, which the service deduplicates by messageId. Every batch that is acknowledged
is recorded in a state file before the next one leaves, so a replay that is
interrupted (Ctrl-C) and run again sends only what was not delivered.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from ._replay_input import Entry
from .delivery.retry import RetryPolicy
from .errors import DeliveryError

__all__ = ["ReplayState", "Replayer", "Summary"]


class Answer(Protocol):
    """What one request gave (see :class:`logbridge._cli_target.Answer`)."""

    @property
    def ok(self) -> bool: ...
    @property
    def error(self) -> DeliveryError | None: ...
    @property
    def retry_after(self) -> float | None: ...
    @property
    def refused(self) -> Mapping[int, str]: ...
    @property
    def deferred(self) -> Mapping[int, float]: ...


class Target(Protocol):
    """Where the replay sends: one request at a time."""

    @property
    def url(self) -> str: ...
    @property
    def timeout(self) -> float: ...

    def items(self, message: Mapping[str, Any]) -> list[bytes]: ...
    def send(self, items: Any, *, timeout: float | None = None) -> Any: ...


# The state: what was delivered ---------------------------------------------------------


class ReplayState:
    """The keys (messageIds) already delivered, kept in an append-only file.

    Each acknowledged batch's keys are written and synced before the next batch is
    sent, so an interrupted replay loses at most the answer of the batch in flight.
    """

    def __init__(self, path: str, *, fresh: bool = False) -> None:
        self.path = path
        self.done: set[str] = set()
        if fresh and os.path.exists(path):
            os.unlink(path)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as file:
                self.done = {line.rstrip("\n") for line in file if line.strip()}
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def add(self, keys: list[str]) -> None:
        """Record ``keys`` as delivered, durably."""
        data = "".join(f"{key}\n" for key in keys).encode("utf-8")
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]
        os.fsync(self._fd)
        self.done.update(keys)

    def close(self) -> None:
        """Close the file."""
        os.close(self._fd)


# Delivering ----------------------------------------------------------------------------


@dataclasses.dataclass
class Summary:
    """What a replay did, as counts."""

    delivered: int = 0
    already: int = 0  # delivered by an earlier run (in the state file)
    failed: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    skipped: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    left: int = 0  # not tried: interrupted or out of time
    interrupted: bool = False

    @property
    def messages(self) -> int:
        """Messages read from the input."""
        return self.delivered + self.already + sum(self.failed.values()) + self.left

    @property
    def processed(self) -> int:
        """Entries dealt with so far, for the progress bar."""
        return self.messages + sum(self.skipped.values())


class Replayer:
    """Sends entries in batches, one request at a time, retrying what may pass later.

    ``describe(answer)`` names a failure for the summary; ``failed(items, reason, answer)``
    hears of messages that failed for good (to write a new dead letter); ``stop`` ends
    the replay between two requests; ``rate`` bounds messages a second.
    """

    def __init__(
        self,
        target: Target,
        state: ReplayState,
        *,
        describe: Callable[[Any], str],
        batch_size: int = 100,
        max_request_bytes: int = 500_000,
        rate: float | None = None,
        give_up_after: float = 60.0,
        max_retries: int = 10,
        stop: threading.Event | None = None,
        failed: Callable[[list[bytes], str, Any], None] | None = None,
        progress: Callable[[Summary], None] | None = None,
    ) -> None:
        self.target = target
        self.state = state
        self.describe = describe
        self.batch_size = max(1, min(batch_size, int(rate) if rate and rate >= 1 else batch_size))
        if rate is not None and rate < 1:
            self.batch_size = 1
        self.max_request_bytes = max_request_bytes
        self.rate = rate
        self.deadline = time.monotonic() + give_up_after
        self.retry = RetryPolicy(max_retries=max_retries, budget=give_up_after)
        self.stop = stop or threading.Event()
        self.on_failed = failed
        self.on_progress = progress
        self.summary = Summary()
        self._started = time.monotonic()
        self._sent_in_run = 0
        self._rng = random.Random()

    def run(self, entries: Iterator[Entry]) -> Summary:
        """Replay ``entries``; the summary (also at :attr:`summary` as it goes)."""
        items: list[bytes] = []
        keys: list[str] = []
        size = 0
        for entry in entries:
            if entry.message is None:
                self.summary.skipped[entry.skipped or "no message"] += 1
                continue
            if entry.key in self.state.done:
                self.summary.already += 1
                continue
            if entry.key in keys:
                self.summary.skipped["the same messageId twice"] += 1
                continue
            if self.stop.is_set() or time.monotonic() >= self.deadline:
                self.summary.left += 1
                continue
            try:
                encoded = self.target.items(entry.message)
            except ValueError as exc:  # InvalidEvent: not a message the service takes
                self.summary.failed[f"invalid: {exc}"] += 1
                continue
            for item in encoded:
                if items and (len(items) >= self.batch_size
                              or size + len(item) + 1 > self.max_request_bytes):
                    self._deliver(items, keys)
                    items, keys, size = [], [], 0
                items.append(item)
                keys.append(entry.key)
                size += len(item) + 1
            self._progress()
        if items:
            self._deliver(items, keys)
        self._progress()
        return self.summary

    def _deliver(self, items: list[bytes], keys: list[str]) -> None:
        if not self._wait_for_rate(len(items)):
            self.summary.left += len(items)
            return
        self._attempt(items, keys)

    def _attempt(self, items: list[bytes], keys: list[str]) -> None:
        """Send ``items`` until each is delivered, failed, or left (out of time, stopped).

        The answer is read message by message: refused items fail with their reason;
        deferred ones (a throttled user) wait the time they were given, after the rest
        is settled; the rest is delivered, or retried as the error says (at once when
        the request shrank, else after a backoff).
        """
        failures = 0
        first_failure = 0.0
        while True:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                self.summary.left += len(items)
                return
            answer = self.target.send(items, timeout=min(self.target.timeout, remaining))
            refused, deferred, error = answer.refused, answer.deferred, answer.error
            if refused:
                self._refuse(items, refused, answer)
            rest = [i for i in range(len(items)) if i not in refused and i not in deferred]
            if deferred:
                if rest and error is None:
                    self._acknowledge([items[i] for i in rest], [keys[i] for i in rest])
                elif rest:
                    self._attempt([items[i] for i in rest], [keys[i] for i in rest])
                held = sorted(deferred)
                items, keys = [items[i] for i in held], [keys[i] for i in held]
                if not self._pause(max(deferred.values()), items, answer):
                    return
                continue
            items, keys = [items[i] for i in rest], [keys[i] for i in rest]
            if not items:
                return
            if error is None:
                self._acknowledge(items, keys)
                return
            if error.status == 413 and len(items) > 1:
                half = len(items) // 2
                self._attempt(items[:half], keys[:half])
                self._attempt(items[half:], keys[half:])
                return
            now = time.monotonic()
            failures += 1
            first_failure = first_failure or now
            if not error.retryable or self.retry.gives_up(failures, first_failure, now):
                self._fail(items, answer)
                return
            if refused:
                continue  # the request shrank: it is another request, tried at once
            delay = self.retry.delay(failures - 1, answer.retry_after, rng=self._rng)
            if not self._pause(delay, items, answer):
                return

    def _pause(self, seconds: float, items: list[bytes], answer: Any) -> bool:
        """Wait before trying ``items`` again; False (and counted) if out of time or stopped."""
        if time.monotonic() + seconds >= self.deadline:
            self._fail(items, answer, note=" (out of time)")
            return False
        if self.stop.wait(seconds):  # Ctrl-C while waiting: left for the next run
            self.summary.left += len(items)
            return False
        return True

    def _acknowledge(self, items: list[bytes], keys: list[str]) -> None:
        """Record delivered items, durably, before anything else is sent."""
        if keys:
            self.state.add(list(dict.fromkeys(keys)))
        self.summary.delivered += len(items)
        self._sent_in_run += len(items)
        self._progress()

    def _refuse(self, items: list[bytes], refused: Mapping[int, str], answer: Any) -> None:
        """Items the service refused one by one: failed for good, each with its reason."""
        for index in sorted(refused):
            self.summary.failed[f"refused: {refused[index]}"] += 1
        if self.on_failed is not None:
            self.on_failed([items[i] for i in sorted(refused)], "rejected", answer)

    def _fail(self, items: list[bytes], answer: Any, *, note: str = "") -> None:
        self.summary.failed[self.describe(answer) + note] += len(items)
        if self.on_failed is not None:
            retryable = answer.error is None or answer.error.retryable
            self.on_failed(items, "retries_exhausted" if retryable else "rejected", answer)

    def _wait_for_rate(self, count: int) -> bool:
        """Hold the next request until ``rate`` allows it; False if stopped meanwhile."""
        if self.rate is None:
            return not self.stop.is_set()
        due = self._started + self._sent_in_run / self.rate
        pause = due - time.monotonic()
        if pause > 0 and self.stop.wait(pause):
            return False
        return not self.stop.is_set()

    def _progress(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.summary)
