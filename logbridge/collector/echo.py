"""The collector's echo lines: one short readable line per received event or problem."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["event_columns", "format_event", "format_problems", "mask_key"]


def mask_key(key: str | None) -> str:
    """A write key made safe to print: its first two characters and asterisks."""
    if not key:
        return "(none)"
    return key[:2] + "*" * 6 if len(key) > 4 else "*" * 6


def format_event(msg: Mapping[str, Any]) -> str:
    """One short readable line describing a received message."""
    label, who, what, detail = event_columns(msg)
    return "  ".join([f"{label:<8}", who, *(part for part in (what, detail) if part)])


def event_columns(msg: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """The parts of an echo line: type, who (``user=`` or ``anon=``), what, and details.

    What is the event or name (quoted), the group or the previous id; details are the
    first properties or traits. Every part is one printable line, cut short.
    """
    kind = msg.get("type")
    label = _clean(kind if isinstance(kind, str) else "?", 12)
    if msg.get("userId") is not None:
        who = f"user={_ident(msg['userId'])}"
    elif msg.get("anonymousId") is not None:
        who = f"anon={_ident(msg['anonymousId'])}"
    else:
        who = "user=?"
    what = ""
    if kind == "track":
        what = f'"{_ident(msg.get("event"))}"'
    elif kind in ("page", "screen") and isinstance(msg.get("name"), str):
        what = f'"{_clean(msg["name"])}"'
    elif kind == "group":
        what = f"group={_ident(msg.get('groupId'))}"
    elif kind == "alias":
        what = f"previous={_ident(msg.get('previousId'))}"
    detail = ""
    properties, traits = msg.get("properties"), msg.get("traits")
    if kind in ("track", "page", "screen") and isinstance(properties, Mapping) and properties:
        detail = _brief_object(properties)
    elif kind in ("identify", "group") and isinstance(traits, Mapping) and traits:
        detail = "traits=" + _brief_object(traits)
    return label, who, what, detail


def format_problems(msg: object, problems: list[str]) -> list[str]:
    """One ``! invalid ...`` line per problem of an invalid message."""
    kind, message_id = "?", "-"
    if isinstance(msg, Mapping):
        kind = _clean(str(msg.get("type", "?")), 12)
        if isinstance(msg.get("messageId"), str) and msg["messageId"]:
            message_id = _clean(msg["messageId"], 64)
    return [f"! invalid {kind} {message_id}: {problem}" for problem in problems]


def _clean(text: str, limit: int = 40) -> str:
    """``text`` on one printable line, cut to ``limit`` characters."""
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _brief_value(value: object) -> str:
    """A short rendering of one property value."""
    if isinstance(value, str):
        return _clean(value, 32)
    if isinstance(value, Mapping):
        return "{...}" if value else "{}"
    if isinstance(value, list):
        return f"[{len(value)} items]"
    try:
        return _clean(json.dumps(value), 32)
    except (TypeError, ValueError):
        return "?"


def _brief_object(obj: Mapping[str, Any], max_items: int = 4) -> str:
    """``{key: value, ...}`` for the first few items of ``obj``, then how many more."""
    items = [f"{_clean(str(k), 24)}: {_brief_value(v)}" for k, v in list(obj.items())[:max_items]]
    if len(obj) > max_items:
        items.append(f"+{len(obj) - max_items} more")
    return "{" + ", ".join(items) + "}"


def _ident(value: object) -> str:
    """An id (or event name) for an echo line; ``?`` when missing."""
    if value is None:
        return "?"
    return _clean(value, 40) if isinstance(value, str) else _brief_value(value)
