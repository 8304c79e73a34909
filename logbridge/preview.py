"""A preview: a record as the spec message the handler would send, outside the pipeline.

The formatter and :mod:`logbridge.testing` need what ``Pipeline`` makes of a record,
without queueing or sending it. :func:`record_message` applies the same two steps
(:func:`~logbridge.record.read_record`, then :func:`~logbridge.message.build_message`)
with the same rules, and adds the bound fields itself when no ``AnalyticsHandler`` has
stamped them on the record yet (it must then run on the thread that logged).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from .context import capture as capture_bound
from .context import merge_bound
from .destinations.segment import SEGMENT_LIMITS
from .encoding import Encoder
from .errors import InvalidEvent
from .message import message_for
from .record import BOUND_ATTR, read_record

__all__ = ["encoded_message", "record_message", "wire_message"]


def record_message(
    record: logging.LogRecord, *, context: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """The message ``record`` becomes and the keys left out; raises InvalidEvent.

    ``context`` is the handler-level default context. A record no AnalyticsHandler has
    seen gets the fields bound in the calling context (``logbridge.bind``).
    """
    event = read_record(record)
    fields = event.fields
    if BOUND_ATTR not in record.__dict__:
        fields = merge_bound(fields, capture_bound())
    return message_for(event.word, event.text, fields, created=record.created, context=context)


def encoded_message(message: Mapping[str, Any]) -> bytes:
    """``message`` serialised as the handler sends it; InvalidEvent when over the limit."""
    data = Encoder().encode(message)
    limit = SEGMENT_LIMITS.max_message_bytes
    if len(data) > limit:
        raise InvalidEvent(
            f"{message.get('type')} message is {len(data)} bytes serialised, "
            f"over the {limit}-byte limit"
        )
    return data


def wire_message(message: Mapping[str, Any]) -> dict[str, Any]:
    """``message`` as the endpoint receives it (serialised and read back)."""
    decoded: dict[str, Any] = json.loads(encoded_message(message))
    return decoded
