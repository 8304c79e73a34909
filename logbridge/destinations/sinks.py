"""Local destinations: the console, a JSON-lines file, and memory (for tests).

They take the messages a network destination would send, through the same sender, so
batching, callbacks and stats work as they do for Segment::

    AnalyticsHandler(destination="console")                        # a line per event on stderr
    AnalyticsHandler(destination="jsonl", jsonl_path="events.jsonl")
    AnalyticsHandler(destination="memory")                         # .messages, for tests

Like OpenTelemetry's console and in-memory exporters, they sit beside the network
destinations on the same protocol.
"""

from __future__ import annotations

import abc
import json
import os
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from ..errors import ConfigurationError, DeliveryError
from .base import Destination, Limits, Outcome
from .registry import Preset

if TYPE_CHECKING:
    from ..options import Options

__all__ = [
    "LOCAL_LIMITS",
    "PRESETS",
    "ConsoleDestination",
    "JsonlDestination",
    "MemoryDestination",
    "describe",
]

#: Generous, but bounded: a runaway message is still refused at the record.
LOCAL_LIMITS = Limits(
    max_message_bytes=1024 * 1024, max_request_bytes=16 * 1024 * 1024, max_request_count=10_000
)
#: How much of a message's properties or traits a console line shows.
CONSOLE_DETAIL_CHARS = 300


class LocalDestination(abc.ABC):
    """What the local destinations share: Segment messages as they are, nothing to warm up."""

    name = "local"
    wire_format = "segment"
    limits = LOCAL_LIMITS

    def map_message(self, message: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
        """A spec message is kept as it is."""
        return (message,)

    @abc.abstractmethod
    def send(self, items: Sequence[bytes], *, timeout: float) -> Outcome:
        """Keep ``items`` where this destination keeps them."""

    def warm_up(self) -> None:  # noqa: B027  (optional hook: nothing to prepare)
        """Nothing to prepare."""

    def reset_after_fork(self) -> None:  # noqa: B027  (optional hook)
        """Nothing is shared with the parent that matters."""

    def close(self) -> None:  # noqa: B027  (optional hook)
        """Nothing to release."""


class ConsoleDestination(LocalDestination):
    """One readable line per message on stderr (or ``stream``), for development."""

    name = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        # None: whatever sys.stderr is when a batch is written (pytest swaps it).
        self.stream = stream

    def __repr__(self) -> str:
        return f"ConsoleDestination({'' if self.stream is None else repr(self.stream)})"

    def send(self, items: Sequence[bytes], *, timeout: float) -> Outcome:
        """Write a line per item; a closed stream fails the batch with the reason."""
        text = "".join(describe(_decode(item)) + "\n" for item in items)
        stream = self.stream if self.stream is not None else sys.stderr
        try:
            stream.write(text)
            stream.flush()
        except (OSError, ValueError, AttributeError) as exc:  # closed, or no stderr at all
            return Outcome(DeliveryError(f"console: cannot write: {exc}"))
        return Outcome()


class JsonlDestination(LocalDestination):
    """The messages as JSON lines appended to ``path``, written (and flushed) per batch.

    The file is opened when the destination is made, so a path that cannot be written
    fails at start-up. Each batch is one ``write`` in append mode: processes sharing the
    file (forked workers) do not interleave their lines. New files are private (0600):
    events may carry personal data.
    """

    name = "jsonl"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        try:
            self._fd: int | None = self._open()
        except OSError as exc:
            raise ConfigurationError(
                f"jsonl_path: cannot append to {self.path!r}: {exc.strerror or exc}"
            ) from None

    def __repr__(self) -> str:
        return f"JsonlDestination({self.path!r})"

    def _open(self) -> int:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        return os.open(self.path, flags, 0o600)

    def send(self, items: Sequence[bytes], *, timeout: float) -> Outcome:
        """Append ``items``, one line each; a failed write is retried later."""
        data = memoryview(b"".join(item + b"\n" for item in items))
        with self._lock:
            try:
                if self._fd is None:
                    self._fd = self._open()
                while data:
                    data = data[os.write(self._fd, data):]
            except OSError as exc:
                error = DeliveryError(
                    f"jsonl: cannot write {self.path}: {exc.strerror or exc}", retryable=True
                )
                return Outcome(error)
        return Outcome()

    def reset_after_fork(self) -> None:
        """A new lock in a forked child (the parent's may have been held); the file stays."""
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the file; a later batch opens it again."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


class MemoryDestination(LocalDestination):
    """The messages kept in a list, for tests: ``.messages``, ``.wait_for(n)``, ``.clear()``.

    Reach the one a handler made with ``handler.listener.destination``, or pass your own
    instance: ``AnalyticsHandler(destination=MemoryDestination())``.
    """

    name = "memory"

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._messages: list[dict[str, Any]] = []
        self._batch_sizes: list[int] = []

    def __repr__(self) -> str:
        return f"MemoryDestination({len(self._messages)} messages)"

    def reset_after_fork(self) -> None:
        """A new condition in a forked child (the parent's may have been held)."""
        self._changed = threading.Condition()

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Every message received, in order (a copy)."""
        with self._changed:
            return list(self._messages)

    @property
    def batch_sizes(self) -> list[int]:
        """How many messages each batch held, in order."""
        with self._changed:
            return list(self._batch_sizes)

    def send(self, items: Sequence[bytes], *, timeout: float) -> Outcome:
        """Keep ``items``, decoded."""
        decoded = [_decode(item) for item in items]
        with self._changed:
            self._messages.extend(decoded)
            self._batch_sizes.append(len(decoded))
            self._changed.notify_all()
        return Outcome()

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        """Block until ``count`` messages arrived; False if ``timeout`` ran out first."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self._messages) >= count, timeout)

    def clear(self) -> None:
        """Forget every message received."""
        with self._changed:
            self._messages.clear()
            self._batch_sizes.clear()


def describe(message: Mapping[str, Any]) -> str:
    """One readable line for a spec message: type, who, what, and its details.

    ``track user=user-1 "Signed Up" {"plan": "pro"}``
    """
    kind = message.get("type")
    parts = [str(kind) if kind else "?"]
    if message.get("userId") is not None:
        parts.append(f"user={message['userId']}")
    elif message.get("anonymousId") is not None:
        parts.append(f"anonymous={message['anonymousId']}")
    if kind == "track":
        parts.append(json.dumps(message.get("event"), ensure_ascii=False))
    elif kind in ("page", "screen") and message.get("name") is not None:
        parts.append(json.dumps(message.get("name"), ensure_ascii=False))
    elif kind == "group":
        parts.append(f"group={message.get('groupId')}")
    elif kind == "alias":
        parts.append(f"previous={message.get('previousId')}")
    detail = message.get("properties") if kind in ("track", "page", "screen") else (
        message.get("traits")
    )
    if detail:
        text = json.dumps(detail, ensure_ascii=False, default=str, sort_keys=True)
        if len(text) > CONSOLE_DETAIL_CHARS:
            text = text[: CONSOLE_DETAIL_CHARS - 3] + "..."
        parts.append(text)
    if message.get("timestamp"):
        parts.append(f"at {message['timestamp']}")
    line = " ".join(parts)
    # One line, whatever the values hold.
    return "logbridge: " + line.replace("\r", "\\r").replace("\n", "\\n")


def _decode(item: bytes) -> dict[str, Any]:
    try:
        value = json.loads(item)
    except ValueError:
        return {"type": "?", "raw": item.decode("utf-8", "replace")}
    return value if isinstance(value, dict) else {"type": "?", "raw": value}


# Presets ---------------------------------------------------------------------------------


def _console(options: Options, url: str | None) -> Destination:
    _no_endpoint("console", url)
    return ConsoleDestination()


def _jsonl(options: Options, url: str | None) -> Destination:
    _no_endpoint("jsonl", url)
    if not options.jsonl_path:
        raise ConfigurationError(
            "destination 'jsonl' needs jsonl_path=... (the file the messages are appended to)"
        )
    return JsonlDestination(options.jsonl_path)


def _memory(options: Options, url: str | None) -> Destination:
    _no_endpoint("memory", url)
    return MemoryDestination()


def _no_endpoint(name: str, url: str | None) -> None:
    if url is not None:
        raise ConfigurationError(
            f"destination {name!r} writes locally: endpoint={url!r} does not apply to it"
        )


PRESETS = {
    "console": Preset(None, _console, needs_key=False),
    "jsonl": Preset(None, _jsonl, needs_key=False),
    "memory": Preset(None, _memory, needs_key=False),
}
