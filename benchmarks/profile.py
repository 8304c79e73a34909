"""Where logbridge spends its time: cProfile of the caller path and of the sender.

``benchmarks/run --profile`` builds ``.venv/bench-profile`` (Python 3.11) and runs
``python -m benchmarks.profile`` there (not ``python benchmarks/profile.py``, which would
hide the stdlib ``profile`` module that cProfile imports). Python 3.11 because from 3.12
on cProfile is built on ``sys.monitoring``: one profiler sees every thread through one
call stack, which garbles a profile of a caller thread next to a listener thread. On
3.11 each ``cProfile.Profile`` follows only the thread that enabled it.

Writes ``benchmarks/PROFILE.md`` with the top functions by cumulative and by own time:

1. caller: a tight ``log.info(..., extra=...)`` loop into a default ``AnalyticsHandler``
   whose threads are running and sending to the receiver (only the caller's thread);
2. sender: the listener's work on one thread, ``pipeline.add`` over ready-made
   LogRecords (message, JSON, batch) with each full batch delivered inline (gzip, HTTP);
3. logbridge's own threads (listener, sender) as they ran during part 1, wall clock,
   so their waits show up too.

Profiling slows Python code down (roughly 2x here), so read shares, not absolute times.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import platform
import pstats
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import ROOT, Receiver
from benchmarks.workload import EVENT, WRITE_KEY, make_pool

OUT = ROOT / "benchmarks" / "PROFILE.md"


def _short(path: str) -> str:
    """A path without the interpreter's or the venv's prefix."""
    for marker in ("site-packages/", str(ROOT) + "/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return re.sub(r"^.*/lib/python3\.\d+/", "", path)


def top(profile: cProfile.Profile, sort: str, limit: int) -> str:
    """The ``limit`` top functions by ``sort`` ("cumulative" or "tottime") as markdown."""
    stats = pstats.Stats(profile, stream=io.StringIO())
    entries: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    index = 3 if sort == "cumulative" else 2
    ranked = sorted(entries.items(), key=lambda item: item[1][index], reverse=True)[:limit]
    total = max((value[3] for value in entries.values()), default=0.0) or 1.0
    lines = [
        "| function | where | calls | own s | cum s | cum % |",
        "|---|---|---|---|---|---|",
    ]
    for (path, line, name), (_cc, calls, own, cum, _callers) in ranked:
        where = f"{_short(path)}:{line}" if line else _short(path)
        lines.append(
            f"| `{name}` | {where} | {calls:,} | {own:.3f} | {cum:.3f} | {cum / total:.0%} |"
        )
    return "\n".join(lines)


def _logger(handler: logging.Handler) -> logging.Logger:
    log = logging.getLogger("bench.profile")
    log.setLevel(logging.INFO)
    log.propagate = False
    for old in list(log.handlers):
        log.removeHandler(old)
    log.addHandler(handler)
    return log


def profile_caller(url: str, n: int) -> tuple[cProfile.Profile, dict[str, cProfile.Profile], float]:
    """Parts 1 and 3: the emit loop (caller thread) and logbridge's threads, same run."""
    import logbridge

    thread_profiles: dict[str, cProfile.Profile] = {}
    original_run = threading.Thread.run

    def profiled_run(thread: threading.Thread) -> None:
        if not thread.name.startswith("logbridge"):
            original_run(thread)
            return
        profile = thread_profiles.setdefault(thread.name, cProfile.Profile())
        profile.enable()
        try:
            original_run(thread)
        finally:
            profile.disable()

    threading.Thread.run = profiled_run  # type: ignore[method-assign]
    try:
        handler = logbridge.AnalyticsHandler(endpoint=url + "/v1/batch", write_key=WRITE_KEY)
        log = _logger(handler)
        pool = make_pool()
        users = len(pool)
        info = log.info
        caller_profile = cProfile.Profile()
        started = time.perf_counter()
        caller_profile.enable()
        for index in range(n):
            user_id, properties = pool[index % users]
            info(EVENT, extra={"user_id": user_id, **properties})
        caller_profile.disable()
        elapsed = time.perf_counter() - started
        handler.flush(timeout=120)
        handler.close()
        log.removeHandler(handler)
    finally:
        threading.Thread.run = original_run  # type: ignore[method-assign]
    return caller_profile, thread_profiles, elapsed


class _Capture(logging.Handler):
    """Keeps the records it is given, as the listener would receive them."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def handle(self, record: logging.LogRecord) -> bool:  # no lock, no filter: just keep
        self.records.append(record)
        return True


def profile_sender(url: str, n: int) -> tuple[cProfile.Profile, float]:
    """Part 2: ``pipeline.add`` over ready-made records, then ``send``, on this thread."""
    import logbridge

    capture = _Capture()
    log = _logger(capture)
    pool = make_pool()
    for index in range(n):
        user_id, properties = pool[index % len(pool)]
        log.info(EVENT, extra={"user_id": user_id, **properties})
    log.removeHandler(capture)
    handler = logbridge.AnalyticsHandler(endpoint=url + "/v1/batch", write_key=WRITE_KEY)
    # The listener's pipeline, its threads never started: full batches go out inline.
    pipeline = handler.listener.pipeline
    add, send = pipeline.add, pipeline.flush
    profile = cProfile.Profile()
    started = time.perf_counter()
    profile.enable()
    for record in capture.records:
        add(record)
    send()
    profile.disable()
    elapsed = time.perf_counter() - started
    handler.close()
    return profile, elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=50_000, help="events per part (50,000)")
    parser.add_argument("--top", type=int, default=25, help="rows per table (25)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if sys.version_info >= (3, 12):
        print(
            "warning: on Python 3.12+ cProfile sees all threads at once; parts 1 and 3 mix "
            "threads. benchmarks/run --profile uses Python 3.11.",
            file=sys.stderr,
        )
    receiver = Receiver(sys.executable)
    try:
        caller, threads, caller_s = profile_caller(receiver.url, args.n)
        caller_rx = receiver.settle(args.n)
        receiver.reset(0.0)
        sender, sender_s = profile_sender(receiver.url, args.n)
        sender_rx = receiver.settle(args.n)
    finally:
        receiver.stop()
    n, k = args.n, args.top
    parts = [
        "# logbridge profile",
        "",
        f"`benchmarks/run --profile` — {n:,} events per part, cProfile on Python "
        f"{platform.python_version()} (it slows Python code roughly 2x: read the shares). "
        "Generated " + time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()) + ".",
        "",
        f"## 1. Caller path: `log.info(..., extra=...)` with the listener running "
        f"({caller_s / n * 1e6:.1f} µs/event under the profiler; "
        f"{caller_rx['unique']:,}/{n:,} delivered)",
        "",
        "By cumulative time:",
        "",
        top(caller, "cumulative", k),
        "",
        "By own time:",
        "",
        top(caller, "tottime", k),
        "",
        f"## 2. Sender: `pipeline.add` x {n:,} + `send` on one thread "
        f"({sender_s / n * 1e6:.1f} µs/event under the profiler; "
        f"{sender_rx['unique']:,}/{n:,} delivered)",
        "",
        "By cumulative time:",
        "",
        top(sender, "cumulative", k),
        "",
        "By own time:",
        "",
        top(sender, "tottime", k),
        "",
    ]
    for name, profile in sorted(threads.items()):
        parts += [
            f"## 3. Thread `{name}` during part 1 (wall clock: its waits included)",
            "",
            "By own time:",
            "",
            top(profile, "tottime", 15),
            "",
        ]
    args.out.write_text("\n".join(parts))
    print("\n".join(parts))
    print(f"\nwrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
