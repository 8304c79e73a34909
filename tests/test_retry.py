"""Unit tests of logbridge.retry: when to retry and how long to wait."""

from __future__ import annotations

import email.utils
import random
import time

import pytest

from logbridge.delivery.retry import RETRYABLE_STATUSES, RetryPolicy, parse_retry_after

NOW = 1_795_329_000.0  # 2026-11-22T06:30:00Z


class TestDelay:
    """Exponential backoff with full jitter, capped."""

    @pytest.mark.parametrize(("factor", "cap"), [(0.5, 30.0), (1.0, 4.0), (0.1, 100.0), (2.0, 1.0)])
    def test_within_full_jitter_bounds(self, factor: float, cap: float):
        """Attempt n waits within [0, min(cap, factor * 2**n)]."""
        policy = RetryPolicy(backoff_factor=factor, backoff_max=cap)
        rng = random.Random(1234)
        for attempt in range(16):
            ceiling = min(cap, factor * 2**attempt)
            delays = [policy.delay(attempt, rng=rng) for _ in range(200)]
            assert all(0.0 <= delay <= ceiling for delay in delays)
            assert max(delays) > 0.8 * ceiling  # full jitter: the whole range is used
            assert min(delays) < 0.2 * ceiling

    def test_seeded_rng_is_reproducible(self):
        """The same seed gives the same delays."""
        policy = RetryPolicy()
        first = [policy.delay(n, rng=random.Random(7)) for n in range(10)]
        second = [policy.delay(n, rng=random.Random(7)) for n in range(10)]
        assert first == second

    def test_huge_attempt_is_capped(self):
        """A very late attempt waits no more than the cap (no overflow)."""
        policy = RetryPolicy(backoff_factor=0.5, backoff_max=30.0)
        rng = random.Random(3)
        assert all(0.0 <= policy.delay(10_000, rng=rng) <= 30.0 for _ in range(100))

    def test_defaults(self):
        """The defaults are 10 retries, factor 0.5 and a 30 s cap."""
        policy = RetryPolicy()
        assert (policy.max_retries, policy.backoff_factor, policy.backoff_max) == (10, 0.5, 30.0)


class TestRetryAfter:
    """A server's Retry-After is a floor, clamped to the cap."""

    def test_floor(self):
        """The wait is never shorter than Retry-After."""
        policy = RetryPolicy(backoff_factor=0.5, backoff_max=30.0)
        rng = random.Random(5)
        for attempt in range(8):
            ceiling = min(30.0, 0.5 * 2**attempt)
            for _ in range(50):
                delay = policy.delay(attempt, retry_after=3.0, rng=rng)
                assert 3.0 <= delay <= max(3.0, ceiling)

    def test_floor_above_jitter(self):
        """A Retry-After above the backoff range is the wait exactly."""
        policy = RetryPolicy(backoff_factor=0.5, backoff_max=30.0)
        assert policy.delay(0, retry_after=7.5, rng=random.Random(1)) == 7.5

    @pytest.mark.parametrize("retry_after", [31.0, 3600.0, float("inf")])
    def test_clamped_to_cap(self, retry_after: float):
        """A Retry-After beyond the cap waits the cap, so a hostile header cannot park us."""
        policy = RetryPolicy(backoff_factor=0.5, backoff_max=30.0)
        assert policy.delay(0, retry_after=retry_after, rng=random.Random(1)) == 30.0

    def test_zero_retry_after(self):
        """A Retry-After of 0 leaves the jittered backoff as it is."""
        policy = RetryPolicy(backoff_factor=1.0, backoff_max=30.0)
        with_header = policy.delay(3, retry_after=0.0, rng=random.Random(9))
        without = policy.delay(3, rng=random.Random(9))
        assert with_header == without


class TestParseRetryAfter:
    """Retry-After as delta-seconds or an HTTP date."""

    @pytest.mark.parametrize(
        ("value", "expected"), [("120", 120.0), ("0", 0.0), (" 5 ", 5.0), ("1.5", 1.5)]
    )
    def test_seconds(self, value: str, expected: float):
        """Delta-seconds are read as a number of seconds."""
        assert parse_retry_after(value) == expected

    def test_past_date(self):
        """An HTTP date in the past means no wait."""
        assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0

    def test_future_date_with_now(self):
        """An HTTP date in the future is the seconds until it, from ``now``."""
        header = email.utils.formatdate(NOW + 120, usegmt=True)
        assert parse_retry_after(header, now=NOW) == pytest.approx(120.0, abs=1.0)

    def test_future_date_from_the_clock(self):
        """Without ``now``, the seconds are counted from the current time."""
        header = email.utils.formatdate(time.time() + 3600, usegmt=True)
        result = parse_retry_after(header)
        assert result is not None
        assert 3595.0 <= result <= 3601.0

    @pytest.mark.parametrize(
        "value", ["soon", "in a minute", "120 seconds", "Wed, 99 Foo 2015", "12:00", "   "]
    )
    def test_garbage(self, value: str):
        """A value that is neither seconds nor a date is None."""
        assert parse_retry_after(value) is None

    @pytest.mark.parametrize("value", ["", None])
    def test_empty(self, value: str | None):
        """A missing or empty header is None."""
        assert parse_retry_after(value) is None


class TestRetryableStatuses:
    """Which HTTP statuses are worth another try."""

    @pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 599])
    def test_retryable(self, status: int):
        """Timeouts, rate limits and server errors are retried."""
        assert status in RETRYABLE_STATUSES

    @pytest.mark.parametrize("status", [200, 301, 400, 401, 403, 404, 413, 422, 499, 600])
    def test_not_retryable(self, status: int):
        """Success, redirects and other client errors are not retried."""
        assert status not in RETRYABLE_STATUSES

    def test_every_5xx(self):
        """Every 5xx status is retryable."""
        assert set(range(500, 600)) <= RETRYABLE_STATUSES
