"""``logbridge replay``: send the messages of a dead-letter file again.

Each line of a dead letter holds one message as it was first sent, with its
``messageId``, so a replay that partly repeats an earlier delivery is deduplicated by
the endpoint. Messages go out in batches with the usual retries, within ``timeout``
seconds overall; what still fails can go to another dead letter.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Mapping

from .batch import Batch
from .delivery import sender_for
from .destinations.registry import build_destination
from .options import Options
from .report import Reporter
from .stats import Stats

__all__ = ["ReplayResult", "replay"]


@dataclasses.dataclass(frozen=True)
class ReplayResult:
    """What a replay did: messages read, sent, not delivered (by reason), lines skipped."""

    read: int
    sent: int
    failed: int
    dropped: Mapping[str, int]
    skipped_lines: int


def replay(
    path: str,
    *,
    endpoint: str | None = None,
    destination: str | None = None,
    data_plane_url: str | None = None,
    write_key: str | None = None,
    timeout: float = 60.0,
    dead_letter: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> ReplayResult:
    """Send every message of the dead-letter file ``path``; raises OSError if unreadable.

    The destination and write key are resolved as for the handler (the ``LOGBRIDGE_*``
    environment fills what is not given). Raises ConfigurationError for bad options.
    """
    if dead_letter is not None and os.path.abspath(dead_letter) == os.path.abspath(path):
        from .errors import ConfigurationError

        raise ConfigurationError("the new dead letter must not be the file being replayed")
    options = Options.from_kwargs(
        write_key=write_key,
        endpoint=endpoint,
        destination=destination,
        data_plane_url=data_plane_url,
        dead_letter=dead_letter,
        environ=environ,
    )
    target = build_destination(options)
    stats = Stats()
    deadline = time.monotonic() + timeout
    sender = sender_for(
        options, target, stats=stats, reporter=Reporter(), deadline=lambda: deadline
    )
    batch = Batch.for_destination(target.limits, options.flush_at, 0.0)
    read = skipped = 0
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            item = _message_bytes(line)
            if item is None:
                skipped += bool(line.strip())
                continue
            read += 1
            if batch.items and not batch.fits(item):
                sender.enqueue(batch.take())
            batch.add(item, 0.0)
            if batch.full:
                sender.enqueue(batch.take())
    if batch.items:
        sender.enqueue(batch.take())
    sender.stop()
    snapshot = stats.snapshot(queued=0)
    dropped = snapshot["dropped"]
    assert isinstance(dropped, dict)
    return ReplayResult(
        read=read,
        sent=int(str(snapshot["sent"])),
        failed=int(str(snapshot["failed"])),
        dropped={reason: count for reason, count in dropped.items() if count},
        skipped_lines=skipped,
    )


def _message_bytes(line: str) -> bytes | None:
    """The message of one dead-letter line, serialised; None for a line that has none."""
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    message = entry.get("message") if isinstance(entry, dict) else None
    if not isinstance(message, dict):
        return None
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
