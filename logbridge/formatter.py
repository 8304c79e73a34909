"""``AnalyticsFormatter``: a record as the JSON message it becomes, for any handler.

Built on python-json-logger's ``JsonFormatter``: attach it to a ``FileHandler`` or a
``StreamHandler`` to keep a JSON-lines archive of what is sent, or to see events on
stdout in development. Each line is the message the AnalyticsHandler builds from the
same record, serialised the same way (same keys, order and value conversions), except
for what a formatter cannot know:

- ``messageId``: the handler draws a fresh one when the call gives none, so the line
  has its own. Calls that pass ``message_id`` (the :class:`~logbridge.Analytics` facade
  always does) have the same one in both.
- the handler's ``context`` option: pass the same mapping as ``context=`` here.
- the bound fields (``logbridge.bind``) are those of the thread that formats, so the
  handler must format on the logging thread (not behind a ``QueueHandler``), unless
  an AnalyticsHandler earlier on the logger has already stamped them on the record.

A record that cannot become a message is written as
``{"invalid": reason, "logger": name, "event": message, "fields": {...}}``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from .encoding import Encoder, to_jsonable
from .errors import InvalidEvent
from .options import plain
from .preview import record_message
from .record import read_record

__all__ = ["AnalyticsFormatter"]


class AnalyticsFormatter(JsonFormatter):
    """Formats a record as the Segment-spec message the AnalyticsHandler would send.

    ``context``: the handler's default context, to mirror its ``context`` option.
    ``prefix`` and ``json_indent`` are python-json-logger's (indent only for reading:
    lines are compact by default, exactly as sent). In ``dictConfig``::

        "formatters": {"analytics_json": {"()": "logbridge.AnalyticsFormatter"}}

    ``fmt``, ``datefmt``, ``style``, ``validate`` and ``defaults`` are accepted (the
    ``class`` forms of dictConfig and fileConfig pass them) and ignored: the message's
    shape is fixed.
    """

    def __init__(
        self,
        fmt: str | None = None,
        datefmt: str | None = None,
        style: str = "%",
        validate: bool = True,
        *,
        defaults: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        prefix: str = "",
        json_indent: int | str | None = None,
    ) -> None:
        super().__init__(prefix=prefix, json_indent=json_indent, json_ensure_ascii=False)
        self.context: dict[str, Any] = plain(context) if context is not None else {}

    def format(self, record: logging.LogRecord) -> str:
        """The record's message as one JSON line; never raises."""
        try:
            return str(super().format(record))
        except Exception:  # the base class formats the text first (%-args that do not fit)
            log_data: dict[str, Any] = {}
            self.add_fields(log_data, record, {})
            return str(self.serialize_log_record(log_data))

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        """Fill ``log_data`` with the record's message (or the reason it has none)."""
        try:
            message, _ = record_message(record, context=self.context)
        except InvalidEvent as exc:
            log_data.update(_invalid(record, exc.reason))
        except Exception as exc:
            log_data.update(_invalid(record, f"the record could not be read: {exc!r}"))
        else:
            log_data.update(message)

    def jsonify_log_record(self, log_data: dict[str, Any]) -> str:
        """The JSON text: the handler's own encoding, so values convert as they are sent."""
        if self.json_indent is None:
            return Encoder().encode(log_data).decode("utf-8")
        cleaned, _ = to_jsonable(log_data)
        return json.dumps(cleaned, ensure_ascii=False, indent=self.json_indent)


def _invalid(record: logging.LogRecord, reason: str) -> dict[str, Any]:
    try:
        event = read_record(record)
        text, fields = event.text, event.fields
    except Exception:
        text, fields = repr(record.msg), {}
    return {"invalid": reason, "logger": record.name, "event": text, "fields": fields}
