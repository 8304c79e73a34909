"""The first step of the data's path: what a ``LogRecord`` says, as plain fields.

This runs on the listener's thread. It reads a record two ways: the stdlib way
(``log.info("Order Completed", extra={...})``: the extras are record attributes) and
the structlog way (``record.msg`` is the event dict). Which attributes are extras is
decided by python-json-logger's ``RESERVED_ATTRS`` together with the attributes of a
blank ``LogRecord`` made at import, so attributes added by newer Pythons (``taskName``
in 3.12) are never mistaken for event fields.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any, NamedTuple

from pythonjsonlogger.core import RESERVED_ATTRS as JSON_LOGGER_RESERVED
from pythonjsonlogger.core import merge_record_extra

from .context import merge_bound
from .errors import InvalidEvent

__all__ = [
    "BOUND_ATTR",
    "RESERVED_ATTRS",
    "AnyRecord",
    "QueuedRecord",
    "RecordEvent",
    "compact",
    "read_record",
    "structlog_fields",
]

#: The record attribute where ``emit`` leaves the fields bound with ``logbridge.bind``
#: (captured on the caller's thread, where the context variables live).
BOUND_ATTR = "_logbridge_bound"

#: Attributes every LogRecord carries; ``extra`` cannot set them (logging raises
#: KeyError at the call site), so no event field may need one of these names.
RESERVED_ATTRS: frozenset[str] = (
    frozenset(JSON_LOGGER_RESERVED)
    | frozenset(vars(logging.LogRecord("", logging.INFO, "", 0, "", (), None)))
    | {"message", "asctime"}
)

class RecordEvent(NamedTuple):
    """A record read as an event: its raw message word, its text and its fields."""

    word: str | None
    """The record's raw ``msg`` when it is a string (``"identify"``, ``"track"`` ...)."""
    text: str
    """The formatted message: the event name of an implicit track."""
    fields: dict[str, Any]
    """The ``extra`` keys (or the structlog event dict), in a new dict."""


def _extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The ``extra`` keys, as python-json-logger's ``merge_record_extra`` picks them.

    One comprehension, because it runs for every record. A key that is not a string
    (possible only through ``extra``) raises TypeError; callers decide what then.
    """
    return {
        key: value
        for key, value in record.__dict__.items()
        if key not in RESERVED_ATTRS and key[0] != "_"
    }


class QueuedRecord:
    """What ``emit`` queues for a plain ``LogRecord``: only what an event needs.

    A LogRecord carries some thirty attributes; while the listener catches up with a
    burst, holding this instead keeps the queue several times smaller.
    """

    __slots__ = ("args", "bound", "created", "extras", "lineno", "msg", "name")

    def __init__(
        self, record: logging.LogRecord, extras: dict[str, Any], bound: Mapping[str, Any] | None
    ) -> None:
        self.name = record.name
        self.msg = record.msg
        self.args = record.args
        self.created = record.created
        self.lineno = record.lineno
        self.extras = extras
        self.bound = bound

    def getMessage(self) -> str:
        """The message with its arguments merged, as ``LogRecord.getMessage`` does."""
        msg = str(self.msg)
        if self.args:
            msg = msg % self.args
        return msg


AnyRecord = logging.LogRecord | QueuedRecord


def compact(record: logging.LogRecord, bound: Mapping[str, Any] | None) -> QueuedRecord | None:
    """``record`` in compact form; None when it must travel whole.

    Records of another class (a custom ``getMessage``) and extras with keys that are not
    strings keep the LogRecord itself.
    """
    if type(record) is not logging.LogRecord:
        return None
    try:
        extras = _extra_fields(record)
    except (TypeError, IndexError, KeyError):
        return None
    return QueuedRecord(record, extras, bound)


#: Keys structlog's own processors write into an event dict (``add_log_level``,
#: ``add_log_level_number``, ``add_logger_name``): bookkeeping, not event properties.
STRUCTLOG_KEYS = frozenset({"level", "level_number", "logger"})


def structlog_fields(event_dict: Mapping[str, Any]) -> dict[str, Any]:
    """A structlog event dict's fields, without structlog's bookkeeping keys.

    ``timestamp`` stays, and becomes the message's timestamp, when it names its moment:
    epoch seconds (``TimeStamper()``), an ISO string with ``Z`` or an offset
    (``TimeStamper(fmt="iso")``), a datetime. A string without an offset or in a
    strftime format of its own is dropped for the record's own time, the same moment:
    ``TimeStamper(utc=False)`` writes local time without saying so.
    """
    fields = {key: value for key, value in event_dict.items() if key not in STRUCTLOG_KEYS}
    stamp = fields.get("timestamp")
    if isinstance(stamp, str) and not _names_its_zone(stamp):
        del fields["timestamp"]
    return fields


def _names_its_zone(text: str) -> bool:
    text = text.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        return dt.datetime.fromisoformat(text).tzinfo is not None
    except ValueError:
        return False


def read_record(record: AnyRecord) -> RecordEvent:
    """Read ``record`` into a :class:`RecordEvent`; raise InvalidEvent if unreadable."""
    msg = record.msg
    if type(record) is QueuedRecord:
        extras, bound = record.extras, record.bound
    else:
        try:
            extras = _extra_fields(record)  # type: ignore[arg-type]
        except (TypeError, IndexError, KeyError):
            extras = merge_record_extra(record, {}, reserved=RESERVED_ATTRS)  # type: ignore[arg-type]
        bound = record.__dict__.get(BOUND_ATTR)
    if isinstance(msg, Mapping):
        # structlog's ProcessorFormatter.wrap_for_formatter path: msg is the event dict.
        fields: dict[str, Any] = structlog_fields(msg)
        word = fields.pop("event", None)
        if word is None:
            raise InvalidEvent("the event dict has no 'event' key")
        text = word if isinstance(word, str) else str(word)
        fields.update(extras)
        fields = merge_bound(fields, bound)
        return RecordEvent(word if isinstance(word, str) else None, text, fields)
    try:
        text = record.getMessage()
    except Exception as exc:
        raise InvalidEvent(f"the log message could not be formatted: {exc!r}") from None
    return RecordEvent(msg if isinstance(msg, str) else None, text, merge_bound(extras, bound))
