"""Capture analytics events in tests: no queue, no thread, no network.

::

    with logbridge.testing.capture() as events:
        checkout(cart)                      # application code that logs events
    events.assert_tracked("Order Completed", user_id="u1", revenue=9.99)

While a capture runs, every message that would be sent is recorded instead, as the
endpoint would receive it (serialised and read back). It works whether or not the
application configured an AnalyticsHandler:

- **An AnalyticsHandler is configured.** Its ``emit`` hands each record to the capture
  instead of its queue (the ``capture_hook`` of :mod:`logbridge.handler`), after the
  logger's and the handler's levels and filters, so exactly what would be sent is
  captured, with that handler's ``context``; nothing is sent. A record that reaches two
  AnalyticsHandlers is captured once.
- **No AnalyticsHandler is reachable** from the record's logger (an application whose
  tests do not configure logging). A capturing handler on the root logger and on the
  ``loggers`` given (default ``("analytics",)``) takes the records of those loggers
  (and their children) and the records of every :class:`~logbridge.Analytics` facade.
  Those of the ``loggers`` with no level of their own are set to ``level`` (INFO) for
  the block, since an unconfigured root logger would drop INFO records.

Records that cannot become a valid message are listed in :attr:`CapturedEvents.invalid`
instead (the handler would drop them). Events from every thread are captured.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple, overload

from . import handler as handler_module
from ._failures import failure_text
from .analytics import FACADE_ATTR
from .errors import InvalidEvent
from .guard import is_internal
from .handler import AnalyticsHandler
from .message import MESSAGE_TYPES
from .preview import record_message, wire_message
from .record import read_record

__all__ = ["CapturedEvents", "Rejected", "capture"]

Message = dict[str, Any]


class Rejected(NamedTuple):
    """A record captured as invalid: it would have been dropped, not sent."""

    reason: str
    """Why the record is not a valid message (the ``InvalidEvent`` reason)."""
    logger: str
    """The name of the logger it was logged on."""
    fields: dict[str, Any]
    """Its fields (the ``extra`` keys and the bound ones) and ``event``, the log message."""


class CapturedEvents(Sequence[Message]):
    """The messages captured so far, oldest first, with helpers to find and assert.

    A read-only sequence of message dicts in their spec form (``userId``,
    ``properties``...). Safe to read while other threads log.
    """

    def __init__(self, loggers: Sequence[str] = ("analytics",)) -> None:
        self._lock = threading.Condition()
        self._messages: list[Message] = []
        self._invalid: list[Rejected] = []
        self._loggers = tuple(loggers)
        #: Loggers outside ``loggers`` whose records looked like events, with no
        #: AnalyticsHandler to capture them: named in failures.
        self._missed: dict[str, int] = {}
        #: How a user changes ``loggers``, for the hint (the pytest plugin names its option).
        self.loggers_setting = "capture(loggers=...)"

    def __len__(self) -> int:
        with self._lock:
            return len(self._messages)

    @overload
    def __getitem__(self, index: int) -> Message: ...
    @overload
    def __getitem__(self, index: slice) -> list[Message]: ...
    def __getitem__(self, index: int | slice) -> Message | list[Message]:
        with self._lock:
            return self._messages[index]

    def __iter__(self) -> Iterator[Message]:
        return iter(self.messages)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, CapturedEvents):
            return self.messages == other.messages
        if isinstance(other, Sequence) and not isinstance(other, str):
            return self.messages == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<CapturedEvents {self.describe()}>"

    @property
    def messages(self) -> list[Message]:
        """A copy of the list of captured messages."""
        with self._lock:
            return list(self._messages)

    @property
    def invalid(self) -> list[Rejected]:
        """Records that would have been dropped as invalid, with the reason."""
        with self._lock:
            return list(self._invalid)

    def of_type(self, kind: str) -> list[Message]:
        """The messages of one type: ``"track"``, ``"identify"``, ``"page"``..."""
        return [m for m in self.messages if m.get("type") == kind]

    def named(self, name: str) -> list[Message]:
        """The tracks whose ``event`` is ``name`` and the pages/screens named ``name``."""
        return [
            m for m in self.messages
            if (m.get("type") == "track" and m.get("event") == name)
            or (m.get("type") in ("page", "screen") and m.get("name") == name)
        ]

    def for_user(self, user_id: str) -> list[Message]:
        """The messages whose ``userId`` is ``user_id``."""
        return [m for m in self.messages if m.get("userId") == str(user_id)]

    def for_anonymous(self, anonymous_id: str) -> list[Message]:
        """The messages whose ``anonymousId`` is ``anonymous_id``."""
        return [m for m in self.messages if m.get("anonymousId") == str(anonymous_id)]

    def event_names(self) -> list[str]:
        """The ``event`` of each track, in order."""
        return [m["event"] for m in self.of_type("track")]

    def assert_tracked(
        self,
        event: str,
        *,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        **properties: Any,
    ) -> Message:
        """The one track of ``event`` (for that user, with those properties); else fail.

        ``properties`` must be among the track's properties with equal values (as
        received: a ``Decimal`` is compared as the float it is sent as). Fails with
        the list of captured events when none or more than one match.
        """
        __tracebackhide__ = True
        tracks = [m for m in self.of_type("track") if m.get("event") == event]
        return self._one(f"track {event!r}", tracks, user_id, anonymous_id, "properties",
                         properties)

    def assert_not_tracked(self, event: str) -> None:
        """Fail if any track of ``event`` was captured."""
        __tracebackhide__ = True
        found = [m for m in self.of_type("track") if m.get("event") == event]
        if found:
            raise self._failure(f"{event!r} was tracked {len(found)} time(s)")

    def assert_identified(self, user_id: str, **traits: Any) -> Message:
        """The one identify of ``user_id`` with those ``traits`` (a subset); else fail."""
        __tracebackhide__ = True
        return self._one(f"identify of {user_id!r}", self.of_type("identify"), user_id, None,
                         "traits", traits)

    def assert_no_invalid(self) -> None:
        """Fail if any record was captured as invalid (it would have been dropped)."""
        __tracebackhide__ = True
        invalid = self.invalid
        if invalid:
            raise self._failure(f"{len(invalid)} invalid analytics record(s)")

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until ``count`` messages were captured (from other threads); False on timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: len(self._messages) >= count, timeout)

    def clear(self) -> None:
        """Forget what was captured so far."""
        with self._lock:
            self._messages.clear()
            self._invalid.clear()
            self._missed.clear()

    def describe(self) -> str:
        """One short line per captured message (type, user and event or name)."""
        lines = []
        for m in self.messages:
            who = m.get("userId") or f"anon:{m.get('anonymousId')}"
            what = m.get("event") or m.get("name") or m.get("groupId") or m.get("previousId")
            lines.append(f"{m.get('type')} {who} {what or ''}".rstrip())
        return "; ".join(lines) or "no events"

    def _one(
        self,
        what: str,
        candidates: list[Message],
        user_id: str | None,
        anonymous_id: str | None,
        bag: str,
        expected: Mapping[str, Any],
    ) -> Message:
        __tracebackhide__ = True
        matches = [
            m for m in candidates
            if (user_id is None or m.get("userId") == str(user_id))
            and (anonymous_id is None or m.get("anonymousId") == str(anonymous_id))
            and _contains(m.get(bag) or {}, expected)
        ]
        if len(matches) == 1:
            return matches[0]
        wanted = what + (f" for user {user_id!r}" if user_id is not None else "")
        wanted += f" with {bag} {dict(expected)}" if expected else ""
        found = "none" if not matches else f"{len(matches)}"
        raise self._failure(f"expected one {wanted}, found {found}")

    def _failure(self, headline: str) -> AssertionError:
        """``headline``, then every captured event with its fields, the invalid, a hint."""
        with self._lock:
            missed = sorted(self._missed)
        text = failure_text(
            headline, self.messages, [(r.logger, r.reason, r.fields) for r in self.invalid],
            missed=missed, where=f"{self.loggers_setting} ({list(self._loggers)})",
        )
        return AssertionError(text)

    def _add(self, message: Message | None, rejected: Rejected | None) -> None:
        with self._lock:
            if message is not None:
                self._messages.append(message)
            if rejected is not None:
                self._invalid.append(rejected)
            self._lock.notify_all()

    def _miss(self, logger_name: str) -> None:
        with self._lock:
            if logger_name in self._missed or len(self._missed) < 20:
                self._missed[logger_name] = self._missed.get(logger_name, 0) + 1


def _contains(actual: Mapping[str, Any], expected: Mapping[str, Any]) -> bool:
    return all(key in actual and actual[key] == value for key, value in expected.items())


class _Capture:
    """One active capture: its events, the records already taken and what to restore."""

    def __init__(self, events: CapturedEvents, loggers: tuple[str, ...]) -> None:
        self.events = events
        self.loggers = loggers
        self.lock = threading.Lock()
        self.seen: dict[int, logging.LogRecord] = {}  # held, so ids stay unique

    def take(self, record: logging.LogRecord, context: Mapping[str, Any] | None) -> None:
        with self.lock:
            if id(record) in self.seen:
                return
            self.seen[id(record)] = record
        try:
            message, _ = record_message(record, context=context)
            self.events._add(wire_message(message), None)
        except InvalidEvent as exc:
            self.events._add(None, Rejected(exc.reason, record.name, _fields_of(record)))
        except Exception as exc:  # what the pipeline would report as unreadable
            reason = f"the record could not be read: {exc!r}"
            self.events._add(None, Rejected(reason, record.name, {"event": repr(record.msg)}))

    def wants(self, record: logging.LogRecord) -> bool:
        """Whether the fallback handler takes ``record`` (no AnalyticsHandler will)."""
        name = record.name
        if is_internal(name):
            return False
        if not record.__dict__.get(FACADE_ATTR) and not any(
            name == prefix or name.startswith(prefix + ".") for prefix in self.loggers
        ):
            if _looks_like_an_event(record) and not _reaches_analytics_handler(
                logging.getLogger(name)
            ):
                self.events._miss(name)
            return False
        return not _reaches_analytics_handler(logging.getLogger(name))


#: Keys that make a record on another logger look like an analytics event.
_IDENTITY_KEYS = ("user_id", "userId", "anonymous_id", "anonymousId")


def _looks_like_an_event(record: logging.LogRecord) -> bool:
    """Whether ``record`` (on a logger outside the capture's) was probably meant as one."""
    msg = record.msg
    if isinstance(msg, Mapping) or (isinstance(msg, str) and msg in MESSAGE_TYPES):
        return True
    return any(key in record.__dict__ for key in _IDENTITY_KEYS)


def _reaches_analytics_handler(logger: logging.Logger) -> bool:
    """Whether a record of ``logger`` reaches an AnalyticsHandler (whose emit captures it)."""
    current: logging.Logger | None = logger
    while current is not None:
        if any(isinstance(h, AnalyticsHandler) for h in current.handlers):
            return True
        current = current.parent if current.propagate else None
    return False


def _fields_of(record: logging.LogRecord) -> dict[str, Any]:
    try:
        fields = dict(read_record(record).fields)
    except Exception:
        fields = {}
    fields.setdefault("event", record.msg)
    return fields


_ACTIVE: list[_Capture] = []
_ACTIVE_LOCK = threading.Lock()


def _hook(handler: AnalyticsHandler, record: logging.LogRecord) -> None:
    """``AnalyticsHandler.emit`` while a capture runs: record instead of queueing."""
    for active in list(_ACTIVE):
        active.take(record, handler.options.context)


class _CaptureHandler(logging.Handler):
    """Takes analytics records that reach no AnalyticsHandler (see the module docs)."""

    def __init__(self, active: _Capture) -> None:
        super().__init__(logging.NOTSET)
        self.active = active

    def emit(self, record: logging.LogRecord) -> None:
        """Capture ``record`` if it is an analytics record nothing else will capture."""
        try:
            if self.active.wants(record):
                self.active.take(record, None)
        except Exception:
            self.handleError(record)


@contextmanager
def capture(
    *, loggers: Iterable[str] = ("analytics",), level: int | None = logging.INFO
) -> Iterator[CapturedEvents]:
    """Capture every analytics message logged during the block, sending none.

    ``loggers``: the loggers whose records are analytics events when no
    AnalyticsHandler is configured for them (facade records always are). ``level``:
    given for the block to those of them with no level of their own (``None``: leave
    levels alone). Yields a :class:`CapturedEvents`; nestable.
    """
    names = tuple(loggers)
    events = CapturedEvents(names)
    active = _Capture(events, names)
    fallback = _CaptureHandler(active)
    targets = [logging.getLogger()] + [logging.getLogger(name) for name in names]
    restore: list[Callable[[], None]] = []
    for logger in targets:
        logger.addHandler(fallback)
        restore.append(functools.partial(logger.removeHandler, fallback))
        if level is not None and logger.name in names and logger.level == logging.NOTSET:
            logger.setLevel(level)
            restore.append(functools.partial(logger.setLevel, logging.NOTSET))
    with _ACTIVE_LOCK:
        _ACTIVE.append(active)
        handler_module.capture_hook = _hook
    try:
        yield events
    finally:
        with _ACTIVE_LOCK:
            _ACTIVE.remove(active)
            if not _ACTIVE:
                handler_module.capture_hook = None
        for undo in reversed(restore):
            undo()
