"""The README's first command: the demo delivers every message type to the collector."""

from __future__ import annotations

import subprocess
import sys

from tests.support import ROOT


class TestDemo:
    """examples/demo.py, as scripts/demo runs it."""

    def test_demo_delivers_every_type(self) -> None:
        """The demo exits 0 after all ten events of the six types arrived, none invalid."""
        result = subprocess.run(
            [sys.executable, "examples/demo.py"],
            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "messages: 10 (1 alias, 2 group, 2 identify, 1 page, 1 screen, 3 track)" in (
            result.stdout
        )
        assert "invalid by the spec: 0" in result.stdout
        assert "OK: every event arrived" in result.stdout
