"""What ``logbridge collect`` prints: an aligned line per event, and a summary table at the end.

Colour is used only on a terminal, and never when ``NO_COLOR`` is set (https://no-color.org).
Application data is made printable first (see :mod:`~logbridge.collector.echo`), so an
escape sequence in an event name cannot drive the terminal.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final, TextIO

from logbridge.collector.echo import event_columns, format_problems
from logbridge.collector.events import Event, event_name, event_type, event_user
from logbridge.collector.problems import explain

__all__ = ["EventPrinter", "summary_lines", "wants_colour"]

_RESET: Final = "\x1b[0m"
_STYLES: Final = {
    "dim": "\x1b[2m",
    "bold": "\x1b[1m",
    "red": "\x1b[31m",
    "green": "\x1b[32m",
    "track": "\x1b[36m",
    "identify": "\x1b[35m",
    "page": "\x1b[34m",
    "screen": "\x1b[34m",
    "group": "\x1b[33m",
    "alias": "\x1b[32m",
}
#: Column widths of an event line: type, who, what (longer values push the rest right).
_TYPE, _WHO, _WHAT = 8, 20, 28
#: Where the type column starts: after "HH:MM:SS.mmm" and two spaces.
_INDENT: Final = " " * 14


def wants_colour(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """Whether to colour output to ``stream``: a terminal, ``NO_COLOR`` unset, not ``dumb``."""
    environ = os.environ if environ is None else environ
    if environ.get("NO_COLOR") or environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class _Paint:
    """Wraps text in ANSI styles, or leaves it alone."""

    __slots__ = ("enabled",)

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, style: str) -> str:
        code = _STYLES.get(style)
        return f"{code}{text}{_RESET}" if self.enabled and code and text else text


class EventPrinter:
    """An :class:`~logbridge.collector.events.EventLog` listener printing each event's line.

    ``12:00:00.123  track     user=u1              "Order Completed"  {revenue: 99.9}``,
    followed, for an invalid event, by one ``! invalid ...`` line per problem.
    """

    __slots__ = ("_lock", "_paint", "_stream")

    def __init__(self, stream: TextIO, *, colour: bool = False) -> None:
        """Print to ``stream``, in colour if ``colour``."""
        self._stream: TextIO | None = stream
        self._paint = _Paint(colour)
        self._lock = threading.Lock()

    def __call__(self, events: Sequence[Event]) -> None:
        """Print the lines of ``events``; a closed or broken stream stops the printing."""
        text = "".join(line + "\n" for event in events for line in self.lines(event))
        with self._lock:
            if self._stream is None:
                return
            try:
                self._stream.write(text)
                self._stream.flush()
            except (OSError, ValueError):
                self._stream = None

    def lines(self, event: Event) -> list[str]:
        """The line of one event, then its problem lines."""
        paint = self._paint
        received = time.strftime("%H:%M:%S", time.localtime(event.received_at))
        millis = int(event.received_at * 1000) % 1000
        msg = event.message
        if not isinstance(msg, Mapping):
            label, who, what, detail = "?", "", "(not a JSON object)", ""
        elif event.format == "segment":
            label, who, what, detail = event_columns(msg)
        else:
            label, who, what, detail = event_columns(_as_segment(event, msg))
            detail = f"[{event.format}] {detail}".rstrip()
        line = "  ".join([
            paint(f"{received}.{millis:03d}", "dim"),
            paint(label, label) + " " * (_TYPE - len(label)),
            who.ljust(_WHO),
            paint(what, "bold") + (" " * (_WHAT - len(what)) if detail else ""),
            paint(detail, "dim"),
        ]).rstrip()
        problems = list(event.problems)
        described = format_problems(msg, problems)
        return [line] + [
            _INDENT + paint(f"{text}  [{explain(problem).rule}]", "red")
            for text, problem in zip(described, problems, strict=True)
        ]


def _as_segment(event: Event, msg: Mapping[str, Any]) -> dict[str, Any]:
    """The Segment-shaped fields of an event in another format, for its terminal line."""
    users = event_user(event)
    properties = msg.get("properties", msg.get("event_properties"))
    return {
        "type": event_type(event) if msg.get("type") is None else msg["type"],
        "userId": users[0] if users else None,
        "event": event_name(event),
        "name": event_name(event),
        "properties": properties,
        "traits": msg.get("traits", msg.get("user_properties")),
    }


def summary_lines(
    summary: Mapping[tuple[str, str], tuple[int, int]],
    stats: Mapping[str, Any],
    *,
    colour: bool = False,
) -> list[str]:
    """The table printed when ``collect`` stops: per type and event name, valid and invalid.

    Then the requests seen, by status.
    """
    paint = _Paint(colour)
    rows = sorted(summary.items(), key=lambda item: (-sum(item[1]), item[0]))
    name_width = max([len("event or name"), *(min(len(name), 40) for (_, name), _ in rows)])
    type_width = max([len("requests"), *(len(kind) for (kind, _), _ in rows)])

    def row(kind: str, name: str, valid: str, invalid: str, style: str = "") -> str:
        text = f"  {kind:<{type_width}}  {name[:40]:<{name_width}}  {valid:>7}  {invalid:>7}"
        return paint(text, style) if style else text

    lines = [row("type", "event or name", "valid", "invalid", "bold")]
    for (kind, name), (valid, invalid) in rows:
        line = row(kind, name or "-", str(valid), str(invalid))
        lines.append(paint(line, "red") if invalid else line)
    if not rows:
        lines.append(row("(none)", "", "0", "0", "dim"))
    total_valid = sum(valid for valid, _ in summary.values())
    total_invalid = sum(invalid for _, invalid in summary.values())
    lines.append(row("total", "", str(total_valid), str(total_invalid), "bold"))
    by_status: Mapping[str, int] = stats.get("requests_by_status", {})
    statuses = ", ".join(f"{status}: {n}" for status, n in sorted(by_status.items()))
    requests = f"{stats.get('requests', 0)}" + (f" ({statuses})" if statuses else "")
    lines.append(f"  {'requests':<{type_width}}  {requests}")
    return lines
