"""The loop guard: records that must never become events.

logbridge's own reports, the HTTP stack it sends with, and whatever runs on its own
threads (user callbacks included), so a handler on the root logger cannot feed on itself.
"""

from __future__ import annotations

import threading

__all__ = ["INTERNAL_LOGGERS", "OWN_THREADS", "is_internal", "own_thread"]

#: Loggers whose records are never turned into events: logbridge's own reports and the
#: HTTP stack it sends with, so a handler on the root logger cannot feed on itself.
INTERNAL_LOGGERS: tuple[str, ...] = (
    "logbridge",
    "urllib3",
    "requests",
    "charset_normalizer",
    "chardet",
)
_INTERNAL_PREFIXES = tuple(name + "." for name in INTERNAL_LOGGERS)
_INTERNAL_NAMES = frozenset(INTERNAL_LOGGERS)


#: The identities of logbridge's own threads (listeners, senders), of every handler: what
#: they log (user callbacks included) is never an event.
OWN_THREADS: set[int] = set()

_internal_by_name: dict[str, bool] = {}


def is_internal(logger_name: str) -> bool:
    """True for records of logbridge itself and of the HTTP libraries it uses."""
    known = _internal_by_name.get(logger_name)
    if known is None:
        known = logger_name in _INTERNAL_NAMES or logger_name.startswith(_INTERNAL_PREFIXES)
        if len(_internal_by_name) < 10_000:  # logger names are few; stay bounded anyway
            _internal_by_name[logger_name] = known
    return known


class own_thread:
    """Marks the running thread as logbridge's for the duration of a ``with`` block."""

    __slots__ = ("_ident",)

    def __enter__(self) -> None:
        self._ident = threading.get_ident()
        OWN_THREADS.add(self._ident)

    def __exit__(self, *exc_info: object) -> None:
        OWN_THREADS.discard(self._ident)
