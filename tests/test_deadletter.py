"""The dead letter: messages that failed for good, with reason and status, replayable."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from logbridge.collector import Collector, validate_message
from tests.support import analytics_logger


def entries(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of a dead letter."""
    return [json.loads(line) for line in path.read_text().splitlines()]


class TestWhatGoesThere:
    """Each way of failing for good leaves its messages with the reason and HTTP status."""

    def test_non_retryable_4xx_is_written_with_status(
        self, collector_factory: Any, tmp_path: Path
    ) -> None:
        """A 401 (wrong write key) dead-letters the batch as rejected, status 401, once."""
        collector: Collector = collector_factory(write_key="right")
        letter = tmp_path / "dead.jsonl"
        with analytics_logger(
            collector.endpoint, write_key="wrong", dead_letter=str(letter), flush_at=2
        ) as (log, handler):
            log.info("Denied", extra={"user_id": "u1", "i": 0})
            log.info("Denied", extra={"user_id": "u1", "i": 1})
            assert handler.flush(timeout=30)
        assert [r.status for r in collector.requests] == [401]
        lines = entries(letter)
        assert [(e["reason"], e["status"]) for e in lines] == [("rejected", 401)] * 2
        assert [e["message"]["properties"]["i"] for e in lines] == [0, 1]
        assert all("invalid write key" in e["error"] for e in lines)
        assert all(e["failed_at"].endswith("Z") for e in lines)

    def test_leftovers_at_shutdown_are_written(
        self, collector: Collector, tmp_path: Path
    ) -> None:
        """Messages still undelivered when shutdown_timeout runs out are dead-lettered."""
        collector.down(600)
        letter = tmp_path / "dead.jsonl"
        with analytics_logger(
            collector.endpoint, dead_letter=str(letter), flush_at=3, shutdown_timeout=0.3
        ) as (log, _):
            for i in range(3):
                log.info("Too Late", extra={"user_id": "u1", "i": i})
        lines = entries(letter)
        assert [(e["reason"], e["status"]) for e in lines] == [("shutdown_timeout", None)] * 3


class TestFormat:
    """The file is private and each line holds a complete message, ready to replay."""

    def test_file_mode_is_0600(self, collector_factory: Any, tmp_path: Path) -> None:
        """The dead letter is created readable by its owner only."""
        collector: Collector = collector_factory(write_key="right")
        letter = tmp_path / "dead.jsonl"
        with analytics_logger(
            collector.endpoint, write_key="wrong", dead_letter=str(letter), flush_at=1
        ) as (log, handler):
            log.info("Private", extra={"user_id": "u1"})
            assert handler.flush(timeout=30)
        assert stat.S_IMODE(os.stat(letter).st_mode) == 0o600
        assert len(entries(letter)) == 1

    def test_messages_are_valid_segment_messages(
        self, collector_factory: Any, tmp_path: Path
    ) -> None:
        """Each message passes the collector's spec check and keeps its messageId."""
        collector: Collector = collector_factory(write_key="right")
        letter = tmp_path / "dead.jsonl"
        ids: list[str] = []
        with analytics_logger(
            collector.endpoint, write_key="wrong", dead_letter=str(letter), flush_at=3,
            on_error=lambda exc, msgs: ids.extend(m["messageId"] for m in msgs),
        ) as (log, handler):
            log.info("identify", extra={"user_id": "u1", "traits": {"plan": "pro"}})
            log.info("Ordered", extra={"user_id": "u1", "total": 9.5})
            log.info("page", extra={"anonymous_id": "a1", "page_name": "Home"})
            assert handler.flush(timeout=30)
        messages = [e["message"] for e in entries(letter)]
        assert [m["type"] for m in messages] == ["identify", "track", "page"]
        assert all(validate_message(m) == [] for m in messages)
        assert [m["messageId"] for m in messages] == ids

    def test_appends_across_handlers(self, collector_factory: Any, tmp_path: Path) -> None:
        """A second handler on the same file appends; earlier lines stay."""
        collector: Collector = collector_factory(write_key="right")
        letter = tmp_path / "dead.jsonl"
        for run in range(2):
            with analytics_logger(
                collector.endpoint, write_key="wrong", dead_letter=str(letter), flush_at=1
            ) as (log, handler):
                log.info("Run", extra={"user_id": "u1", "run": run})
                assert handler.flush(timeout=30)
        assert [e["message"]["properties"]["run"] for e in entries(letter)] == [0, 1]
