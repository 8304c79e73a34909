"""Delivery when the endpoint misbehaves: outages, 5xx, 413, Retry-After, full queues."""

from __future__ import annotations

import email.utils
import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import logbridge
from logbridge.collector import Collector, Faults
from logbridge.delivery.retry import RetryPolicy
from tests.support import analytics_logger, run_python, wait_until


def dead_letters(path: Path) -> list[dict[str, Any]]:
    """The entries of a dead-letter file."""
    return [json.loads(line) for line in path.read_text().splitlines()]


class TestOutage:
    """An endpoint that refuses connections for a while loses nothing."""

    def test_events_logged_while_down_arrive_when_back(self, collector: Collector) -> None:
        """Every event logged during a 3 s outage arrives once, probed with held-back retries."""
        collector.down(3.0)
        with analytics_logger(collector.endpoint, flush_at=50, flush_interval=0.2) as (log, h):
            for i in range(1000):
                log.info("During Outage", extra={"user_id": "u1", "i": i})
            assert collector.wait_until_up(timeout=30)
            assert collector.wait_for(1000, timeout=60)
            stats = h.stats()
        assert sorted(m["properties"]["i"] for m in collector.messages) == list(range(1000))
        assert collector.stats()["duplicates"] == 0
        assert stats["dropped_total"] == 0
        # 20 batches waited; one probe at a time on a backoff schedule, not 20 x 11 attempts.
        assert 1 <= stats["retries"] <= 15  # type: ignore[operator]

    @pytest.mark.slow
    def test_one_probe_at_a_time_while_the_endpoint_answers_503(
        self, collector_factory: Any
    ) -> None:
        """While the endpoint answers 503, 20 batches cost a few backed-off probes, no retries."""
        down: Collector = collector_factory(faults=Faults(status=503, status_count=10**9))
        port = down.port
        up = Collector("127.0.0.1", port)

        def come_back() -> None:
            down.stop()
            up.start()

        swap = threading.Timer(6.0, come_back)
        try:
            # max_retries=1: were the 503s charged to the batch, the first would be given up.
            with analytics_logger(down.endpoint, flush_at=50, max_retries=1) as (log, handler):
                for i in range(1000):
                    log.info("Held Back", extra={"user_id": "u1", "i": i})
                swap.start()
                assert wait_until(lambda: up.is_up, timeout=30)
                probes = len(down.requests)
                assert up.wait_for(1000, timeout=60)
                stats = handler.stats()
        finally:
            swap.cancel()
            up.stop()
        assert all(r.status == 503 for r in down.requests)
        # Backoff 0.5 s x 2^n with full jitter: ~4-8 probes in 6 s; without holding back,
        # each of the 20 batches would have been tried at once.
        assert 2 <= probes <= 12
        assert stats["dropped_total"] == 0
        assert sorted(m["properties"]["i"] for m in up.messages) == list(range(1000))


class TestWhatCostsRetries:
    """Unavailability costs a batch no retries; an answer that blames it does."""

    @pytest.mark.parametrize("status", [429, 502, 503, 504])
    def test_unavailable_statuses_are_waited_out(
        self, collector_factory: Any, status: int
    ) -> None:
        """Two answers of 429/502/503/504 with max_retries=0: held, then delivered."""
        collector: Collector = collector_factory(faults=Faults(status=status, status_count=2))
        with analytics_logger(collector.endpoint, max_retries=0, flush_at=1) as (log, h):
            log.info("Waited", extra={"user_id": "u1"})
            assert collector.wait_for(1, timeout=30)
            stats = h.stats()
        assert [r.status for r in collector.requests] == [status, status, 200]
        assert stats["dropped_total"] == 0

    @pytest.mark.parametrize("status", [500, 408])
    def test_blaming_statuses_are_charged(self, collector_factory: Any, status: int) -> None:
        """A 500 or 408 with max_retries=0 gives the batch up: retries_exhausted."""
        collector: Collector = collector_factory(faults=Faults(status=status, status_count=2))
        with analytics_logger(collector.endpoint, max_retries=0, flush_at=1) as (log, h):
            log.info("Charged", extra={"user_id": "u1"})
            assert h.flush(timeout=30)
            stats = h.stats()
        assert [r.status for r in collector.requests] == [status]
        assert stats["dropped"]["retries_exhausted"] == 1  # type: ignore[index]


class TestServerErrors:
    """Random 500s cost retries, never events."""

    @pytest.mark.slow
    def test_twenty_percent_500s_eight_threads_twenty_thousand_each(
        self, collector_factory: Any
    ) -> None:
        """With 20% of requests failing with 500, 8 x 20,000 events all arrive."""
        collector: Collector = collector_factory(faults=Faults(fail_rate=0.2, seed=7))
        threads, per_thread = 8, 20_000
        total = threads * per_thread
        with analytics_logger(
            collector.endpoint, flush_at=1000, max_queue_size=total + 1000
        ) as (log, handler):

            def emit(index: int) -> None:
                for i in range(per_thread):
                    log.info("Load", extra={"user_id": f"u{index}", "i": i})

            workers = [threading.Thread(target=emit, args=(t,)) for t in range(threads)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            assert handler.flush(timeout=150)
            stats = handler.stats()
        summary = collector.stats()
        assert summary["faults"]["error"] > 0
        assert stats["dropped_total"] == 0
        assert stats["sent"] == total
        ids = Counter(m["messageId"] for m in collector.messages)
        assert len(ids) == total  # every event, and any duplicate shares its messageId
        seen = {(m["userId"], m["properties"]["i"]) for m in collector.messages}
        assert len(seen) == total


class TestOversize:
    """A 413 splits a batch; a message the endpoint never takes goes to the dead letter."""

    def test_413_splits_the_batch_until_it_fits(self, collector_factory: Any) -> None:
        """A 100 KB batch at an endpoint taking 20 KB is split and delivered whole."""
        collector: Collector = collector_factory(max_body_bytes=20_000)
        with analytics_logger(
            collector.endpoint, gzip=False, flush_at=100, flush_interval=60
        ) as (log, handler):
            for i in range(100):
                log.info("Chunky", extra={"user_id": "u1", "i": i, "pad": "p" * 900})
            assert handler.flush(timeout=30)
            stats = handler.stats()
        statuses = Counter(r.status for r in collector.requests)
        assert statuses[413] >= 1
        assert sorted(m["properties"]["i"] for m in collector.messages) == list(range(100))
        assert stats["dropped_total"] == 0

    def test_single_message_too_large_goes_to_the_dead_letter(
        self, collector_factory: Any, tmp_path: Path
    ) -> None:
        """A lone message over the endpoint's limit is dead-lettered as oversize with 413."""
        collector: Collector = collector_factory(max_body_bytes=3_000)
        letter = tmp_path / "dead.jsonl"
        errors: list[BaseException] = []
        with analytics_logger(
            collector.endpoint, gzip=False, flush_at=10, flush_interval=60,
            dead_letter=str(letter), on_error=lambda exc, msgs: errors.append(exc),
        ) as (log, handler):
            log.info("Small", extra={"user_id": "u1", "i": 0})
            log.info("Too Big", extra={"user_id": "u1", "pad": "b" * 5_000})
            log.info("Small", extra={"user_id": "u1", "i": 1})
            assert handler.flush(timeout=30)
            stats = handler.stats()
        assert [m["event"] for m in collector.messages] == ["Small", "Small"]
        (entry,) = dead_letters(letter)
        assert (entry["reason"], entry["status"]) == ("oversize", 413)
        assert entry["message"]["event"] == "Too Big"
        assert stats["dropped"]["oversize"] == 1  # type: ignore[index]
        assert isinstance(errors[0], logbridge.DeliveryError)
        assert getattr(errors[0], "status", None) == 413


class TestRetrySchedule:
    """Backoff, Retry-After, messageIds across attempts, and giving up."""

    def test_the_same_message_id_on_every_attempt(self, collector_factory: Any) -> None:
        """Attempts that time out after the endpoint took them arrive as same-id duplicates."""
        collector: Collector = collector_factory(faults=Faults(latency=0.6))
        with analytics_logger(
            collector.endpoint, timeout=0.2, flush_at=5, flush_interval=60, shutdown_timeout=0
        ) as (log, handler):
            for i in range(5):
                log.info("Again", extra={"user_id": "u1", "i": i})
            handler.flush(timeout=0.01)
            assert collector.wait_for(15, timeout=60)  # three attempts or more, all recorded
        copies: dict[str, list[dict[str, Any]]] = {}
        for message in collector.messages:
            copies.setdefault(message["messageId"], []).append(message)
        assert len(copies) == 5
        for same in copies.values():
            assert len(same) >= 3
            assert all(copy == same[0] for copy in same)  # the very same message each time
        assert collector.stats()["duplicates"] == len(collector.messages) - 5

    def test_retry_after_seconds_is_a_floor(self, collector_factory: Any) -> None:
        """A 429 with Retry-After: 2 delays the next attempt by at least 2 seconds."""
        collector: Collector = collector_factory(
            faults=Faults(status=429, status_count=1, retry_after="2")
        )
        with analytics_logger(collector.endpoint, flush_at=1) as (log, handler):
            started = time.monotonic()
            log.info("Rate Limited", extra={"user_id": "u1"})
            assert collector.wait_for(1, timeout=30)
            elapsed = time.monotonic() - started
            stats = handler.stats()
        assert [r.status for r in collector.requests] == [429, 200]
        assert elapsed >= 1.9
        assert stats["retries"] == 1

    def test_retry_after_http_date_is_a_floor(self, collector_factory: Any) -> None:
        """A 503 with Retry-After as an HTTP date three seconds ahead is waited out."""
        when = email.utils.formatdate(time.time() + 3, usegmt=True)
        collector: Collector = collector_factory(
            faults=Faults(status=503, status_count=1, retry_after=when)
        )
        with analytics_logger(collector.endpoint, flush_at=1) as (log, _):
            started = time.monotonic()
            log.info("Maintenance", extra={"user_id": "u1"})
            assert collector.wait_for(1, timeout=30)
            elapsed = time.monotonic() - started
        assert [r.status for r in collector.requests] == [503, 200]
        assert elapsed >= 1.5  # the date has one-second resolution

    @pytest.mark.parametrize("far", ["86400", "date"])
    def test_retry_after_is_clamped_to_the_cap(self, collector_factory: Any, far: str) -> None:
        """A Retry-After of a day (seconds or date) waits no longer than the cap on one wait."""
        value = far if far != "date" else email.utils.formatdate(time.time() + 86400, usegmt=True)
        collector: Collector = collector_factory(
            faults=Faults(status=429, status_count=1, retry_after=value)
        )
        with analytics_logger(collector.endpoint, flush_at=1) as (log, handler):
            handler.listener.sender.retry = RetryPolicy(backoff_max=1.0)
            started = time.monotonic()
            log.info("Not Parked", extra={"user_id": "u1"})
            assert collector.wait_for(1, timeout=30)
            elapsed = time.monotonic() - started
        assert 0.9 <= elapsed < 15

    def test_retries_exhausted_go_to_the_dead_letter(
        self, collector_factory: Any, tmp_path: Path
    ) -> None:
        """With every request failing 500, a batch is tried 1 + max_retries times, then dead."""
        collector: Collector = collector_factory(faults=Faults(fail_rate=1.0))
        letter = tmp_path / "dead.jsonl"
        errors: list[tuple[BaseException, list[dict[str, Any]]]] = []
        with analytics_logger(
            collector.endpoint, max_retries=2, flush_at=3, dead_letter=str(letter),
            on_error=lambda exc, msgs: errors.append((exc, msgs)),
        ) as (log, handler):
            for i in range(3):
                log.info("Doomed", extra={"user_id": "u1", "i": i})
            assert handler.flush(timeout=30)
            stats = handler.stats()
        assert len(collector.requests) == 3
        entries = dead_letters(letter)
        assert [e["message"]["properties"]["i"] for e in entries] == [0, 1, 2]
        assert {(e["reason"], e["status"]) for e in entries} == {("retries_exhausted", 500)}
        assert stats["dropped"]["retries_exhausted"] == 3  # type: ignore[index]
        (failure, messages), = errors
        assert getattr(failure, "status", None) == 500
        assert len(messages) == 3

    def test_retry_budget_gives_up_on_time(self, collector_factory: Any, tmp_path: Path) -> None:
        """With max_retries high, the wall-clock retry_budget ends a failing batch's retries."""
        collector: Collector = collector_factory(faults=Faults(fail_rate=1.0))
        letter = tmp_path / "dead.jsonl"
        with analytics_logger(
            collector.endpoint, max_retries=1000, retry_budget=1.0, flush_at=1,
            dead_letter=str(letter),
        ) as (log, handler):
            started = time.monotonic()
            log.info("Budgeted", extra={"user_id": "u1"})
            assert handler.flush(timeout=60)
            elapsed = time.monotonic() - started
        assert elapsed >= 1.0
        assert len(collector.requests) >= 2
        assert [e["reason"] for e in dead_letters(letter)] == ["retries_exhausted"]


class TestBoundedQueue:
    """Past the bounds: drop newest and count (default) or wait a while (block=True)."""

    def test_default_drops_newest_and_never_waits_for_the_network(
        self, collector_factory: Any
    ) -> None:
        """At a 2 s-per-request endpoint, a burst past max_queue_size is dropped and counted."""
        collector: Collector = collector_factory(faults=Faults(latency=2.0))
        with analytics_logger(
            collector.endpoint, flush_at=10, max_queue_size=50, shutdown_timeout=0
        ) as (log, handler):
            started = time.monotonic()
            for i in range(5000):
                log.info("Burst", extra={"user_id": "u1", "i": i})
            elapsed = time.monotonic() - started
            stats = handler.stats()
        assert elapsed < 2.0  # less than one request: the caller never waited for it
        assert stats["dropped"]["queue_full"] >= 4000  # type: ignore[index]

    def test_block_waits_for_room_and_loses_nothing(self, collector_factory: Any) -> None:
        """With block=True a burst past the bounds waits for room: every event arrives."""
        collector: Collector = collector_factory(faults=Faults(latency=0.05))
        with analytics_logger(
            collector.endpoint, flush_at=10, flush_interval=0.05, max_queue_size=20,
            block=True, block_timeout=30,
        ) as (log, handler):
            for i in range(300):
                log.info("Patient", extra={"user_id": "u1", "i": i})
            assert handler.flush(timeout=60)
            stats = handler.stats()
        assert stats["dropped_total"] == 0
        assert sorted(m["properties"]["i"] for m in collector.messages) == list(range(300))

    def test_block_gives_up_after_block_timeout(self, collector: Collector) -> None:
        """With block=True and the endpoint down, a caller waits block_timeout, then drops."""
        collector.down(600)
        with analytics_logger(
            collector.endpoint, flush_at=5, max_queue_size=10, block=True,
            block_timeout=0.05, shutdown_timeout=0,
        ) as (log, handler):
            longest = 0.0
            for i in range(100):
                started = time.monotonic()
                log.info("Blocked", extra={"user_id": "u1", "i": i})
                longest = max(longest, time.monotonic() - started)
            stats = handler.stats()
        assert longest < 1.0  # bounded by block_timeout, not by the network
        assert stats["dropped"]["queue_full"] > 0  # type: ignore[index]

    @pytest.mark.slow
    def test_resident_memory_stays_flat_with_the_endpoint_down(
        self, collector: Collector
    ) -> None:
        """350,000 events at a down endpoint: RSS stays flat; the excess is counted queue_full."""
        collector.down(600)
        code = f"""
        import gc, json, logging, logbridge

        def rss_kb():
            with open("/proc/self/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])

        handler = logbridge.AnalyticsHandler(
            endpoint={collector.endpoint!r}, write_key="k", max_queue_size=1000,
            max_queue_bytes=32768, shutdown_timeout=0)
        log = logging.getLogger("analytics")
        log.addHandler(handler)
        log.setLevel(logging.INFO)

        def emit(count):
            for i in range(count):
                log.info("Flood", extra={{"user_id": "u1", "i": i, "tag": "x" * 50}})

        emit(50_000)
        gc.collect()
        before = rss_kb()
        emit(300_000)
        gc.collect()
        after = rss_kb()
        logging.shutdown()  # what is still held is counted too
        print(json.dumps({{"before": before, "after": after, "stats": handler.stats()}}))
        """
        result = run_python(code, timeout=120)
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["after"] - report["before"] < 4096  # kB: flat, whatever was emitted
        stats = report["stats"]
        assert stats["dropped"]["queue_full"] >= 340_000
        assert stats["sent"] == 0
        assert stats["dropped_total"] == 350_000  # every event logged is accounted for


class TestSlowEndpoint:
    """A slow endpoint costs the caller nothing."""

    def test_two_seconds_per_request_does_not_slow_the_caller(
        self, collector_factory: Any
    ) -> None:
        """At 2 s per request, 3,000 events are logged in less time than one request takes."""
        collector: Collector = collector_factory(faults=Faults(latency=2.0))
        with analytics_logger(collector.endpoint, flush_at=1000) as (log, handler):
            started = time.monotonic()
            for i in range(3000):
                log.info("Quick", extra={"user_id": "u1", "i": i})
            elapsed = time.monotonic() - started
            assert handler.flush(timeout=60)
        assert elapsed < 2.0
        assert len(collector.messages) == 3000
