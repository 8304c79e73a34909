"""A one-line progress bar for a terminal: counts, rate and time left.

Plain code rather than a dependency: one line redrawn in place is all the CLI needs,
and it is drawn only when the stream is a terminal (never into a pipe or a log).
"""

from __future__ import annotations

import shutil
import time
from typing import TextIO

__all__ = ["ProgressBar"]


class ProgressBar:
    """Redraws ``[#####.....] 120/500 24% 31 msg/s 0:12 left`` at most ten times a second."""

    def __init__(self, total: int, stream: TextIO, *, enabled: bool | None = None) -> None:
        self.total = max(0, total)
        self.stream = stream
        self.enabled = _isatty(stream) if enabled is None else enabled
        self._started = time.monotonic()
        self._drawn_at = 0.0
        self._width = 0

    def update(self, done: int, delivered: int, failed: int, skipped: int, *,
               force: bool = False) -> None:
        """Show ``done`` of ``total`` entries dealt with, and how they went."""
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._drawn_at < 0.1:
            return
        self._drawn_at = now
        elapsed = max(now - self._started, 1e-6)
        rate = delivered / elapsed
        total = max(self.total, done)
        fraction = done / total if total else 1.0
        if rate > 0 and total > done:
            left = _clock((total - done) / rate)
        else:
            left = "-:--" if total > done else "0:00"
        counts = f"{done}/{total} {fraction:4.0%} {rate:6.1f} msg/s {left} left"
        tail = f"  delivered {delivered}, failed {failed}, skipped {skipped}"
        columns = shutil.get_terminal_size((80, 24)).columns
        bar_width = max(10, min(30, columns - len(counts) - len(tail) - 4))
        filled = round(bar_width * fraction)
        line = f"[{'#' * filled}{'.' * (bar_width - filled)}] {counts}{tail}"[: columns - 1]
        self._width = max(self._width, len(line))
        self.stream.write("\r" + line.ljust(self._width))
        self.stream.flush()

    def close(self) -> None:
        """Clear the line, so the summary that follows starts clean."""
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
