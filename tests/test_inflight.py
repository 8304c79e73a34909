"""Several requests in flight: parallel while the endpoint answers, one probe while it fails."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from logbridge.collector import Collector, Faults
from logbridge.delivery import OutboxLimits, RetryPolicy, Sender
from logbridge.destinations.base import Limits
from logbridge.destinations.http import BasicAuth, HttpSettings
from logbridge.destinations.segment import ENVELOPE_BYTES, SegmentDestination
from logbridge.report import Reporter
from logbridge.stats import Stats
from tests.support import run_python, wait_until

Factory = Callable[..., Collector]


def destination_for(collector: Collector, **settings: Any) -> SegmentDestination:
    """A Segment destination posting to ``collector``."""
    limits = Limits(32 * 1024, 500_000, 2_500, ENVELOPE_BYTES)
    return SegmentDestination(
        collector.endpoint, HttpSettings(**settings), BasicAuth("test-key"), limits=limits
    )


def items(batch: int, count: int, pad: int = 0) -> list[bytes]:
    """``count`` serialised track messages with ids ``b<batch>-<i>``."""
    return [
        json.dumps(
            {
                "type": "track", "event": "Parallel", "userId": "u1",
                "properties": {"batch": batch, "i": i, "pad": "p" * pad},
                "messageId": f"b{batch}-{i}", "timestamp": "2026-12-01T08:00:00.000Z",
            }
        ).encode()
        for i in range(count)
    ]


@contextmanager
def running_sender(destination: SegmentDestination, **kwargs: Any) -> Iterator[Sender]:
    """A started sender (its own thread) for ``destination``; stopped after."""
    sender = Sender(
        destination, retry=RetryPolicy(), limits=OutboxLimits(), stats=Stats(),
        reporter=Reporter(), deadline=lambda: None, **kwargs,
    )
    sender.start()
    try:
        yield sender
    finally:
        sender.stop()


class TestInFlight:
    """While the endpoint answers, up to max_in_flight requests are out at once."""

    def test_several_requests_are_in_flight_against_a_slow_endpoint(
        self, collector_factory: Factory
    ) -> None:
        """With 300 ms per request, 20 batches go out 4 at a time: the collector sees 4 at once."""
        collector = collector_factory(faults=Faults(latency=0.3))
        with running_sender(destination_for(collector), max_in_flight=4) as sender:
            for batch in range(20):
                sender.enqueue(items(batch, 10))
            assert sender.flush(timeout=30)
            stats = sender.stats.snapshot(queued=0)
        assert collector.stats()["max_concurrent_batches"] == 4
        assert collector.stats()["unique"] == 200
        assert stats["sent"] == 200

    def test_max_in_flight_one_sends_one_request_at_a_time(
        self, collector_factory: Factory
    ) -> None:
        """max_in_flight=1 restores one request at a time."""
        collector = collector_factory(faults=Faults(latency=0.05))
        with running_sender(destination_for(collector), max_in_flight=1) as sender:
            for batch in range(6):
                sender.enqueue(items(batch, 5))
            assert sender.flush(timeout=30)
        assert collector.stats()["max_concurrent_batches"] == 1
        assert collector.stats()["unique"] == 30

    def test_a_users_session_sends_one_request_at_a_time(
        self, collector_factory: Factory
    ) -> None:
        """A session passed by the user is never used by two requests at once."""
        import requests

        collector = collector_factory(faults=Faults(latency=0.05))
        with requests.Session() as session:
            destination = destination_for(collector, session=session)
            with running_sender(destination, max_in_flight=4) as sender:
                for batch in range(6):
                    sender.enqueue(items(batch, 5))
                assert sender.flush(timeout=30)
        assert collector.stats()["max_concurrent_batches"] == 1
        assert collector.stats()["unique"] == 30


class TestFailuresInFlight:
    """Retrying stays as it was: one probe at a time, splits that send nothing twice."""

    @pytest.mark.slow
    def test_an_outage_sends_one_probe_at_a_time(self, collector_factory: Factory) -> None:
        """After the first requests meet 503s, only one request at a time goes out until back."""
        down = collector_factory(faults=Faults(status=503, status_count=10**9, latency=0.1))
        up = Collector("127.0.0.1", down.port)
        swap = threading.Timer(0.0, lambda: (down.stop(), up.start()))
        try:
            with running_sender(destination_for(down), max_in_flight=4) as sender:
                for batch in range(20):
                    sender.enqueue(items(batch, 10))
                assert down.wait_for_requests(4, timeout=10)  # the first 4, out together
                assert wait_until(lambda: down.stats()["concurrent_batches"] == 0, timeout=10)
                down.reset()  # from here on, count what the probes do
                assert down.wait_for_requests(3, timeout=30)
                swap.start()
                assert wait_until(lambda: up.is_up, timeout=10)
                assert sender.flush(timeout=60)
                stats = sender.stats.snapshot(queued=0)
        finally:
            swap.cancel()
            up.stop()
        assert down.stats()["max_concurrent_batches"] == 1
        assert all(r.status == 503 for r in down.requests)
        assert up.stats()["unique"] == 200
        assert up.stats()["duplicates"] == 0
        assert stats["dropped_total"] == 0

    def test_413_splits_with_parallel_requests_send_nothing_twice(
        self, collector_factory: Factory
    ) -> None:
        """Batches of 40 KB at an endpoint taking 20 KB, 4 at a time: split, each event once."""
        collector = collector_factory(max_body_bytes=20_000)
        with running_sender(destination_for(collector, gzip=False), max_in_flight=4) as sender:
            for batch in range(8):
                sender.enqueue(items(batch, 40, pad=900))
            assert sender.flush(timeout=30)
            stats = sender.stats.snapshot(queued=0)
        statuses = Counter(r.status for r in collector.requests)
        assert statuses[413] >= 8
        summary = collector.stats()
        assert (summary["unique"], summary["duplicates"]) == (320, 0)
        assert stats["sent"] == 320
        assert stats["dropped_total"] == 0


class TestShortJob:
    """A short-lived job at real-world latency loses nothing at a normal exit."""

    def test_twenty_thousand_events_at_fifty_ms_then_exit(
        self, collector_factory: Factory
    ) -> None:
        """20,000 events logged just before exit, 50 ms per request, defaults: all arrive."""
        collector = collector_factory(faults=Faults(latency=0.05))
        code = f"""
        import logging, logbridge
        handler = logbridge.AnalyticsHandler(endpoint={collector.endpoint!r}, write_key="k")
        log = logging.getLogger("analytics")
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        for i in range(20_000):
            log.info("Short Job", extra={{"user_id": "u1", "i": i}})
        """
        result = run_python(code, timeout=120)
        assert result.returncode == 0, result.stderr
        assert collector.wait_for(20_000, timeout=30)
        summary = collector.stats()
        assert (summary["unique"], summary["duplicates"]) == (20_000, 0)
