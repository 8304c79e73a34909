"""The outbox: batches waiting for the sender, bounded by count and bytes.

Only bookkeeping lives here (entries in order, their totals, room, markers); what to do
with an entry is the sender's business. Every method takes the outbox's lock itself.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from collections.abc import Collection, Iterable

__all__ = ["Entry", "FlushMarker", "Outbox", "OutboxLimits", "Parking"]


@dataclasses.dataclass(frozen=True)
class OutboxLimits:
    """What the outbox may hold; with ``block``, a full outbox makes the submitter wait."""

    max_messages: int = 100_000
    max_bytes: int = 64 * 1024 * 1024
    block: bool = False
    block_timeout: float = 1.0


class Entry:
    """One batch in the outbox: its serialised items, spool rows and delivery history."""

    __slots__ = ("attempts", "failures", "first_failure", "items", "nbytes", "spool_ids")

    def __init__(self, items: list[bytes], spool_ids: list[int] | None) -> None:
        self.items = items
        self.nbytes = sum(map(len, items))
        self.spool_ids = spool_ids
        self.attempts = 0  # every request of this batch
        self.failures = 0  # the failures charged to it (not unavailability)
        self.first_failure = 0.0

    def part(self, keep: Iterable[int]) -> Entry:
        """A new entry of the items at the positions ``keep``, with their spool rows."""
        positions = list(keep)
        ids = self.spool_ids
        return Entry(
            [self.items[i] for i in positions],
            [ids[i] for i in positions] if ids else None,
        )


class FlushMarker:
    """Put in the outbox by ``flush``: set once every batch before it is settled."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


class Outbox:
    """Entries in order, with their message and byte totals.

    ``cond`` is re-entrant, so the sender may hold it across calls.
    """

    def __init__(self, limits: OutboxLimits) -> None:
        self.limits = limits
        self.cond = threading.Condition(threading.RLock())
        self._entries: collections.deque[Entry | FlushMarker] = collections.deque()
        self.messages = 0
        self.bytes = 0

    def __bool__(self) -> bool:
        return bool(self._entries)

    def put(self, entry: Entry, *, may_wait: bool) -> bool:
        """Append ``entry`` if it fits; with ``block`` and ``may_wait``, wait a while for room."""
        limits = self.limits
        with self.cond:
            deadline = time.monotonic() + limits.block_timeout
            while (
                self.messages + len(entry.items) > limits.max_messages
                or self.bytes + entry.nbytes > limits.max_bytes
            ) and self.messages:
                remaining = deadline - time.monotonic()
                if not (limits.block and may_wait) or remaining <= 0:
                    return False
                self.cond.wait(remaining)
            self._append(entry)
            return True

    def put_unbounded(self, entry: Entry | FlushMarker) -> None:
        """Append ``entry`` whatever the bounds (markers, recovered and released batches)."""
        with self.cond:
            self._append(entry)

    def _append(self, entry: Entry | FlushMarker) -> None:
        self._entries.append(entry)
        if isinstance(entry, Entry):
            self.messages += len(entry.items)
            self.bytes += entry.nbytes
        self.cond.notify_all()

    def head(self) -> Entry | FlushMarker | None:
        """The oldest entry, left in place."""
        with self.cond:
            return self._entries[0] if self._entries else None

    def waiting(self, skip: Collection[Entry], limit: int) -> list[Entry]:
        """Up to ``limit`` entries from the head, not in ``skip``, before the first marker."""
        found: list[Entry] = []
        with self.cond:
            for entry in self._entries:
                if len(found) >= limit or isinstance(entry, FlushMarker):
                    break
                if entry not in skip:
                    found.append(entry)
        return found

    def pop(self, entry: Entry | FlushMarker) -> None:
        """Remove ``entry`` (usually the head: with requests in flight, any) and its totals."""
        with self.cond:
            if self._entries and self._entries[0] is entry:
                self._entries.popleft()
            else:
                try:
                    self._entries.remove(entry)
                except ValueError:  # taken already (abandoned at the deadline)
                    return
            if isinstance(entry, Entry):
                self.messages -= len(entry.items)
                self.bytes -= entry.nbytes
            self.cond.notify_all()

    def replace(self, entry: Entry, parts: list[Entry]) -> None:
        """Put ``parts`` in place of ``entry``, in order, wherever it is."""
        with self.cond:
            try:
                index = self._entries.index(entry)
            except ValueError:
                return
            del self._entries[index]
            self.messages -= len(entry.items)
            self.bytes -= entry.nbytes
            for offset, part in enumerate(parts):
                self._entries.insert(index + offset, part)
                self.messages += len(part.items)
                self.bytes += part.nbytes
            self.cond.notify_all()

    def shrink(self, entry: Entry, kept: Entry, *, held: list[Entry] | None = None) -> None:
        """``entry`` now holds only ``kept``'s items; ``held`` ones wait outside, still counted."""
        with self.cond:
            self.messages -= len(entry.items) - len(kept.items)
            self.bytes -= entry.nbytes - kept.nbytes
            for part in held or ():
                self.messages += len(part.items)
                self.bytes += part.nbytes
            entry.items, entry.spool_ids, entry.nbytes = kept.items, kept.spool_ids, kept.nbytes
            self.cond.notify_all()

    def put_front(self, entries: list[Entry], *, counted: bool) -> None:
        """Put ``entries`` at the front, in order (``counted``: their totals are in already)."""
        with self.cond:
            for entry in reversed(entries):
                self._entries.appendleft(entry)
                if not counted:
                    self.messages += len(entry.items)
                    self.bytes += entry.nbytes
            self.cond.notify_all()

    def take_all(self) -> list[Entry | FlushMarker]:
        """Empty the outbox, returning what it held."""
        with self.cond:
            rest = list(self._entries)
            self._entries.clear()
            self.messages = self.bytes = 0
            self.cond.notify_all()
            return rest


class Parking:
    """Items a destination deferred (a throttled user), held until their time comes.

    They stay counted in the outbox's totals (see :meth:`Outbox.shrink`), and go back to
    its front when due (:meth:`Outbox.put_front`).
    """

    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held: list[tuple[float, Entry]] = []

    def __bool__(self) -> bool:
        return bool(self._held)

    def park(self, entry: Entry, until: float) -> None:
        """Hold ``entry`` until the monotonic time ``until``."""
        self._held.append((until, entry))

    def due(self, now: float) -> list[Entry]:
        """Take the entries whose time has come."""
        ready = [entry for when, entry in self._held if when <= now]
        if ready:
            self._held = [(when, entry) for when, entry in self._held if when > now]
        return ready

    def wait(self, now: float) -> float | None:
        """Seconds until the first entry is due; None when nothing is held."""
        if not self._held:
            return None
        return max(0.0, min(when for when, _ in self._held) - now)

    def take_all(self) -> list[Entry]:
        """Every held entry, now."""
        entries = [entry for _, entry in self._held]
        self._held = []
        return entries
