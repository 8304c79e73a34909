"""What the collector received, recorded thread-safely: messages, requests and counts.

A :class:`Recorder` takes its lock once per request (never per message), so counting stays
cheap enough for benchmarks; callers can block until enough has arrived. Given
``max_messages``, it keeps only the last that many messages, problems and requests (the
counts stay exact), so a long-running ``logbridge collect`` does not grow without bound.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import IO, Any, TextIO

from logbridge.collector.faults import FAULT_KINDS, FaultKind

__all__ = ["Recorder", "RequestRecord", "compact_json"]


def compact_json(value: object) -> str:
    """``value`` as compact JSON text."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class RequestRecord:
    """One request the collector answered (or reset), without its body."""

    path: str
    status: int  # 0 when the connection was reset without an answer
    content_encoding: str | None
    auth_user: str | None = field(repr=False)  # the Basic user name: a secret write key
    body_bytes: int  # raw length on the wire
    message_count: int
    user_agent: str | None
    headers: dict[str, str] = field(hash=False)  # Authorization masked
    method: str = "POST"
    fault: FaultKind | None = None
    #: The wire format of the request: "segment" or "amplitude".
    format: str = "segment"


class Recorder:
    """Everything received, behind one lock per request; wakes up waiting callers.

    Accepted messages are also appended, as JSON lines, to the ``output`` file and their
    echo lines written to the ``echo`` stream, when :meth:`attach` gave those.
    """

    def __init__(self, max_messages: int | None = None) -> None:
        """Start empty, with no output file and no echo stream; keep all, or ``max_messages``."""
        if max_messages is not None and max_messages <= 0:
            raise ValueError(f"max_messages must be positive, got {max_messages!r}")
        self._max = max_messages
        self._cond = threading.Condition()
        self._output: IO[str] | None = None
        self._echo: TextIO | None = None
        self._clear()

    def _clear(self) -> None:
        """Forget everything recorded (the caller holds the lock or owns the recorder)."""
        self._messages: deque[dict[str, Any]] = deque(maxlen=self._max)
        self._invalid: deque[tuple[Any, list[str]]] = deque(maxlen=self._max)
        self._requests: deque[RequestRecord] = deque(maxlen=self._max)
        self._received = self._invalid_count = self._request_count = 0
        self._by_status: dict[str, int] = {}
        self._id_counts: dict[str, int] = {}
        self._repeated: dict[str, int] = {}
        self._without_id = 0
        self._batches = 0
        self._faults: dict[str, int] = dict.fromkeys(FAULT_KINDS, 0)
        self._amplitude_events: deque[dict[str, Any]] = deque(maxlen=self._max)
        self._usermaps: deque[dict[str, Any]] = deque(maxlen=self._max)
        self._amplitude_count = self._usermap_count = 0
        self._insert_ids: dict[str, int] = {}
        self._active = 0  # batch requests being handled right now
        self._max_active = 0  # the most handled at once since the last reset

    # -- sinks

    def attach(self, output: IO[str] | None, echo: TextIO | None) -> None:
        """Write accepted messages to ``output`` and their echo lines to ``echo`` from now on."""
        with self._cond:
            self._output, self._echo = output, echo

    def detach_output(self) -> IO[str] | None:
        """Stop writing to the output file and hand it back (for the caller to close)."""
        with self._cond:
            output, self._output = self._output, None
        return output

    @property
    def echoing(self) -> bool:
        """Whether echo lines are wanted (read without the lock: a hint, checked per batch)."""
        return self._echo is not None

    # -- recording

    def batch_started(self) -> None:
        """A batch request arrived (before any latency): count it as in flight."""
        with self._cond:
            self._active += 1
            self._max_active = max(self._max_active, self._active)

    def batch_ended(self) -> None:
        """A batch request was answered (or dropped): no longer in flight."""
        with self._cond:
            self._active = max(0, self._active - 1)

    def record_request(self, record: RequestRecord) -> None:
        """Record a request that delivered no messages (an error, a fault, a 404...)."""
        with self._cond:
            self._count_request(record)
            if record.fault is not None:
                self._faults[record.fault] += 1
            self._cond.notify_all()

    def record_batch(
        self,
        record: RequestRecord,
        messages: list[dict[str, Any]],
        invalid: list[tuple[Any, list[str]]],
        lines: list[str],
    ) -> None:
        """Record an accepted batch: its messages, its problems, the request and the sinks."""
        with self._cond:
            self._count_request(record)
            self._batches += 1
            self._messages.extend(messages)
            self._invalid.extend(invalid)
            self._received += len(messages)
            self._invalid_count += len(invalid)
            counts, repeated = self._id_counts, self._repeated
            for msg in messages:
                message_id = msg.get("messageId")
                if isinstance(message_id, str) and message_id:
                    seen = counts.get(message_id, 0) + 1
                    counts[message_id] = seen
                    if seen > 1:
                        repeated[message_id] = seen
                else:
                    self._without_id += 1
            self._write(messages, lines)
            self._cond.notify_all()

    def record_amplitude(
        self,
        record: RequestRecord,
        events: list[dict[str, Any]],
        mappings: list[dict[str, Any]],
        lines: list[str],
    ) -> None:
        """Record an Amplitude request with what it ingested: events, or User Mappings."""
        with self._cond:
            self._count_request(record)
            if record.fault is not None:
                self._faults[record.fault] += 1
            self._amplitude_events.extend(events)
            self._amplitude_count += len(events)
            self._usermap_count += len(mappings)
            self._usermaps.extend(mappings)
            for event in events:
                insert_id = event.get("insert_id")
                if isinstance(insert_id, str):
                    self._insert_ids[insert_id] = self._insert_ids.get(insert_id, 0) + 1
            self._write(events, lines)
            self._cond.notify_all()

    def _count_request(self, record: RequestRecord) -> None:
        """Keep and count one request, by its status (the lock is held)."""
        self._requests.append(record)
        self._request_count += 1
        status = str(record.status)
        self._by_status[status] = self._by_status.get(status, 0) + 1

    def _write(self, messages: list[dict[str, Any]], lines: list[str]) -> None:
        """Append to the output file and the echo stream; a broken echo must not stop us."""
        if self._output is not None and messages:
            self._output.write("".join(compact_json(msg) + "\n" for msg in messages))
            self._output.flush()
        if self._echo is not None and lines:
            try:
                self._echo.write("".join(line + "\n" for line in lines))
                self._echo.flush()
            except (OSError, ValueError):
                self._echo = None

    def reset(self) -> None:
        """Forget everything recorded (requests in flight stay counted as in flight)."""
        with self._cond:
            active = self._active
            self._clear()
            self._active = self._max_active = active
            self._cond.notify_all()

    # -- reading

    def messages(self) -> list[dict[str, Any]]:
        """A copy of every received message, in arrival order (invalid ones included)."""
        with self._cond:
            return list(self._messages)

    def invalid(self) -> list[tuple[Any, list[str]]]:
        """A copy of each invalid message with its problems, in arrival order."""
        with self._cond:
            return list(self._invalid)

    def requests(self) -> list[RequestRecord]:
        """A copy of the record of every request."""
        with self._cond:
            return list(self._requests)

    def amplitude_events(self) -> list[dict[str, Any]]:
        """A copy of every Amplitude event ingested, in arrival order."""
        with self._cond:
            return list(self._amplitude_events)

    def usermaps(self) -> list[dict[str, Any]]:
        """A copy of every User Mapping received (``{user_id, global_user_id}``)."""
        with self._cond:
            return list(self._usermaps)

    def wait_for_amplitude(self, count: int, timeout: float) -> bool:
        """Block until ``count`` Amplitude events and mappings arrived; False on timeout."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self._amplitude_count + self._usermap_count >= count, timeout
            )

    def wait_for_messages(self, count: int, timeout: float) -> bool:
        """Block until at least ``count`` messages arrived; False if ``timeout`` ran out first."""
        with self._cond:
            return self._cond.wait_for(lambda: self._received >= count, timeout)

    def wait_for_requests(self, count: int, timeout: float) -> bool:
        """Block until at least ``count`` requests were recorded; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._request_count >= count, timeout)

    def stats(self) -> dict[str, Any]:
        """Counts of what was received; ``by_message_id`` only for ids seen more than once."""
        with self._cond:
            received = self._received
            unique = len(self._id_counts) + self._without_id
            return {
                "received": received,
                "unique": unique,
                "duplicates": received - unique,
                "invalid": self._invalid_count,
                "requests": self._request_count,
                "requests_by_status": dict(self._by_status),
                "batches": self._batches,
                "concurrent_batches": self._active,
                "max_concurrent_batches": self._max_active,
                "faults": dict(self._faults),
                "by_message_id": dict(self._repeated),
                "amplitude": {
                    "events": self._amplitude_count,
                    "unique": len(self._insert_ids),
                    "usermaps": self._usermap_count,
                },
            }
