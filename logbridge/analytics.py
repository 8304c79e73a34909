"""The typed facade: one method per Segment call, checked before it is logged.

``Analytics`` is a thin layer over a logger. Each method takes the spec's fields as
typed keyword arguments, builds the message the handler would build (with the fields
bound by ``logbridge.bind`` underneath) and raises :class:`~logbridge.InvalidEvent`
at once when that fails, as the Go SDK's ``Enqueue`` returns an error. A valid call is
then logged like any other record, so levels, filters and handlers still decide where
it goes::

    analytics = logbridge.Analytics("analytics")
    analytics.track("Order Completed", user_id="u1", properties={"revenue": 9.99})
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from .context import capture as capture_bound
from .context import merge_bound
from .handler import AnalyticsHandler
from .handler import flush as flush_all
from .listener import AnalyticsListener
from .message import MESSAGE_TYPES, build_message
from .preview import encoded_message

__all__ = ["FACADE_ATTR", "Analytics", "analytics_flushers"]

#: A record attribute the facade sets (skipped as an event field: it starts with ``_``),
#: so :func:`logbridge.testing.capture` knows its records whatever the logger's name.
FACADE_ATTR = "_logbridge_facade"

Timestamp = dt.datetime | str
"""A datetime (naive means UTC) or an ISO-8601 string."""


class Analytics:
    """Segment's calls as typed methods that log through ``logger``.

    ``logger`` is a :class:`logging.Logger` or a logger name (default ``"analytics"``);
    ``level`` the level of the records (default INFO). Every method returns the
    message's ``messageId`` (generated unless given), the same one every handler sees.
    Raises :class:`~logbridge.InvalidEvent` (a ``ValueError``) for a call the spec
    rejects, such as one with neither ``user_id`` nor ``anonymous_id`` given or bound.
    """

    __slots__ = ("level", "logger")

    def __init__(self, logger: logging.Logger | str = "analytics", *, level: int = logging.INFO):
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger
        self.level = level

    def __repr__(self) -> str:
        return f"<Analytics {self.logger.name!r} ({logging.getLevelName(self.level)})>"

    def track(
        self,
        event: str,
        *,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        properties: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        integrations: Mapping[str, Any] | None = None,
        timestamp: Timestamp | None = None,
        message_id: str | None = None,
    ) -> str:
        """Record that a user did ``event`` (``"Order Completed"``), with ``properties``."""
        fields = _fields(
            user_id=user_id, anonymous_id=anonymous_id, properties=properties, context=context,
            integrations=integrations, timestamp=timestamp, message_id=message_id,
        )
        if event in MESSAGE_TYPES:  # "identify" as an event name: say it is the event
            return self._log("track", {**fields, "event": event}, word="track")
        return self._log("track", fields, word=event, event=event)

    def identify(
        self,
        user_id: str | None = None,
        *,
        anonymous_id: str | None = None,
        traits: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        integrations: Mapping[str, Any] | None = None,
        timestamp: Timestamp | None = None,
        message_id: str | None = None,
    ) -> str:
        """Tie a user to their ``traits`` (email, name, plan...)."""
        fields = _fields(
            user_id=user_id, anonymous_id=anonymous_id, traits=traits, context=context,
            integrations=integrations, timestamp=timestamp, message_id=message_id,
        )
        return self._log("identify", fields)

    def page(
        self,
        name: str | None = None,
        *,
        category: str | None = None,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        properties: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        integrations: Mapping[str, Any] | None = None,
        timestamp: Timestamp | None = None,
        message_id: str | None = None,
    ) -> str:
        """Record a web page view: its ``name``, ``category`` and ``properties`` (url...)."""
        fields = _fields(
            page_name=name, category=category, user_id=user_id, anonymous_id=anonymous_id,
            properties=properties, context=context, integrations=integrations,
            timestamp=timestamp, message_id=message_id,
        )
        return self._log("page", fields)

    def screen(
        self,
        name: str | None = None,
        *,
        category: str | None = None,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        properties: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        integrations: Mapping[str, Any] | None = None,
        timestamp: Timestamp | None = None,
        message_id: str | None = None,
    ) -> str:
        """Record a mobile app screen view: its ``name``, ``category`` and ``properties``."""
        fields = _fields(
            screen_name=name, category=category, user_id=user_id, anonymous_id=anonymous_id,
            properties=properties, context=context, integrations=integrations,
            timestamp=timestamp, message_id=message_id,
        )
        return self._log("screen", fields)

    def group(
        self,
        group_id: str,
        *,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        traits: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        integrations: Mapping[str, Any] | None = None,
        timestamp: Timestamp | None = None,
        message_id: str | None = None,
    ) -> str:
        """Tie a user to the group ``group_id`` (a company, account...), with its ``traits``."""
        fields = _fields(
            group_id=group_id, user_id=user_id, anonymous_id=anonymous_id, traits=traits,
            context=context, integrations=integrations, timestamp=timestamp,
            message_id=message_id,
        )
        return self._log("group", fields)

    def alias(
        self,
        previous_id: str,
        *,
        user_id: str | None = None,
        context: Mapping[str, Any] | None = None,
        integrations: Mapping[str, Any] | None = None,
        timestamp: Timestamp | None = None,
        message_id: str | None = None,
    ) -> str:
        """Merge the identity ``previous_id`` into ``user_id`` (given or bound)."""
        fields = _fields(
            previous_id=previous_id, user_id=user_id, context=context,
            integrations=integrations, timestamp=timestamp, message_id=message_id,
        )
        return self._log("alias", fields)

    def flush(self, timeout: float | None = None) -> bool:
        """Deliver what the handlers reachable from the logger hold; False on timeout.

        Reachable means what a record of this logger reaches: its handlers and, while
        ``propagate`` is true, its ancestors' ones. ``timeout`` (default: each
        handler's ``shutdown_timeout``) bounds the whole call. With no handler reachable,
        flushes every open AnalyticsHandler, like :func:`logbridge.flush`.
        """
        flushers = list(analytics_flushers(self.logger))
        if not flushers:
            return flush_all(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        results = []
        for flush_one in flushers:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            results.append(flush_one(remaining))
        return all(results)

    def _log(self, kind: str, fields: dict[str, Any], *, word: str | None = None,
             event: str | None = None) -> str:
        message_id = fields.setdefault("message_id", str(uuid.uuid4()))
        checked = merge_bound(fields, capture_bound())
        message, _ = build_message(kind, checked, event=event, created=time.time())
        encoded_message(message)  # raises InvalidEvent past the per-message size limit
        extra = {**fields, FACADE_ATTR: True}
        self.logger.log(self.level, word or kind, extra=extra, stacklevel=3)
        return str(message_id)


def _fields(**given: Any) -> dict[str, Any]:
    """The keyword arguments that were given (None means not given)."""
    return {key: value for key, value in given.items() if value is not None}


def analytics_flushers(logger: logging.Logger) -> Iterator[Any]:
    """The ``flush(timeout)`` of each AnalyticsHandler/-Listener a record of ``logger`` reaches.

    A stdlib ``QueueHandler`` whose listener is an :class:`AnalyticsListener` (the
    ``dictConfig`` queue form) counts too.
    """
    seen: set[int] = set()
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if id(handler) in seen:
                continue
            seen.add(id(handler))
            if isinstance(handler, AnalyticsHandler):
                yield handler.flush
            elif isinstance(getattr(handler, "listener", None), AnalyticsListener):
                yield handler.listener.flush  # type: ignore[attr-defined]
        current = current.parent if current.propagate else None
