"""The debugger's event log: the last N events, the requests they came in, and counts.

An :class:`EventLog` keeps a bounded window of recent events (``max_events``, oldest dropped
first) with the request body each came in (bounded in bytes too), so the debugger page and
the ``/events`` API can show them. Counts per type and event name cover everything since the
last :meth:`EventLog.reset`, not only the window. One lock acquisition per batch.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from logbridge.collector.recorder import RequestRecord

__all__ = [
    "DEFAULT_MAX_EVENTS",
    "Event",
    "EventLog",
    "EventQuery",
    "KeptRequest",
    "event_name",
    "event_type",
    "event_user",
]

#: How many events the debugger keeps by default.
DEFAULT_MAX_EVENTS: Final = 10_000
#: How many bytes of request bodies are kept for the "raw request" view, at most.
DEFAULT_MAX_KEPT_BODY_BYTES: Final = 32 * 1024 * 1024
#: Distinct (type, event name) pairs counted one by one; the rest count as ``(other)``.
MAX_COUNTED_NAMES: Final = 1_000
#: Seconds of per-second counts kept for the events-per-second chart.
TIMELINE_SECONDS: Final = 600

OTHER_NAMES: Final = "(other)"

Listener = Callable[[Sequence["Event"]], None]


class Event(NamedTuple):
    """One received message as the debugger sees it (the message itself is not copied).

    A named tuple: made for every message received, so it must be cheap to build.
    """

    id: int
    received_at: float
    request_id: int
    format: str
    message: Any
    problems: tuple[str, ...]

    @property
    def valid(self) -> bool:
        """Whether the message passed validation."""
        return not self.problems


@dataclass(frozen=True)
class KeptRequest:
    """A batch request whose events are kept: its record and its body as it came in."""

    id: int
    received_at: float
    record: RequestRecord
    wire: bytes
    first_event: int
    last_event: int


@dataclass(frozen=True)
class EventQuery:
    """Which events to list: every given criterion must hold."""

    type: str | None = None
    event: str | None = None
    user: str | None = None
    invalid: bool | None = None
    after: int = 0
    limit: int | None = None

    def matches(self, event: Event) -> bool:
        """Whether ``event`` meets every criterion given."""
        if event.id <= self.after:
            return False
        if self.invalid is not None and self.invalid == event.valid:
            return False
        if self.type is not None and event_type(event) != self.type:
            return False
        if self.event is not None and event_name(event) != self.event:
            return False
        return self.user is None or self.user in event_user(event)


def event_type(event: Event) -> str | None:
    """The message type: Segment's ``type``, or what an Amplitude event amounts to."""
    msg = event.message
    if not isinstance(msg, Mapping):
        return None
    kind = msg.get("type")
    if isinstance(kind, str):
        return kind
    name = msg.get("event_type")
    if isinstance(name, str):
        return {"$identify": "identify", "$groupidentify": "group"}.get(name, "track")
    return None


def event_name(event: Event) -> str | None:
    """The event name of a track (``event``), page or screen (``name``), or Amplitude event."""
    msg = event.message
    if not isinstance(msg, Mapping):
        return None
    for key in ("event", "name", "event_type"):
        value = msg.get(key)
        if isinstance(value, str):
            return value
    return None


def event_user(event: Event) -> tuple[str, ...]:
    """The ids naming who did it: userId and anonymousId (or Amplitude's user and device)."""
    msg = event.message
    if not isinstance(msg, Mapping):
        return ()
    keys = ("userId", "anonymousId", "user_id", "device_id")
    return tuple(str(msg[key]) for key in keys if msg.get(key) is not None)


class EventLog:
    """The last ``max_events`` events and their requests, with counts and live listeners."""

    def __init__(
        self,
        max_events: int = DEFAULT_MAX_EVENTS,
        max_kept_body_bytes: int = DEFAULT_MAX_KEPT_BODY_BYTES,
    ) -> None:
        """Keep at most ``max_events`` events and ``max_kept_body_bytes`` of request bodies."""
        if max_events <= 0 or max_kept_body_bytes < 0:
            raise ValueError("max_events must be positive and max_kept_body_bytes not negative")
        self.max_events = max_events
        self.max_kept_body_bytes = max_kept_body_bytes
        self._cond = threading.Condition()
        self._event_ids = itertools.count(1)
        self._request_ids = itertools.count(1)
        self._listeners: list[Listener] = []
        self._closed = False
        self.generation = 0  # bumped by clear(), so live streams can tell
        self._clear_window()
        self._clear_counts()

    def _clear_window(self) -> None:
        """Forget the kept events and requests (the lock is held, or we own the log)."""
        self._events: deque[Event] = deque(maxlen=self.max_events)
        self._requests: OrderedDict[int, KeptRequest] = OrderedDict()
        self._body_bytes = 0
        self._evicted = 0
        self._last_id = 0

    def _clear_counts(self) -> None:
        """Forget the counts since the last reset."""
        self._counts: dict[tuple[str, str], list[int]] = {}
        self._timeline: dict[int, int] = {}

    # -- recording

    def add_batch(
        self,
        record: RequestRecord,
        wire: bytes,
        batch: Iterable[Any],
        invalid: Iterable[tuple[Any, list[str]]],
        *,
        format: str | None = None,
    ) -> list[Event]:
        """Record the messages of one accepted batch request; tell the listeners; the events.

        ``format`` is the destination format (``segment``, ``amplitude``): by default the
        record's ``format`` field if it has one, else ``segment``.
        """
        if format is None:
            format = str(getattr(record, "format", None) or "segment")
        problems_of = {id(msg): tuple(problems) for msg, problems in invalid}
        now = time.time()
        with self._cond:
            request_id = next(self._request_ids)
            events = [
                Event(next(self._event_ids), now, request_id, format, msg,
                      problems_of.get(id(msg), ()))
                for msg in batch
            ]
            if not events:
                return events
            self._evicted += max(0, len(self._events) + len(events) - self.max_events)
            self._events.extend(events)
            self._last_id = events[-1].id
            self._keep_request(KeptRequest(
                request_id, now, record, wire, events[0].id, events[-1].id
            ))
            self._count(events, int(now))
            listeners = list(self._listeners)
            self._cond.notify_all()
        for listener in listeners:
            listener(events)
        return events

    def _keep_request(self, request: KeptRequest) -> None:
        """Keep ``request``; drop the oldest whose events are gone or whose bodies are too many."""
        self._requests[request.id] = request
        self._body_bytes += len(request.wire)
        oldest_event = self._events[0].id
        while self._requests:
            first = next(iter(self._requests.values()))
            if first.last_event >= oldest_event and self._body_bytes <= self.max_kept_body_bytes:
                break
            del self._requests[first.id]
            self._body_bytes -= len(first.wire)

    def _count(self, events: list[Event], second: int) -> None:
        """Count ``events`` per (type, name) and in this second of the timeline."""
        counts = self._counts
        for event in events:
            key = (event_type(event) or "?", event_name(event) or "")
            slot = counts.get(key)
            if slot is None:
                if len(counts) >= MAX_COUNTED_NAMES:
                    key = (key[0], OTHER_NAMES)
                slot = counts.setdefault(key, [0, 0])
            slot[0 if event.valid else 1] += 1
        timeline = self._timeline
        timeline[second] = timeline.get(second, 0) + len(events)
        if len(timeline) > TIMELINE_SECONDS + 60:
            for old in [s for s in timeline if s <= second - TIMELINE_SECONDS]:
                del timeline[old]

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(events)`` with each batch's events from now on (on the server thread)."""
        with self._cond:
            self._listeners.append(listener)

    def clear(self) -> int:
        """Forget the kept events and requests (counts stay); how many events were dropped."""
        with self._cond:
            dropped = len(self._events)
            self._clear_window()
            self.generation += 1
            self._cond.notify_all()
        return dropped

    def reset(self) -> None:
        """Forget the kept events, their requests and every count."""
        with self._cond:
            self._clear_window()
            self._clear_counts()
            self.generation += 1
            self._cond.notify_all()

    def open(self) -> None:
        """Let live streams wait again (after :meth:`close`)."""
        with self._cond:
            self._closed = False

    def close(self) -> None:
        """Wake every live stream and make it end (the collector is stopping)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # -- reading

    def events(self, query: EventQuery | None = None) -> list[Event]:
        """The kept events that match ``query``, newest first."""
        query = query or EventQuery()
        with self._cond:
            kept = list(self._events)
        found: list[Event] = []
        for event in reversed(kept):
            if event.id <= query.after:
                break
            if query.matches(event):
                found.append(event)
                if query.limit is not None and len(found) >= query.limit:
                    break
        return found

    def request(self, request_id: int) -> KeptRequest | None:
        """The kept request with this id, or None if it is gone (or never was)."""
        with self._cond:
            return self._requests.get(request_id)

    def wait_after(
        self, after: int, generation: int, timeout: float
    ) -> tuple[list[Event], int, bool]:
        """Events newer than ``after`` (oldest first), the generation, and whether still open.

        Blocks until there are some, the log was cleared (a new generation), the log closed
        or ``timeout`` ran out.
        """
        with self._cond:
            self._cond.wait_for(
                lambda: self._closed or self.generation != generation or self._last_id > after,
                timeout,
            )
            if self.generation != generation:
                return [], self.generation, not self._closed
            fresh = [event for event in self._events if event.id > after]
            return fresh, generation, not self._closed

    def summary(self) -> dict[tuple[str, str], tuple[int, int]]:
        """(valid, invalid) counts per (type, event name) since the last reset."""
        with self._cond:
            return {key: (valid, bad) for key, (valid, bad) in self._counts.items()}

    def stats(self) -> dict[str, Any]:
        """Counts per type and event name, and the window's size, for ``/stats``."""
        with self._cond:
            counts = dict(self._counts)
            kept, evicted, now = len(self._events), self._evicted, int(time.time())
            timeline = sorted(
                (second, n) for second, n in self._timeline.items()
                if second > now - TIMELINE_SECONDS
            )
        by_type: dict[str, int] = {}
        by_event: dict[str, int] = {}
        for (kind, name), (valid, bad) in counts.items():
            by_type[kind] = by_type.get(kind, 0) + valid + bad
            if name:
                by_event[name] = by_event.get(name, 0) + valid + bad
        return {
            "by_type": by_type,
            "by_event": by_event,
            "events": {
                "kept": kept,
                "max_events": self.max_events,
                "evicted": evicted,
                "per_second": [list(pair) for pair in timeline],
            },
        }
