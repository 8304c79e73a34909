"""Bytes against CPU for each gzip level, on full request bodies of the benchmark's events.

Used by ``benchmarks/run --profile`` (part 4 of PROFILE.md), to choose the level the HTTP
destinations compress with: ``python -m benchmarks.gzip_levels`` prints the table alone.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Sequence

LEVELS = (1, 2, 3, 4, 5, 6, 9)


Row = tuple[int, float, float]


def measure(bodies: Sequence[bytes], events: int, repeat: int = 5) -> list[Row]:
    """``(level, CPU µs per event, compressed bytes per event)`` for each level."""
    rows: list[Row] = []
    for level in LEVELS:
        best = float("inf")
        size = 0
        for _ in range(repeat):
            started = time.process_time()
            size = sum(len(gzip.compress(body, compresslevel=level, mtime=0)) for body in bodies)
            best = min(best, time.process_time() - started)
        rows.append((level, best / events * 1e6, size / events))
    return rows


def table(rows: Sequence[Row], raw_per_event: float) -> str:
    """The rows as markdown, with the uncompressed size for scale."""
    lines = [
        f"| gzip level | CPU µs/event | bytes/event (raw {raw_per_event:.0f}) |",
        "|---|---|---|",
    ]
    lines += [f"| {level} | {cpu:.2f} | {size:.1f} |" for level, cpu, size in rows]
    return "\n".join(lines)


def sample_bodies(count: int = 20_000, per_body: int = 1_000) -> tuple[list[bytes], int]:
    """Request bodies of logbridge's own serialised messages for the benchmark's event."""
    import logging

    from benchmarks.workload import EVENT, make_pool
    from logbridge.encoding import Encoder
    from logbridge.testing import capture

    log = logging.getLogger("analytics.bench.gzip")
    pool = make_pool()
    with capture() as captured:
        for index in range(count):
            user_id, properties = pool[index % len(pool)]
            log.info(EVENT, extra={"user_id": user_id, **properties})
    encode = Encoder().encode
    items = [encode(dict(message)) for message in captured]
    bodies = [
        b'{"batch":[' + b",".join(items[i : i + per_body]) + b'],"sentAt":"2026-12-01T00:00:00Z"}'
        for i in range(0, len(items), per_body)
    ]
    return bodies, len(items)


if __name__ == "__main__":
    bodies, events = sample_bodies()
    print(table(measure(bodies, events), sum(map(len, bodies)) / events))
