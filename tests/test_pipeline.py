"""Batches from the pipeline: ready at flush_at, filled to the destination's limits on a backlog."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from logbridge.collector import Collector
from logbridge.destinations.base import Limits
from logbridge.destinations.http import BasicAuth, HttpSettings
from logbridge.destinations.segment import ENVELOPE_BYTES, SegmentDestination
from logbridge.pipeline import Pipeline
from logbridge.report import Reporter
from logbridge.stats import Stats
from tests.support import analytics_logger


def destination(
    url: str = "http://127.0.0.1:9/v1/batch",
    *,
    count: int = 2_500,
    max_bytes: int = 500_000,
    gzip: bool = True,
) -> SegmentDestination:
    """A Segment destination with request limits of ``count`` messages and ``max_bytes``."""
    limits = Limits(32 * 1024, max_bytes, count, ENVELOPE_BYTES)
    return SegmentDestination(url, HttpSettings(gzip=gzip), BasicAuth("k"), limits=limits)


def record(i: int, pad: int = 0) -> logging.LogRecord:
    """A track record as ``log.info("Piped", extra=...)`` makes it."""
    return logging.makeLogRecord(
        {"name": "analytics", "msg": "Piped", "levelno": logging.INFO, "levelname": "INFO",
         "user_id": "u1", "i": i, "pad": "p" * pad}
    )


def pipeline_into(
    batches: list[list[bytes]], backlog: Callable[[], bool], **limits: Any
) -> Pipeline:
    """A pipeline with flush_at=10 whose batches go to ``batches``."""
    return Pipeline(
        destination(**limits), batches.append, flush_at=10, flush_interval=60.0, context={},
        on_error=None, stats=Stats(), reporter=Reporter(), backlog=backlog,
    )


class TestBacklog:
    """flush_at says when a batch may leave; a backlog fills it to the destination's limits."""

    def test_quiet_traffic_leaves_at_flush_at(self) -> None:
        """With nothing waiting, batches leave at flush_at messages."""
        batches: list[list[bytes]] = []
        pipeline = pipeline_into(batches, lambda: False, count=25)
        for i in range(100):
            pipeline.add(record(i))
        assert [len(b) for b in batches] == [10] * 10

    def test_a_backlog_fills_batches_to_the_count_limit(self) -> None:
        """With records waiting, batches grow to the destination's 25-message limit."""
        batches: list[list[bytes]] = []
        pipeline = pipeline_into(batches, lambda: True, count=25)
        for i in range(100):
            pipeline.add(record(i))
        assert [len(b) for b in batches] == [25] * 4

    def test_a_backlog_fills_batches_to_the_byte_limit(self) -> None:
        """With records waiting, a batch grows until the next message would pass 20,000 bytes."""
        batches: list[list[bytes]] = []
        pipeline = pipeline_into(batches, lambda: True, max_bytes=20_000)
        for i in range(100):
            pipeline.add(record(i, pad=900))
        pipeline.flush()
        sizes = [ENVELOPE_BYTES + sum(map(len, b)) + len(b) - 1 for b in batches]
        assert all(size <= 20_000 for size in sizes)
        one = len(batches[0][0]) + 1
        assert all(size > 20_000 - one for size in sizes[:-1])
        assert len(batches[0]) > 10
        assert sum(map(len, batches)) == 100

    def test_the_backlog_ending_sends_a_ready_batch_at_once(self) -> None:
        """Once the queue is empty, a batch past flush_at leaves with the next message."""
        batches: list[list[bytes]] = []
        waiting = [True]
        pipeline = pipeline_into(batches, lambda: waiting[0], count=25)
        for i in range(15):
            pipeline.add(record(i))
        assert batches == []
        waiting[0] = False
        pipeline.add(record(15))
        assert [len(b) for b in batches] == [16]

    def test_a_burst_through_the_handler_reaches_the_count_limit(
        self, collector: Collector
    ) -> None:
        """3,000 events logged at once arrive in requests of up to 100, the destination's limit."""
        target = destination(collector.endpoint, count=100)
        with analytics_logger(
            collector.endpoint, destination=target, flush_at=10
        ) as (log, handler):
            for i in range(3000):
                log.info("Burst", extra={"user_id": "u1", "i": i})
            assert handler.flush(timeout=30)
        counts = [r.message_count for r in collector.requests]
        assert sum(counts) == 3000
        assert max(counts) == 100
        assert len(counts) < 300  # not one request per flush_at
