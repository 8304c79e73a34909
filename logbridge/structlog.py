"""structlog without the stdlib: a processor that hands analytics events to a handler.

For structlog stacks that render straight to stdout or JSON (``PrintLoggerFactory``,
``WriteLoggerFactory``...), where no stdlib logger sees the events. (When structlog is
routed through stdlib logging, no processor is needed: see the README.)

:class:`AnalyticsProcessor` recognises the analytics events among the event dicts,

- by a **marker**: the key ``analytics`` bound to ``True`` (``structlog.get_logger(
  analytics=True)``, or ``log.bind(analytics=True)``); the marker is not a property;
- or by a **logger name**: the wrapped logger's ``name`` (a stdlib logger), or the
  event dict's ``logger`` key (``add_logger_name``, or bound), being ``analytics`` or a
  child of it (``logger_names``); that ``logger`` key is not a property either,

and passes a copy of each, as a ``LogRecord`` whose ``msg`` is the event dict, to an
AnalyticsHandler (or a logger): the ``event`` is the event name or the message type,
the other keys its fields, exactly as with the stdlib route. The event dict goes on
down the chain unchanged, or is dropped (``drop=True``). Put the processor after
``merge_contextvars`` (identity bound with ``bind_contextvars``) and before the
renderer. structlog's bookkeeping keys (``level``, ``level_number``, ``logger``) are
not properties, and ``timestamp`` is the message's (see
:func:`logbridge.record.structlog_fields`), so ``add_log_level``, ``add_logger_name``
and ``TimeStamper`` may come before it; processors that add other keys
(``CallsiteParameterAdder``...) belong after it.

structlog is an optional dependency (``logbridge[structlog]``): this module imports it
only to raise ``DropEvent``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, MutableMapping
from typing import Any

from .report import Reporter

__all__ = ["AnalyticsProcessor"]

#: structlog method names that are not logging level names.
_LEVELS = {
    "warn": logging.WARNING,
    "exception": logging.ERROR,
    "err": logging.ERROR,
    "fatal": logging.CRITICAL,
}


class AnalyticsProcessor:
    """A structlog processor sending analytics events to ``target``; never raises.

    ``target``: an :class:`~logbridge.AnalyticsHandler` (or any handler), a logger, or
    a logger name; its levels and filters apply. ``marker``: the key that marks an
    analytics event when bound to ``True`` (``None``: no marker). ``logger_names``:
    loggers whose events are analytics events. ``drop``: raise ``structlog.DropEvent``
    for analytics events, so they are sent but not rendered.
    """

    def __init__(
        self,
        target: logging.Handler | logging.Logger | str,
        *,
        marker: str | None = "analytics",
        logger_names: Iterable[str] = ("analytics",),
        drop: bool = False,
    ) -> None:
        self.target = logging.getLogger(target) if isinstance(target, str) else target
        self.marker = marker
        self.logger_names = tuple(logger_names)
        self.drop = drop
        self._drop_event: type[BaseException] | None = None
        if drop:
            from structlog import DropEvent

            self._drop_event = DropEvent
        self._reporter = Reporter()

    def __repr__(self) -> str:
        return (
            f"AnalyticsProcessor({self.target!r}, marker={self.marker!r}, "
            f"logger_names={self.logger_names!r}, drop={self.drop})"
        )

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        """Send ``event_dict`` if it is an analytics event; return it unchanged."""
        try:
            recognised = self._recognise(logger, event_dict)
        except Exception as exc:
            self._reporter.problem("structlog_read", f"AnalyticsProcessor failed: {exc!r}")
            return event_dict
        if recognised is None:
            return event_dict
        name, skip = recognised
        try:
            self._send(name, method_name, {k: v for k, v in event_dict.items() if k not in skip})
        except Exception as exc:
            self._reporter.problem("structlog", f"AnalyticsProcessor could not send: {exc!r}")
        if self._drop_event is not None:
            raise self._drop_event
        return event_dict

    def _recognise(
        self, logger: Any, event_dict: MutableMapping[str, Any]
    ) -> tuple[str | None, frozenset[str]] | None:
        """For an analytics event: its logger name (if known) and the keys to leave out."""
        skip: set[str] = set()
        if self.marker is not None and event_dict.get(self.marker) is True:
            skip.add(self.marker)
        logger_name = getattr(logger, "name", None)
        bound_name = event_dict.get("logger")
        if isinstance(logger_name, str) and self._is_analytics_logger(logger_name):
            return logger_name, frozenset(skip)
        if isinstance(bound_name, str) and self._is_analytics_logger(bound_name):
            return bound_name, frozenset(skip | {"logger"})
        return (None, frozenset(skip)) if skip else None

    def _send(self, name: str | None, method_name: str, fields: dict[str, Any]) -> None:
        """Hand ``fields`` to the target as a record, if its level lets it through."""
        target = self.target
        level = _LEVELS.get(method_name) or logging.getLevelName(method_name.upper())
        levelno = level if isinstance(level, int) else logging.INFO
        if name is None:
            name = target.name if isinstance(target, logging.Logger) else "structlog"
        record = logging.getLogRecordFactory()(name, levelno, "", 0, fields, None, None)
        if isinstance(target, logging.Logger):
            if target.isEnabledFor(levelno):
                target.handle(record)
        elif levelno >= target.level:
            target.handle(record)

    def _is_analytics_logger(self, name: str) -> bool:
        return any(name == n or name.startswith(n + ".") for n in self.logger_names)
