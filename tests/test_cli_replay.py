"""``logbridge replay``: a dead-letter file sent again, from the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from logbridge.collector import Collector
from tests.support import ROOT, analytics_logger


def make_dead_letter(collector_factory: Any, path: Path, count: int) -> list[str]:
    """Fill ``path`` with ``count`` messages rejected by a collector (401); their ids."""
    refusing: Collector = collector_factory(write_key="right")
    ids: list[str] = []
    with analytics_logger(
        refusing.endpoint, write_key="wrong", dead_letter=str(path), flush_at=10,
        on_error=lambda exc, msgs: ids.extend(m["messageId"] for m in msgs),
    ) as (log, handler):
        for i in range(count):
            log.info("Replayed", extra={"user_id": "u1", "i": i})
        assert handler.flush(timeout=30)
    return ids


def replay(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m logbridge replay ARGS``."""
    return subprocess.run(
        [sys.executable, "-m", "logbridge", "replay", *args],
        capture_output=True, text=True, timeout=120, cwd=str(ROOT), env=env, check=False,
    )


class TestReplay:
    """Messages go out again with their messageIds; the exit code says whether all did."""

    def test_sends_every_message_with_its_message_id(
        self, collector_factory: Any, tmp_path: Path
    ) -> None:
        """A 25-message dead letter arrives whole at the endpoint; exit code 0."""
        letter = tmp_path / "dead.jsonl"
        ids = make_dead_letter(collector_factory, letter, 25)
        target: Collector = collector_factory(write_key="right")
        result = replay(str(letter), "--endpoint", target.endpoint, "--write-key", "right")
        assert result.returncode == 0, result.stderr
        assert "sent 25 of 25" in result.stdout
        assert sorted(m["messageId"] for m in target.messages) == sorted(ids)
        assert target.invalid == []

    def test_write_key_from_the_environment(
        self, collector_factory: Any, tmp_path: Path
    ) -> None:
        """Without --write-key, LOGBRIDGE_WRITE_KEY is used (and the key is never printed)."""
        letter = tmp_path / "dead.jsonl"
        make_dead_letter(collector_factory, letter, 3)
        target: Collector = collector_factory(write_key="env-secret-key")
        env = {"PATH": "/usr/bin:/bin", "LOGBRIDGE_WRITE_KEY": "env-secret-key"}
        result = replay(str(letter), "--endpoint", target.endpoint, env=env)
        assert result.returncode == 0, result.stderr
        assert len(target.messages) == 3
        assert "env-secret-key" not in result.stdout + result.stderr

    def test_what_still_fails_goes_to_a_new_dead_letter(
        self, collector_factory: Any, tmp_path: Path
    ) -> None:
        """Rejected again: exit code 1, the reason on stderr, the messages in --dead-letter."""
        letter, again = tmp_path / "dead.jsonl", tmp_path / "again.jsonl"
        make_dead_letter(collector_factory, letter, 4)
        target: Collector = collector_factory(write_key="right")
        result = replay(
            str(letter), "--endpoint", target.endpoint, "--write-key", "still-wrong",
            "--dead-letter", str(again),
        )
        assert result.returncode == 1
        assert "4 not delivered (rejected: 4)" in result.stderr
        lines = [json.loads(line) for line in again.read_text().splitlines()]
        assert [e["message"]["properties"]["i"] for e in lines] == [0, 1, 2, 3]

    def test_lines_without_a_message_are_skipped_and_said(
        self, collector: Collector, tmp_path: Path
    ) -> None:
        """Garbage lines are counted on stderr; the good lines are still sent."""
        letter = tmp_path / "dead.jsonl"
        good = {"reason": "rejected", "status": 401, "message": {
            "type": "track", "event": "Kept", "userId": "u1", "messageId": "m-1",
            "timestamp": "2026-11-22T06:30:00.000Z", "properties": {}}}
        letter.write_text("not json\n" + json.dumps(good) + "\n" + '{"no": "message"}\n\n')
        result = replay(str(letter), "--endpoint", collector.endpoint)
        assert result.returncode == 0, result.stderr
        assert "skipped 2 lines" in result.stderr
        assert [m["messageId"] for m in collector.messages] == ["m-1"]

    def test_endpoint_down_gives_up_within_the_timeout(
        self, collector: Collector, tmp_path: Path
    ) -> None:
        """With the endpoint refusing, replay stops after --timeout with exit code 1."""
        letter = tmp_path / "dead.jsonl"
        message = {"type": "track", "event": "Waiting", "userId": "u1", "messageId": "m-2",
                   "timestamp": "2026-11-22T06:30:00.000Z", "properties": {}}
        letter.write_text(json.dumps({"message": message}) + "\n")
        collector.down(600)
        result = replay(str(letter), "--endpoint", collector.endpoint, "--timeout", "1")
        assert result.returncode == 1
        assert "1 not delivered (shutdown_timeout: 1)" in result.stderr


class TestUsage:
    """Mistakes are refused with exit code 2 and a message."""

    def test_missing_file(self, collector: Collector, tmp_path: Path) -> None:
        """A file that does not exist: exit code 2, no traffic."""
        result = replay(str(tmp_path / "nope.jsonl"), "--endpoint", collector.endpoint)
        assert result.returncode == 2
        assert "nope.jsonl" in result.stderr
        assert collector.requests == []

    def test_endpoint_and_destination_exclude_each_other(self, tmp_path: Path) -> None:
        """--endpoint and --destination together are refused by the parser."""
        result = replay(str(tmp_path / "x"), "--endpoint", "http://127.0.0.1:1",
                        "--destination", "segment")
        assert result.returncode == 2
        assert "not allowed with" in result.stderr

    def test_remote_destination_needs_a_write_key(self, tmp_path: Path) -> None:
        """Segment without a write key is a configuration error, before anything is sent."""
        letter = tmp_path / "dead.jsonl"
        letter.write_text("")
        result = replay(str(letter), "--destination", "segment",
                        env={"PATH": "/usr/bin:/bin"})
        assert result.returncode == 2
        assert "write_key is required" in result.stderr
