"""Segment-spec messages become Amplitude events: pure functions, no I/O.

The mapping follows Segment's own Amplitude (Actions) destination, so users moving from
Segment get the events they had (segmentio/action-destinations,
``packages/destination-actions/src/destinations/amplitude``: ``event-schema.ts``, the
``Page Calls``/``Screen Calls`` presets in ``index.ts``, ``groupIdentifyUser``, ``mapUser``),
and the event shapes of Amplitude's own Python SDK (``amplitude-analytics``: ``identify``,
``set_group``, ``group_identify``):

=========  ===========================================================================
message    Amplitude
=========  ===========================================================================
track      ``event_type`` = event, ``event_properties`` = properties
page       ``event_type`` "Viewed {name}" ("Viewed Page" without a name)
screen     ``event_type`` "Viewed {name}" ("Viewed Screen" without a name)
identify   ``$identify`` with ``user_properties: {"$set": traits}``
group      ``$identify`` with ``groups`` and ``user_properties.$set`` {type: groupId},
           then ``$groupidentify`` with ``group_properties: {"$set": traits}``
alias      a User Mapping (``user_id`` = previousId, ``global_user_id`` = userId) when
           ``usermap`` is on; otherwise dropped as unsupported
=========  ===========================================================================

Ids: Amplitude drops ids under 5 characters (or ``min_id_length``) and refuses
placeholders; both are refused here, at the record, with the reason
(https://amplitude.com/docs/apis/analytics/http-v2, "Device IDs and User IDs minimum
length"). Strings are cut at 1,024 characters, Amplitude's limit (same page, "String
character limit"), as the official SDK does.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Mapping
from typing import Any, Final, TypeGuard

from .._version import __version__
from ..errors import InvalidEvent, UnsupportedEvent

__all__ = [
    "DEFAULT_MIN_ID_LENGTH",
    "MAX_STRING_LENGTH",
    "PLACEHOLDER_IDS",
    "USERMAP_KEY",
    "map_message",
]

#: Amplitude's default minimum length of ``user_id`` and ``device_id``.
DEFAULT_MIN_ID_LENGTH: Final = 5
#: Amplitude's limit on every string value, in characters.
MAX_STRING_LENGTH: Final = 1024
#: Ids Amplitude answers 400 for (http-v2, "Invalid IDs that result in a 400 error"),
#: compared case-insensitively.
PLACEHOLDER_IDS: Final = frozenset({
    "anonymous", "nil", "none", "null", "n/a", "na", "undefined", "unknown", '""',
    "00000000-0000-0000-0000-000000000000", "{}", "lmy47d", "0", "-1",
})
#: The key of an item that is a User Mapping, not an event (the only key it has).
USERMAP_KEY: Final = "$usermap"
LIBRARY: Final = f"logbridge/{__version__}"

#: Context fields copied to the event, with Segment's defaults (``event-schema.ts``): by
#: context key, ``(event field, key inside it or None, the type it must have)``.
_CONTEXT_FIELDS: Final[dict[str, tuple[tuple[str, str | None, type | tuple[type, ...]], ...]]] = {
    "ip": (("ip", None, str),),
    "userAgent": (("user_agent", None, str),),
    "app": (("app_version", "version", str),),
    "os": (("os_name", "name", str), ("os_version", "version", str)),
    "locale": (("language", None, str),),
    "device": (
        ("platform", "type", str),
        ("device_brand", "brand", str),
        ("device_manufacturer", "manufacturer", str),
        ("device_model", "model", str),
    ),
    "network": (("carrier", "carrier", str),),
    "location": (
        ("country", "country", str),
        ("region", "region", str),
        ("city", "city", str),
        ("location_lat", "latitude", (int, float)),
        ("location_lng", "longitude", (int, float)),
    ),
}
_NUMBER: Final = (int, float, decimal.Decimal)
#: Amplitude's limit on the nesting of properties (http-v2, ``event_properties``).
_MAX_DEPTH: Final = 40
#: Revenue fields lifted from the properties to the event, with the type each must have.
_REVENUE_FIELDS: Final[tuple[tuple[str, tuple[type, ...]], ...]] = (
    ("revenue", _NUMBER),
    ("price", _NUMBER),
    ("quantity", (int,)),
    ("productId", (str,)),
    ("revenueType", (str,)),
)


def map_message(
    message: Mapping[str, Any],
    *,
    group_type: str = "company",
    min_id_length: int | None = None,
    usermap: bool = False,
) -> list[dict[str, Any]]:
    """The Amplitude events (or the User Mapping) a spec message becomes.

    Raises :class:`InvalidEvent` for a message Amplitude would refuse, and
    :class:`UnsupportedEvent` for an alias without ``usermap``.
    """
    kind = message.get("type")
    min_length = DEFAULT_MIN_ID_LENGTH if min_id_length is None else min_id_length
    if kind == "alias":
        return [_usermap(message, usermap, min_length)]
    base = _base(message, min_length)
    if kind == "track":
        return [_event(str(message.get("event")), base, _props(message, "properties"))]
    if kind in ("page", "screen"):
        name = message.get("name")
        event_type = f"Viewed {name}" if name else f"Viewed {str(kind).title()}"
        return [_event(event_type, base, _props(message, "properties"))]
    if kind == "identify":
        event = {"event_type": "$identify", **base}
        traits = _clean(_props(message, "traits"))
        if traits:
            event["user_properties"] = {"$set": traits}
        return [event]
    if kind == "group":
        return _group(message, base, group_type)
    raise UnsupportedEvent(f"Amplitude has no equivalent of a {kind!r} message")


def _event(event_type: str, base: dict[str, Any], properties: Mapping[str, Any]) -> dict[str, Any]:
    """A track-like event: the type, the common fields, properties and lifted revenue."""
    event: dict[str, Any] = {"event_type": _clip(event_type), **base}
    cleaned = _clean(properties)
    if cleaned:
        event["event_properties"] = cleaned
        for name, types in _REVENUE_FIELDS:
            value = cleaned.get(name)
            if isinstance(value, types) and not isinstance(value, bool):
                event[name] = float(value) if isinstance(value, decimal.Decimal) else value
    return event


def _group(message: Mapping[str, Any], base: dict[str, Any], default_type: str) -> list[Any]:
    """A group: the user joins it (``$identify``), then its traits (``$groupidentify``)."""
    traits = dict(_props(message, "traits"))
    kind = traits.pop("group_type", None)
    if kind is None:
        kind = default_type
    if not isinstance(kind, str) or not kind:
        raise InvalidEvent("group_type must be a non-empty string")
    group_id = _clip(str(message.get("groupId")))
    groups = {kind: group_id}
    membership = {
        "event_type": "$identify",
        **base,
        "groups": groups,
        "user_properties": {"$set": dict(groups)},
    }
    properties: dict[str, Any] = {
        "event_type": "$groupidentify",
        **base,
        "groups": dict(groups),
        "group_properties": {"$set": _clean(traits)},
    }
    if "insert_id" in base:  # two events, two ids, the same on every retry
        properties["insert_id"] = base["insert_id"] + "-group"
    return [membership, properties]


def _usermap(message: Mapping[str, Any], enabled: bool, min_length: int) -> dict[str, Any]:
    """An alias as a User Mapping of previousId onto userId."""
    if not enabled:
        raise UnsupportedEvent(
            "Amplitude's event API has no alias "
            "(set amplitude_usermap=True to use its User Mapping API)"
        )
    previous = _checked_id("previousId", message.get("previousId"), min_length)
    user = _checked_id("userId", message.get("userId"), min_length)
    return {USERMAP_KEY: {"user_id": previous, "global_user_id": user}}


def _base(message: Mapping[str, Any], min_length: int) -> dict[str, Any]:
    """The fields every event of ``message`` has: ids, time, insert_id, context, session."""
    context = message.get("context")
    context = context if _is_mapping(context) else {}
    base: dict[str, Any] = {}
    user_id = _checked_id("userId", message.get("userId"), min_length)
    device = context.get("device")
    device_id = device.get("id") if _is_mapping(device) else None
    if device_id is not None:
        device_id = _checked_id("context.device.id", device_id, min_length)
    else:
        device_id = _checked_id("anonymousId", message.get("anonymousId"), min_length)
    if user_id is not None:
        base["user_id"] = user_id
    if device_id is not None:
        base["device_id"] = device_id
    if user_id is None and device_id is None:
        raise InvalidEvent("an Amplitude event needs user_id or device_id")
    timestamp = message.get("timestamp")
    if isinstance(timestamp, str):
        base["time"] = epoch_millis(timestamp)
    message_id = message.get("messageId")
    if isinstance(message_id, str) and message_id:
        base["insert_id"] = _clip(message_id)
    for key, part in context.items():  # a context holds a few keys: walk it once
        fields = _CONTEXT_FIELDS.get(key)
        if fields is None:
            continue
        for field, inner, types in fields:
            value = part if inner is None else part.get(inner) if _is_mapping(part) else None
            if isinstance(value, types) and not isinstance(value, bool):
                base[field] = _clip(value) if isinstance(value, str) else value
    session_id = _session_id(message.get("integrations"))
    if session_id is not None:
        base["session_id"] = session_id
    base["library"] = LIBRARY
    return base


def _checked_id(name: str, value: Any, min_length: int) -> str | None:
    """``value`` as an id Amplitude keeps, or None when absent; refuses the rest."""
    if value is None or value == "":
        return None
    text = str(value)
    if text.lower() in PLACEHOLDER_IDS:
        raise InvalidEvent(f"{name} {text!r} is a placeholder id that Amplitude refuses")
    if len(text) < min_length:
        raise InvalidEvent(
            f"{name} has {len(text)} characters, under Amplitude's minimum of {min_length} "
            "(set min_id_length to allow shorter ids)"
        )
    if len(text) > MAX_STRING_LENGTH:
        raise InvalidEvent(f"{name} is over Amplitude's {MAX_STRING_LENGTH}-character limit")
    return text


def epoch_millis(timestamp: str) -> int:
    """An ISO-8601 timestamp (as messages carry it) in milliseconds since the epoch."""
    text = timestamp[:-1] + "+00:00" if timestamp.endswith(("Z", "z")) else timestamp
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidEvent(f"timestamp {timestamp!r} is not an ISO-8601 date and time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return round(moment.timestamp() * 1000)


def _session_id(integrations: Any) -> int | None:
    """``integrations.Amplitude.session_id`` (or Segment's "Actions Amplitude"), in ms."""
    if not isinstance(integrations, Mapping):
        return None
    for key in ("Amplitude", "Actions Amplitude"):
        settings = integrations.get(key)
        if isinstance(settings, Mapping) and settings.get("session_id") is not None:
            value = settings["session_id"]
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if isinstance(value, dt.datetime):
                return epoch_millis(value.isoformat())
            if isinstance(value, str):
                return epoch_millis(value)
            raise InvalidEvent(
                f"integrations.{key}.session_id must be milliseconds since the epoch, "
                f"got {type(value).__name__}"
            )
    return None


def _props(message: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = message.get(key)
    return value if _is_mapping(value) else {}


def _is_mapping(value: Any) -> TypeGuard[Mapping[str, Any]]:
    """Whether ``value`` is a mapping: a dict at once, else the (slower) ABC check."""
    return isinstance(value, (dict, Mapping))


def _clean(properties: Mapping[str, Any]) -> dict[str, Any]:
    """A copy without None values (as the SDK sends them), strings cut to Amplitude's limit."""
    return {key: _clip(value) for key, value in properties.items() if value is not None}


def _clip(value: Any, depth: int = 0) -> Any:
    """``value`` with every string cut to :data:`MAX_STRING_LENGTH`; containers copied.

    Past Amplitude's 40 levels of nesting values are left to the encoder (which also
    breaks cycles).
    """
    if isinstance(value, str):
        return value if len(value) <= MAX_STRING_LENGTH else value[:MAX_STRING_LENGTH]
    if depth > _MAX_DEPTH:
        return value
    if _is_mapping(value):
        return {key: _clip(item, depth + 1) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clip(item, depth + 1) for item in value]
    return value
