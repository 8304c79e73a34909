"""The dead letter: messages that failed for good, as JSON lines, ready to replay.

Each line is ``{"failed_at": ..., "reason": ..., "status": ..., "error": ...,
"message": {...}}``; the file is created with mode 0600. ``logbridge replay`` sends a
dead-letter file again.
"""

from __future__ import annotations

import json
import os
import threading
import time

from ..errors import DeliveryError
from ..message import format_timestamp
from ..stats import DropReason

__all__ = ["DeadLetter"]


class DeadLetter:
    """Appends failed messages to a JSON-lines file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def __repr__(self) -> str:
        return f"DeadLetter({self.path!r})"

    def write(self, items: list[bytes], reason: DropReason, error: BaseException | None) -> None:
        """Record ``items`` (serialised messages) as failed for ``reason``."""
        status = error.status if isinstance(error, DeliveryError) else None
        head = json.dumps(
            {
                "failed_at": format_timestamp(time.time()),
                "reason": reason.value,
                "status": status,
                "error": str(error) if error is not None else None,
            },
            separators=(",", ":"),
        ).encode()[:-1]
        lines = b"".join(head + b',"message":' + item + b"}\n" for item in items)
        with self._lock:
            view = memoryview(lines)
            while view:
                view = view[os.write(self._fd, view) :]

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
