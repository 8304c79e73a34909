"""Amplitude's checks of one event: a pure function returning its problems.

From the HTTP V2 API page (amplitude-docs ``http-v2.md``): ``event_type`` and ``user_id``
or ``device_id`` are required; ids are strings of at least 5 characters (or
``options.min_id_length``) and not one of the placeholders listed under "Invalid IDs that
result in a 400 error"; ``time`` is milliseconds since the epoch ("Any other format ...
results in a 400"); the property fields are objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

__all__ = ["DEFAULT_MIN_ID_LENGTH", "PLACEHOLDER_IDS", "validate_event"]

DEFAULT_MIN_ID_LENGTH: Final = 5
#: Times before this many ms since the epoch (1973) are seconds sent as milliseconds.
_MIN_TIME_MS: Final = 100_000_000_000
PLACEHOLDER_IDS: Final = frozenset({
    "anonymous", "nil", "none", "null", "n/a", "na", "undefined", "unknown", '""',
    "00000000-0000-0000-0000-000000000000", "{}", "lmy47d", "0", "-1",
})
_OBJECT_FIELDS: Final = ("event_properties", "user_properties", "groups", "group_properties")
_INT_FIELDS: Final = ("session_id", "event_id", "quantity")


def validate_event(event: Any, min_length: int) -> list[tuple[str, str, str]]:
    """The problems of one event: ``(kind, field, text)``, kind invalid/missing/short."""
    if not isinstance(event, Mapping):
        return [("invalid", "event", "an event must be a JSON object")]
    problems: list[tuple[str, str, str]] = []
    event_type = event.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        kind = "missing" if event_type is None else "invalid"
        problems.append((kind, "event_type", "event_type must be a non-empty string"))
    ids = 0
    for field in ("user_id", "device_id"):
        value = event.get(field)
        if value is None:
            continue
        if not isinstance(value, str):
            problems.append(("invalid", field, f"{field} must be a string"))
        elif value.lower() in PLACEHOLDER_IDS:
            problems.append(("invalid", field, f"{field} {value!r} is a placeholder"))
        elif len(value) < min_length:
            problems.append(("short", field, f"{field} is under {min_length} characters"))
        else:
            ids += 1
    # A $groupidentify is about a group: the SDK sends it without a user when given none.
    if ids == 0 and not problems and event_type != "$groupidentify":
        problems.append(("missing", "user_id", "an event needs user_id or device_id"))
    value = event.get("time")
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or value < _MIN_TIME_MS
    ):
        problems.append(("invalid", "time", "time must be milliseconds since the epoch"))
    for field in _OBJECT_FIELDS:
        if field in event and not isinstance(event[field], Mapping):
            problems.append(("invalid", field, f"{field} must be an object"))
    for field in _INT_FIELDS:
        value = event.get(field)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            problems.append(("invalid", field, f"{field} must be an integer"))
    if "insert_id" in event and not isinstance(event["insert_id"], str):
        problems.append(("invalid", "insert_id", "insert_id must be a string"))
    return problems
