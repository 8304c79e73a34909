"""Fields become a Segment-spec message: key names, placement and validation.

Pure functions, no I/O. The mapping, for ``log.info(word_or_event, extra=fields)``:

- ``word`` is one of :data:`MESSAGE_TYPES`: a message of that type ("type style").
  Otherwise an implicit ``track`` whose ``event`` is the log message ("event-name style").
- Recognised keys, snake_case or camelCase, become the spec's top-level fields (see
  :data:`FIELD_NAMES`); every other key goes into ``properties`` (track, page, screen)
  or ``traits`` (identify, group), merged over an explicit ``properties``/``traits``
  dict. ``alias`` has neither, so other keys on an alias are left out and counted.
- Validation follows the spec: ``userId`` or ``anonymousId`` on every type, ``event``
  on track, ``groupId`` on group, ``previousId`` and ``userId`` on alias.
"""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid
from collections.abc import Mapping
from typing import Any

from ._version import __version__
from .errors import InvalidEvent
from .forking import at_fork

__all__ = [
    "FIELD_NAMES",
    "LIBRARY",
    "MESSAGE_TYPES",
    "build_message",
    "format_timestamp",
    "message_for",
    "type_word_hint",
]

MESSAGE_TYPES = frozenset({"identify", "track", "page", "screen", "group", "alias"})

LIBRARY: dict[str, str] = {"name": "logbridge", "version": __version__}

#: Every recognised ``extra`` key and the spec field it fills.
FIELD_NAMES: dict[str, str] = {
    "user_id": "userId",
    "userId": "userId",
    "anonymous_id": "anonymousId",
    "anonymousId": "anonymousId",
    "event": "event",
    "category": "category",
    "page_name": "name",
    "screen_name": "name",
    "group_id": "groupId",
    "groupId": "groupId",
    "previous_id": "previousId",
    "previousId": "previousId",
    "properties": "properties",
    "traits": "traits",
    "context": "context",
    "integrations": "integrations",
    "timestamp": "timestamp",
    "message_id": "messageId",
    "messageId": "messageId",
}

_COMMON = frozenset({"userId", "anonymousId", "context", "integrations", "timestamp", "messageId"})
#: The top-level fields each type takes, besides the common ones.
_TYPE_FIELDS: dict[str, frozenset[str]] = {
    "track": _COMMON | {"event", "properties", "traits"},
    "page": _COMMON | {"name", "category", "properties", "traits"},
    "screen": _COMMON | {"name", "category", "properties", "traits"},
    "identify": _COMMON | {"traits", "properties"},
    "group": _COMMON | {"groupId", "traits", "properties"},
    "alias": _COMMON | {"previousId"},
}
#: The name key belongs to its own type only: ``page_name`` on a screen is a property.
_NAME_KEYS = {"page": "page_name", "screen": "screen_name"}


def _recognised_keys(kind: str, event_name_style: bool) -> dict[str, str]:
    """The ``extra`` keys that fill a spec field of ``kind``, and the field each fills."""
    keys = {}
    for key, name in FIELD_NAMES.items():
        if name not in _TYPE_FIELDS[kind]:
            continue
        if name == "name" and _NAME_KEYS.get(kind) != key:
            continue  # page_name on a screen is a property
        if name == "event" and event_name_style:
            continue  # the message is the event; an "event" key stays data
        keys[key] = name
    return keys


_BAG = {
    "track": "properties",
    "page": "properties",
    "screen": "properties",
    "identify": "traits",
    "group": "traits",
}


_RECOGNISED: dict[tuple[str, bool], dict[str, str]] = {
    (kind, style): _recognised_keys(kind, style)
    for kind in MESSAGE_TYPES
    for style in (False, True)
}


def build_message(
    kind: str,
    fields: Mapping[str, Any],
    *,
    event: str | None = None,
    created: float | None = None,
    context: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Build the message of type ``kind`` from ``fields``.

    ``event`` is the event name of an implicit track (the log message); ``created`` the
    record's time, used when ``fields`` has no timestamp; ``context`` the handler-level
    default context. Returns the message and the keys that were left out (on alias).
    Raises :class:`InvalidEvent` with the reason when the spec's rules are not met.
    The caller's dicts are never modified: the message's own dicts (properties, traits,
    context, integrations) are new; values nested deeper are the caller's, read only.
    """
    recognised = _RECOGNISED[kind, event is not None].get
    top: dict[str, Any] = {}
    bag: dict[str, Any] = {}
    ignored: list[str] = []
    for key, value in fields.items():
        name = recognised(key)
        if name is None:
            if kind == "alias":
                ignored.append(str(key))
            else:
                bag[key] = value
        elif name in top and top[name] != value:
            raise InvalidEvent(
                f"conflicting values for {name!r} (given twice, as snake_case and camelCase)"
            )
        else:
            top[name] = value

    message: dict[str, Any] = {"type": kind}
    if kind == "track":
        name = event if event is not None else top.get("event")
        message["event"] = _required_text("event", name, "a track needs an event name")
    elif kind in ("page", "screen"):
        for key in ("name", "category"):
            if top.get(key) is not None:
                message[key] = _text(key, top[key])
    elif kind == "group":
        message["groupId"] = _identifier("groupId", top.get("groupId"), required=True)
    elif kind == "alias":
        message["previousId"] = _identifier("previousId", top.get("previousId"), required=True)

    user_id = _identifier("userId", top.get("userId"), required=kind == "alias")
    anonymous_id = _identifier("anonymousId", top.get("anonymousId"), required=False)
    if user_id is None and anonymous_id is None:
        raise InvalidEvent(f"a {kind} needs user_id or anonymous_id")
    if user_id is not None:
        message["userId"] = user_id
    if anonymous_id is not None:
        message["anonymousId"] = anonymous_id

    event_context = dict(_mapping("context", top.get("context")))
    if kind in _BAG:
        bag_name = _BAG[kind]
        explicit = top.get(bag_name)
        if explicit is not None:
            bag = {**_mapping(bag_name, explicit), **bag}
        if bag_name == "traits" and "properties" in top:
            bag = {**_mapping("properties", top["properties"]), **bag}
        message[bag_name] = bag
        if bag_name == "properties" and "traits" in top:
            # Segment's convention: traits sent along with an event live in context.traits.
            event_context["traits"] = {
                **_mapping("context.traits", event_context.get("traits")),
                **_mapping("traits", top["traits"]),
            }
    message["context"] = {**(context or {}), **event_context, "library": dict(LIBRARY)}
    if top.get("integrations") is not None:
        message["integrations"] = dict(_mapping("integrations", top["integrations"]))
    message["timestamp"] = (
        format_timestamp(created if created is not None else time.time())
        if top.get("timestamp") is None
        else _timestamp(top["timestamp"])
    )
    message_id = top.get("messageId")
    message["messageId"] = (
        new_message_id() if message_id is None else _required_text("messageId", message_id)
    )
    return message, ignored


_ids = random.Random()
at_fork(_ids, after_in_child="seed")
#: The version (4) and variant (RFC 4122) bits of a random UUID, as ``uuid.uuid4`` sets them.
_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_UUID_SET = (0x4000 << 64) | (0x8000 << 48)

#: The last whole second formatted, with its text: records come in bursts within a second.
#: One tuple, replaced whole, so threads sharing it never see a half-updated pair.
_last_second: tuple[int, str] = (-1, "")


def message_for(
    word: str | None,
    text: str,
    fields: Mapping[str, Any],
    *,
    created: float | None = None,
    context: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The message of a logging call: of type ``word`` when it names one, else a track.

    ``word`` is the call's raw message when it is a string, ``text`` its formatted
    message (the event name of an implicit track); see :func:`build_message`.
    """
    if word in MESSAGE_TYPES:
        return build_message(word, fields, created=created, context=context)
    return build_message("track", fields, event=text, created=created, context=context)


def type_word_hint(word: object) -> str | None:
    """The type word that ``word`` is not, but would be in lower case and without spaces.

    ``"Identify"`` or ``"identify "`` makes a track with that event name (type words are
    matched exactly); this names the type meant, for a hint. None for anything else.
    """
    if not isinstance(word, str) or word in MESSAGE_TYPES or len(word) > _NEAR_WORD_LENGTH:
        return None
    near = word.strip().lower()
    return near if near in MESSAGE_TYPES else None


#: Longer words are not taken for a type word with stray spaces.
_NEAR_WORD_LENGTH = 16


def format_timestamp(seconds: float) -> str:
    """ISO-8601 UTC with milliseconds: ``2026-11-22T06:30:00.123Z``."""
    global _last_second
    whole, micros = divmod(round(seconds * 1_000_000), 1_000_000)
    cached_whole, prefix = _last_second
    if cached_whole != whole:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        _last_second = (whole, prefix)
    return f"{prefix}.{micros // 1000:03d}Z"


def new_message_id() -> str:
    """A random (version 4) UUID as a string.

    Drawn from a generator of its own, seeded from ``os.urandom`` and reseeded in every
    forked child: one system call per message would release the GIL on the listener's
    thread once per record, and seeding the application's ``random`` would not touch it.
    """
    value = (_ids.getrandbits(128) & _UUID_CLEAR) | _UUID_SET
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _format_datetime(value: dt.datetime) -> str:
    moment = value if value.tzinfo is None else value.astimezone(dt.timezone.utc)
    return moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def _timestamp(value: Any) -> str:
    try:
        if isinstance(value, dt.datetime):
            return _format_datetime(value)
        if isinstance(value, dt.date):
            return _format_datetime(dt.datetime(value.year, value.month, value.day))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return format_timestamp(float(value))
    except (OverflowError, OSError, ValueError):
        raise InvalidEvent(f"timestamp {value!r} is out of range") from None
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            raise InvalidEvent(f"timestamp {value!r} is not an ISO-8601 date and time") from None
        return _timestamp(parsed)
    raise InvalidEvent(
        f"timestamp must be a datetime or an ISO-8601 string, got {type(value).__name__}"
    )


def _identifier(name: str, value: Any, *, required: bool) -> str | None:
    if value is None or value == "":
        if required:
            raise InvalidEvent(f"{name} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, uuid.UUID)):
        raise InvalidEvent(f"{name} must be a string, got {type(value).__name__}")
    return str(value)


def _required_text(name: str, value: Any, reason: str | None = None) -> str:
    if not isinstance(value, str) or not value:
        if value is None or value == "":
            raise InvalidEvent(reason or f"{name} is required")
        raise InvalidEvent(f"{name} must be a string, got {type(value).__name__}")
    return value


def _text(name: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    raise InvalidEvent(f"{name} must be a string, got {type(value).__name__}")


def _mapping(name: str, value: Any) -> Mapping[str, Any]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return value
    raise InvalidEvent(f"{name} must be a dict, got {type(value).__name__}")
