"""A durable spool: messages persisted before they are sent, removed once acknowledged.

SQLite in WAL mode, file mode 0600. Each row belongs to the process that wrote it; a
process that starts on the same file takes over the rows of processes that are gone
(killed, crashed) and sends them first. Over ``max_bytes``, a process drops its own
oldest rows, which the sender counts and reports.

No thread is inside SQLite while the process forks: the spool's lock, held around
every call, is taken before a fork and released after it (SQLite's own mutexes would
otherwise be copied locked into the child).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading

from ..forking import at_fork

__all__ = ["Spool"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    body BLOB NOT NULL,
    size INTEGER NOT NULL,
    owner INTEGER NOT NULL
)
"""


class Spool:
    """Rows of serialised messages in a SQLite file, safe to share between threads."""

    def __init__(self, path: str, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        os.chmod(path, 0o600)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)
        self._pid = os.getpid()
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(OSError):
                os.chmod(path + suffix, 0o600)
        at_fork(
            self, before="_before_fork", after_in_parent="_after_fork",
            after_in_child="_after_fork",
        )

    def __repr__(self) -> str:
        return f"Spool({self.path!r})"

    def add(self, items: list[bytes]) -> tuple[list[int], int, int]:
        """Persist ``items``: their row ids, how many old rows were evicted, the newest of those.

        Eviction takes this process's oldest rows until the file's rows fit ``max_bytes``.
        """
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                ids = [
                    int(self._db.execute(
                        "INSERT INTO messages (body, size, owner) VALUES (?, ?, ?)",
                        (item, len(item), self._pid),
                    ).lastrowid or 0)
                    for item in items
                ]
                evicted, newest = self._evict()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return ids, evicted, newest

    def remove(self, ids: list[int]) -> None:
        """Forget rows that were delivered or failed for good."""
        if not ids:
            return
        with self._lock:
            self._db.executemany("DELETE FROM messages WHERE id = ?", [(i,) for i in ids])

    def contains(self, ids: list[int]) -> list[int]:
        """Which of ``ids`` are still in the spool (the rest were evicted)."""
        if not ids:
            return []
        with self._lock:
            marks = ",".join("?" * len(ids))
            rows = self._db.execute(f"SELECT id FROM messages WHERE id IN ({marks})", ids)
            return [int(row[0]) for row in rows]

    def take_over(self) -> list[tuple[int, bytes]]:
        """Claim the rows of processes that no longer run; returns them oldest first."""
        with self._lock:
            owners = self._db.execute("SELECT DISTINCT owner FROM messages").fetchall()
            gone = [int(row[0]) for row in owners if row[0] != self._pid and not _alive(row[0])]
            for owner in gone:
                self._db.execute(
                    "UPDATE messages SET owner = ? WHERE owner = ?", (self._pid, owner)
                )
            rows = self._db.execute(
                "SELECT id, body FROM messages WHERE owner = ? ORDER BY id", (self._pid,)
            )
            return [(int(row[0]), bytes(row[1])) for row in rows]

    def size(self) -> tuple[int, int]:
        """Rows and bytes held."""
        with self._lock:
            count, total = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM messages"
            ).fetchone()
        return int(count), int(total)

    def close(self) -> None:
        """Close the database connection."""
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._db.close()

    def _evict(self) -> tuple[int, int]:
        (total,) = self._db.execute("SELECT COALESCE(SUM(size), 0) FROM messages").fetchone()
        if total <= self.max_bytes:
            return 0, 0
        rows = self._db.execute(
            "SELECT id, size FROM messages WHERE owner = ? ORDER BY id", (self._pid,)
        )
        doomed: list[int] = []
        for row_id, size in rows:
            if total <= self.max_bytes:
                break
            doomed.append(int(row_id))
            total -= int(size)
        if doomed:
            self._db.execute("DELETE FROM messages WHERE owner = ? AND id <= ?",
                             (self._pid, doomed[-1]))
        return len(doomed), (doomed[-1] if doomed else 0)

    def _before_fork(self) -> None:
        self._lock.acquire()

    def _after_fork(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._lock.release()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
