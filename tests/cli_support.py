"""Helpers for the command-line tests: ``python -m logbridge`` in a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from tests.support import ROOT


def run_cli(
    *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m logbridge ARGS`` with no LOGBRIDGE_* from this environment."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("LOGBRIDGE_")}
    child_env.pop("NO_COLOR", None)
    child_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "logbridge", *args],
        capture_output=True, text=True, timeout=timeout, cwd=str(cwd or ROOT), env=child_env,
        check=False,
    )


def closed_port() -> int:
    """A port of 127.0.0.1 where nothing listens (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def one_line(text: str) -> str:
    """``text`` when it is exactly one line (the shape of every error); fails otherwise."""
    lines = text.strip("\n").splitlines()
    assert len(lines) == 1, f"expected one line, got {len(lines)}: {text!r}"
    return lines[0]
