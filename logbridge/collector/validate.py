"""Segment-spec validation of one message: a pure function returning its problems."""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["MAX_MESSAGE_BYTES", "MESSAGE_TYPES", "validate_message"]

MESSAGE_TYPES: Final = ("identify", "track", "page", "screen", "group", "alias")

#: Segment's per-message size limit, in bytes of compact JSON.
MAX_MESSAGE_BYTES: Final = 32_768

#: snake_case spellings of spec fields that are a mistake at the top level of a message.
_SNAKE_CASE: Final = {
    "user_id": "userId",
    "anonymous_id": "anonymousId",
    "message_id": "messageId",
    "group_id": "groupId",
    "previous_id": "previousId",
    "sent_at": "sentAt",
    "received_at": "receivedAt",
    "original_timestamp": "originalTimestamp",
}

_OBJECT_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "identify": ("traits",),
    "track": ("properties",),
    "page": ("properties",),
    "screen": ("properties",),
    "group": ("traits",),
    "alias": (),
}

_TIMESTAMP: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?"
    r"(?:(Z)|([+-])(\d{2}):?(\d{2}))",
    re.ASCII | re.IGNORECASE,
)


def validate_message(
    msg: Mapping[str, Any], *, max_message_bytes: int = MAX_MESSAGE_BYTES
) -> list[str]:
    """The problems of one message against the Segment spec; an empty list means valid."""
    problems: list[str] = []
    kind = msg.get("type")
    if kind is None:
        problems.append("missing type")
    elif kind not in MESSAGE_TYPES:
        problems.append(f"unknown type {kind!r} (expected one of {', '.join(MESSAGE_TYPES)})")

    # A null id counts as absent, as at Segment (analytics.js sends ``"userId": null``).
    if kind == "alias":
        _require_string(msg, "previousId", problems)
        _require_string(msg, "userId", problems)
    elif msg.get("userId") is None and msg.get("anonymousId") is None:
        problems.append("missing userId or anonymousId")
    for key in ("anonymousId",) if kind == "alias" else ("userId", "anonymousId"):
        _check_string(msg, key, problems)
    if kind == "track":
        _require_string(msg, "event", problems)
    elif kind == "group":
        _require_string(msg, "groupId", problems)

    _require_string(msg, "messageId", problems)
    _check_timestamp(msg, problems)

    object_fields = _OBJECT_FIELDS.get(kind, ()) if isinstance(kind, str) else ()
    for key in (*object_fields, "context", "integrations"):
        if key in msg and not isinstance(msg[key], Mapping):
            problems.append(f"{key} must be an object, got {_json_type(msg[key])}")
    if kind in ("page", "screen"):
        for key in ("name", "category"):
            if key in msg and not isinstance(msg[key], str):
                problems.append(f"{key} must be a string, got {_json_type(msg[key])}")

    if not _SNAKE_CASE.keys().isdisjoint(msg.keys()):
        for wrong, right in _SNAKE_CASE.items():
            if wrong in msg:
                problems.append(f"{wrong} is not a spec field: use {right}")

    _check_size(msg, max_message_bytes, problems)
    return problems


def _require_string(msg: Mapping[str, Any], key: str, problems: list[str]) -> None:
    """Add a problem unless ``msg[key]`` is present, not null and a non-empty string."""
    if msg.get(key) is None:
        problems.append(f"missing {key}")
    else:
        _check_string(msg, key, problems)


def _check_string(msg: Mapping[str, Any], key: str, problems: list[str]) -> None:
    """Add a problem if ``msg[key]`` is present (not null) but not a non-empty string."""
    value = msg.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        problems.append(f"{key} must be a non-empty string, got {_describe(value)}")


def _check_timestamp(msg: Mapping[str, Any], problems: list[str]) -> None:
    """Add a problem unless ``timestamp`` is an ISO-8601 date-time with a UTC offset or Z."""
    value = msg.get("timestamp")
    if value is None:
        problems.append("missing timestamp")
    elif not isinstance(value, str) or not _is_iso_timestamp(value):
        problems.append(
            f"timestamp must be ISO-8601 with a UTC offset or Z, got {_describe(value)}"
        )


@functools.lru_cache(maxsize=4096)
def _is_iso_timestamp(value: str) -> bool:
    """Whether ``value`` is a real ISO-8601 date-time (``T`` separator) with an offset."""
    match = _TIMESTAMP.fullmatch(value)
    if match is None:
        return False
    year, month, day, hour, minute, second, _frac, _z, _sign, off_h, off_m = match.groups()
    try:
        dt.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0))
    except ValueError:
        return False
    return off_h is None or (int(off_h) < 24 and int(off_m) < 60)


def _check_size(msg: Mapping[str, Any], limit: int, problems: list[str]) -> None:
    """Add a problem if the message, re-serialised compactly, is over ``limit`` bytes."""
    try:
        text = json.dumps(msg, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        problems.append(f"message is not serialisable as JSON: {exc}")
        return
    # Cheap bounds first: UTF-8 takes 1 to 4 bytes per character.
    if len(text) <= limit // 4:
        return
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limit:
        problems.append(f"message is {size} bytes, over the {limit}-byte limit")


def _json_type(value: object) -> str:
    """The JSON type name of a decoded value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _describe(value: object) -> str:
    """A short description of a bad value: its JSON type, or the empty string."""
    return "an empty string" if value == "" else _json_type(value)
