"""The sender's bookkeeping of a spool: each batch's rows, evictions and recovery.

A batch is written to the spool when it enters the outbox and its rows are removed once
it is settled. A full spool evicts its oldest rows at once, but their messages are
counted (``spool_full``) only when their batch comes up: a batch in flight at that
moment may still be delivered.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ..destinations.base import Limits
from ..errors import DeliveryError
from ..report import Reporter, call_safely
from ..stats import DropReason, Stats
from .outbox import Entry, Outbox
from .spool import Spool

__all__ = ["SpoolBook"]


class SpoolBook:
    """Keeps a spool in step with the outbox."""

    def __init__(
        self,
        spool: Spool,
        outbox: Outbox,
        *,
        stats: Stats,
        reporter: Reporter,
        on_error: Callable[..., object] | None,
    ) -> None:
        self.spool = spool
        self.outbox = outbox
        self.stats = stats
        self.reporter = reporter
        self.on_error = on_error
        self._evicted_upto = 0  # the newest spool row id evicted so far (0: none)

    def persist(self, items: list[bytes]) -> list[int] | None:
        """Write ``items`` before their first attempt; their row ids (None if it failed)."""
        try:
            spool_ids, evicted, newest_evicted = self.spool.add(items)
        except Exception as exc:
            self.reporter.problem("spool", f"could not persist {len(items)} messages: {exc!r}")
            return None
        if evicted:
            self._evicted_upto = max(self._evicted_upto, newest_evicted)
            self.reporter.problem(
                DropReason.SPOOL_FULL.value,
                f"spool over {self.spool.max_bytes} bytes: dropping the {evicted} oldest messages",
            )
        return spool_ids

    def take_evicted(self, entry: Entry) -> bool:
        """Remove from ``entry`` (and count) its messages evicted from the spool."""
        ids = entry.spool_ids
        if not ids or ids[0] > self._evicted_upto:
            return False
        try:
            kept = set(self.spool.contains(ids))
        except Exception as exc:
            self.reporter.problem("spool", f"could not read {self.spool.path}: {exc!r}")
            return False
        if len(kept) == len(ids):
            return False
        gone = [item for item, row in zip(entry.items, ids, strict=True) if row not in kept]
        self.outbox.shrink(entry, entry.part(i for i, row in enumerate(ids) if row in kept))
        self.stats.add("failed", len(gone))
        self.stats.drop(DropReason.SPOOL_FULL, len(gone))
        if self.on_error is not None:
            failure = DeliveryError(f"{DropReason.SPOOL_FULL.value}: evicted from the full spool")
            call_safely(self.reporter, self.on_error, failure, decode(gone))
        return True

    def forget(self, entry: Entry) -> None:
        """Remove a settled batch's rows."""
        if entry.spool_ids:
            try:
                self.spool.remove(entry.spool_ids)
            except Exception as exc:
                self.reporter.problem("spool", f"could not remove settled rows: {exc!r}")

    def recover(self, limits: Limits | None) -> int:
        """Queue the spooled messages of processes that are gone, oldest first; how many."""
        try:
            rows = self.spool.take_over()
        except Exception as exc:
            self.reporter.problem("spool", f"could not read {self.spool.path}: {exc!r}")
            return 0
        max_count = limits.max_request_count if limits else 100
        max_bytes = (limits.max_request_bytes - limits.envelope_bytes) if limits else 500_000
        items: list[bytes] = []
        ids: list[int] = []
        size = 0
        for row_id, body in rows:
            if items and (len(items) >= max_count or size + len(body) + 1 > max_bytes):
                self.outbox.put_unbounded(Entry(items, ids))
                items, ids, size = [], [], 0
            items.append(body)
            ids.append(row_id)
            size += len(body) + 1
        if items:
            self.outbox.put_unbounded(Entry(items, ids))
        if rows:
            self.stats.add("recovered", len(rows))
        return len(rows)

    def close(self) -> None:
        """Close the spool's connection."""
        self.spool.close()


def decode(items: list[bytes]) -> list[dict[str, Any]]:
    """Serialised items as the dicts callbacks get."""
    return [json.loads(item) for item in items]
