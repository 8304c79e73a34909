"""The text of a failed assertion on captured events: what a test needs to see.

Pure functions over message dicts, kept apart from :mod:`logbridge.testing`'s capture
machinery.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["failure_text", "summary"]


def failure_text(
    headline: str,
    messages: Sequence[Mapping[str, Any]],
    invalid: Sequence[tuple[str, str, Mapping[str, Any]]],
    *,
    missed: Sequence[str],
    where: str,
) -> str:
    """``headline``, every captured message, the invalid records, and where to look.

    ``invalid`` holds (logger, reason, fields); ``missed`` the loggers whose records
    looked like events but were not captured; ``where`` names the captured loggers and
    the setting that chooses them.
    """
    lines = [headline]
    if messages:
        lines.append(f"captured {len(messages)} event(s):")
        lines.extend(f"  {summary(m)}" for m in messages)
    else:
        lines.append("captured no events")
    if invalid:
        lines.append(f"{len(invalid)} invalid record(s) dropped (they would not be sent):")
        lines.extend(f"  {logger}: {reason}: {dict(fields)}" for logger, reason, fields in invalid)
    if missed:
        lines.append(
            f"not captured: records that look like events from {', '.join(map(repr, missed))}, "
            f"a logger outside {where} with no AnalyticsHandler; add it there"
        )
    elif not messages:
        lines.append(
            "events are captured from loggers with an AnalyticsHandler and from "
            f"{where} and their children, at INFO"
        )
    return "\n".join(lines)


def summary(message: Mapping[str, Any]) -> str:
    """One line with everything a test compares: type, name, ids, properties, traits."""
    parts = [str(message.get("type"))]
    what = message.get("event") or message.get("name")
    if what is not None:
        parts.append(repr(what))
    for key in ("userId", "anonymousId", "groupId", "previousId"):
        if message.get(key) is not None:
            parts.append(f"{key}={message[key]!r}")
    for bag in ("properties", "traits"):
        if bag in message:
            parts.append(f"{bag}={message[bag]!r}")
    context_traits = (message.get("context") or {}).get("traits")
    if context_traits:
        parts.append(f"context.traits={context_traits!r}")
    return " ".join(parts)
