"""What ``logbridge replay`` reads: dead letters, JSON-lines archives and spools.

Each input yields :class:`Entry` objects in order: a message with its key (its
``messageId``, or its place in the file), or the reason a line holds none.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
from collections.abc import Iterator
from typing import Any

__all__ = ["Entry", "count_entries", "input_kind", "read_entries"]

_SQLITE_MAGIC = b"SQLite format 3\x00"


@dataclasses.dataclass(frozen=True)
class Entry:
    """One message of the input, or the reason a line holds none (``message`` is None)."""

    key: str
    message: dict[str, Any] | None
    skipped: str | None = None


# Reading -------------------------------------------------------------------------------


def input_kind(path: str) -> str:
    """``spool``, ``dead letter`` or ``JSON lines``, from the start of the file.

    Raises OSError if the file cannot be read.
    """
    with open(path, "rb") as file:
        if file.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC:
            return "spool"
        file.seek(0)
        for line in file:
            if line.strip():
                try:
                    first = json.loads(line)
                except ValueError:
                    break
                if isinstance(first, dict) and isinstance(first.get("message"), dict):
                    return "dead letter"
                break
    return "JSON lines"


def count_entries(path: str) -> int:
    """About how many entries ``path`` holds (lines or rows), for a progress bar."""
    if input_kind(path) == "spool":
        with _read_only(path) as db:
            return int(db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
    with open(path, "rb") as file:
        return sum(1 for line in file if line.strip())


def read_entries(path: str) -> Iterator[Entry]:
    """The entries of a dead letter, JSON-lines archive or spool, in order."""
    if input_kind(path) == "spool":
        yield from _spool_entries(path)
        return
    with open(path, encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, 1):
            if line.strip():
                yield from _line_entries(number, line)


def _line_entries(number: int, line: str) -> Iterator[Entry]:
    try:
        data = json.loads(line)
    except ValueError:
        yield Entry(f"line:{number}", None, "not JSON")
        return
    if not isinstance(data, dict):
        yield Entry(f"line:{number}", None, "not a JSON object")
    elif isinstance(data.get("message"), dict):  # a dead letter's line
        yield _entry(data["message"], f"line:{number}")
    elif isinstance(data.get("batch"), list):  # a request body
        for index, message in enumerate(data["batch"]):
            if isinstance(message, dict):
                yield _entry(message, f"line:{number}:{index}")
            else:
                yield Entry(f"line:{number}:{index}", None, "not a JSON object")
    elif "invalid" in data and "type" not in data:  # AnalyticsFormatter's invalid record
        yield Entry(f"line:{number}", None, "an invalid record, never a message")
    elif isinstance(data.get("type"), str) or "event_type" in data:
        yield _entry(data, f"line:{number}")
    else:
        yield Entry(f"line:{number}", None, "no message")


def _spool_entries(path: str) -> Iterator[Entry]:
    with _read_only(path) as db:
        for row_id, body in db.execute("SELECT id, body FROM messages ORDER BY id"):
            try:
                message = json.loads(bytes(body))
            except ValueError:
                yield Entry(f"row:{row_id}", None, "not JSON")
                continue
            if isinstance(message, dict):
                yield _entry(message, f"row:{row_id}")
            else:
                yield Entry(f"row:{row_id}", None, "not a JSON object")


def _entry(message: dict[str, Any], fallback: str) -> Entry:
    key = message.get("messageId") or message.get("insert_id")
    return Entry(str(key) if key else fallback, message)


class _read_only:
    """A read-only connection to a spool file (the spool itself is never changed)."""

    def __init__(self, path: str) -> None:
        uri = "file:" + os.path.abspath(path).replace("?", "%3F").replace("#", "%23") + "?mode=ro"
        self.db = sqlite3.connect(uri, uri=True)

    def __enter__(self) -> sqlite3.Connection:
        return self.db

    def __exit__(self, *exc: object) -> None:
        self.db.close()
