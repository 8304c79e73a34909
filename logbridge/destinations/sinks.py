"""Local destinations: console, JSON lines and memory (filled in by the sinks work)."""

from __future__ import annotations

PRESETS: dict[str, object] = {}
