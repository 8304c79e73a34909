"""The Segment-compatible presets (Segment US/EU, RudderStack, Dreamdata) against the collector."""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import logbridge
from logbridge.collector import Collector
from logbridge.collector.oauth import TokenIssuer
from logbridge.destinations.http import HttpSettings
from logbridge.destinations.registry import presets
from logbridge.destinations.segment import (
    DREAMDATA_LIMITS,
    RUDDERSTACK_LIMITS,
    SEGMENT_LIMITS,
    SegmentDestination,
)
from logbridge.errors import ConfigurationError
from tests.oauth_support import CLIENT_ID, KEY_ID, key_pair
from tests.support import analytics_logger, wait_until

CollectorFactory = Callable[..., Collector]


def batches(collector: Collector) -> list[tuple[str, str | None, str]]:
    """(path, Basic user, Authorization scheme) of each batch request answered 200."""
    return [
        (r.path, r.auth_user, (r.headers.get("Authorization") or "-").split(" ")[0])
        for r in collector.requests
        if r.path.endswith("/batch") and r.status == 200
    ]


def flushed(handler: logbridge.AnalyticsHandler, collector: Collector, count: int) -> bool:
    """Flush ``handler`` and wait until the collector holds ``count`` messages."""
    handler.flush()
    return collector.wait_for(count, timeout=20)


class TestPresets:
    """Each preset's URL and limits are the service's, as its documentation gives them."""

    @pytest.mark.parametrize(
        ("name", "url"),
        [
            ("segment", "https://api.segment.io/v1/batch"),
            ("segment-eu", "https://events.eu1.segmentapis.com/v1/batch"),
            ("dreamdata", "https://api.dreamdata.cloud/v1/batch"),
            ("rudderstack", "{data_plane_url}/v1/batch"),
        ],
    )
    def test_urls(self, name: str, url: str):
        """The preset URL is the service's batch endpoint."""
        assert presets()[name].url == url

    def test_segment_limits(self):
        """Segment: 32 KB a message, 500 KB a request, at most 2,500 messages a request."""
        assert SEGMENT_LIMITS.max_message_bytes == 32 * 1024
        assert SEGMENT_LIMITS.max_request_bytes == 500_000
        assert SEGMENT_LIMITS.max_request_count == 2_500

    def test_dreamdata_and_rudderstack_limits(self):
        """Dreamdata: 500 KB a request; RudderStack: its gateway's 4,000 KB default."""
        assert DREAMDATA_LIMITS.max_request_bytes == 500_000
        assert RUDDERSTACK_LIMITS.max_request_bytes == 4_000 * 1024

    @pytest.mark.parametrize("name", ["segment", "segment-eu", "dreamdata", "rudderstack"])
    def test_built_destination_carries_its_limits(self, name: str):
        """The handler's destination has the preset's name and limits."""
        expected = {"segment": SEGMENT_LIMITS, "segment-eu": SEGMENT_LIMITS,
                    "dreamdata": DREAMDATA_LIMITS, "rudderstack": RUDDERSTACK_LIMITS}[name]
        handler = logbridge.AnalyticsHandler(
            destination=name, write_key="k", data_plane_url="https://dp.example.com",
        )
        try:
            destination = handler.listener.destination
            assert (destination.name, destination.limits) == (name, expected)
        finally:
            handler.close()


class TestAgainstTheCollector:
    """Each preset sends to the path and with the auth its service expects."""

    @pytest.mark.parametrize("name", ["segment", "segment-eu", "dreamdata"])
    def test_basic_auth_to_v1_batch(self, name: str, collector_factory: CollectorFactory):
        """The write key is the Basic user, the path /v1/batch; endpoint overrides only the URL."""
        collector = collector_factory(write_key="the-key")
        with analytics_logger(collector.url, destination=name, write_key="the-key") as (log, h):
            log.info("Signed Up", extra={"user_id": "user-1"})
            assert flushed(h, collector, 1)
        assert batches(collector) == [("/v1/batch", "the-key", "Basic")]
        assert collector.messages[0]["event"] == "Signed Up"

    def test_rudderstack_from_its_data_plane_url(self, collector_factory: CollectorFactory):
        """RudderStack posts to <data_plane_url>/v1/batch with the write key as Basic user."""
        collector = collector_factory(write_key="rudder-key")
        handler = logbridge.AnalyticsHandler(
            destination="rudderstack", data_plane_url=collector.url, write_key="rudder-key"
        )
        log = logging.getLogger("analytics.test.rudderstack")
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
        try:
            log.info("Signed Up", extra={"user_id": "user-1"})
            assert flushed(handler, collector, 1)
        finally:
            log.removeHandler(handler)
            handler.close()
        assert batches(collector) == [("/v1/batch", "rudder-key", "Basic")]

    def test_rudderstack_needs_a_data_plane_url(self):
        """Without data_plane_url, RudderStack fails at start-up, naming the option."""
        with pytest.raises(ConfigurationError, match="data_plane_url"):
            logbridge.AnalyticsHandler(destination="rudderstack", write_key="k")

    def test_an_unknown_destination_fails_even_with_an_endpoint(self, collector: Collector):
        """destination='nowhere' is refused although an endpoint is given."""
        with pytest.raises(ConfigurationError, match="nowhere"):
            logbridge.AnalyticsHandler(destination="nowhere", endpoint=collector.endpoint)


class TestLimits:
    """Batches stay within each service's request limits, in bytes and in count."""

    def big_events(self, log: logging.Logger, count: int, size: int) -> None:
        """Log ``count`` events of about ``size`` bytes each."""
        for number in range(count):
            log.info("Report Built", extra={"user_id": "user-1", "body": "x" * size,
                                            "number": number})

    @pytest.mark.parametrize("name", ["segment", "dreamdata"])
    def test_500_kb_a_request(self, name: str, collector_factory: CollectorFactory):
        """40 events of 25 KB (1 MB) reach a 500 KB endpoint in requests under 500 KB."""
        collector = collector_factory(max_body_bytes=500_000)
        with analytics_logger(collector.url, destination=name, gzip=False, flush_at=1_000,
                              flush_interval=30) as (log, handler):
            self.big_events(log, 40, 25_000)
            assert flushed(handler, collector, 40)
        sizes = [r.body_bytes for r in collector.requests if r.path == "/v1/batch"]
        assert len(sizes) >= 3 and max(sizes) <= 500_000
        assert all(r.status == 200 for r in collector.requests)

    def test_rudderstack_4_mb_a_request(self, collector_factory: CollectorFactory):
        """200 events of 25 KB (5 MB) reach RudderStack in requests of at most 4,000 KB."""
        collector = collector_factory(max_body_bytes=4_000 * 1024)
        with analytics_logger(collector.url, destination="rudderstack", gzip=False,
                              flush_at=1_000, flush_interval=30) as (log, handler):
            self.big_events(log, 200, 25_000)
            assert flushed(handler, collector, 200)
        sizes = [r.body_bytes for r in collector.requests if r.path == "/v1/batch"]
        assert len(sizes) >= 2 and max(sizes) <= 4_000 * 1024
        assert max(sizes) > 500_000  # not held to Segment's limit

    def test_at_most_2500_messages_a_request(self, collector_factory: CollectorFactory):
        """3,000 small events go in requests of at most 2,500 messages, Segment's count limit.

        A logbridge message is over 200 bytes, so Segment's 500 KB bind first; with room for
        4 MB a request, the count is what splits the batch.
        """
        collector = collector_factory(max_body_bytes=4_000 * 1024)
        roomy = dataclasses.replace(SEGMENT_LIMITS, max_request_bytes=4_000 * 1024)
        destination = SegmentDestination(collector.endpoint, HttpSettings(), limits=roomy)
        with analytics_logger(collector.url, destination=destination, flush_at=5_000,
                              flush_interval=30, max_queue_size=10_000) as (log, handler):
            for number in range(3_000):
                log.info("Tick", extra={"user_id": "u-1", "n": number})
            assert flushed(handler, collector, 3_000)
        counts = [r.message_count for r in collector.requests if r.path == "/v1/batch"]
        assert sum(counts) == 3_000 and max(counts) == 2_500


class TestOAuthEndToEnd:
    """OAuth through logging, with a real signature checked by the collector."""

    @pytest.mark.parametrize("name", ["segment", "dreamdata"])
    def test_bearer_token_through_logging(
        self, name: str, collector_factory: CollectorFactory, tmp_path: Path
    ):
        """A token from a signed assertion in the header, the write key in the body."""
        issuer = TokenIssuer(key_pair().public_pem, client_id=CLIENT_ID, key_id=KEY_ID)
        collector = collector_factory(oauth=issuer, write_key="source-key")
        private, _ = key_pair().write(tmp_path)
        with analytics_logger(
            collector.url, destination=name, write_key="source-key", oauth_client_id=CLIENT_ID,
            oauth_client_key=str(private), oauth_key_id=KEY_ID, oauth_auth_server=collector.url,
        ) as (log, handler):
            log.info("Signed Up", extra={"user_id": "user-1"})
            assert flushed(handler, collector, 1)
            assert handler.stats()["sent"] == 1
        assert issuer.issued == 1
        assert batches(collector) == [("/v1/batch", None, "Bearer")]

    def test_rate_limited_token_endpoint_is_waited_for(
        self, collector_factory: CollectorFactory
    ):
        """A 429 from the token endpoint delays the batch by its Retry-After; nothing is lost."""
        issuer = TokenIssuer(key_pair().public_pem, rate_limit_count=1, retry_after="1")
        collector = collector_factory(oauth=issuer)
        with analytics_logger(
            collector.url, destination="segment", write_key=None, oauth_client_id=CLIENT_ID,
            oauth_client_key=key_pair().private_pem, oauth_key_id=KEY_ID,
            oauth_auth_server=collector.url,
        ) as (log, handler):
            log.info("Signed Up", extra={"user_id": "user-1"})
            assert flushed(handler, collector, 1)
            assert wait_until(lambda: handler.stats()["sent"] == 1)
        tokens = [r.status for r in collector.requests if r.path == "/token"]
        assert tokens == [429, 200]

    def test_rudderstack_takes_no_oauth(self):
        """OAuth is Segment's and Dreamdata's: configured for RudderStack, it is refused."""
        with pytest.raises(ConfigurationError, match=r"rudderstack.*not OAuth"):
            logbridge.AnalyticsHandler(
                destination="rudderstack", data_plane_url="https://dp.example.com",
                write_key="k", oauth_client_id=CLIENT_ID,
                oauth_client_key=key_pair().private_pem, oauth_key_id=KEY_ID,
            )

    def test_without_the_extra_fails_at_start_up(self, monkeypatch: pytest.MonkeyPatch):
        """Without PyJWT, OAuth fails when the handler is made, naming the extra."""
        monkeypatch.setitem(sys.modules, "jwt", None)
        with pytest.raises(ConfigurationError, match=r"logbridge\[oauth\]"):
            logbridge.AnalyticsHandler(
                destination="segment", write_key="k", oauth_client_id=CLIENT_ID,
                oauth_client_key=key_pair().private_pem, oauth_key_id=KEY_ID,
            )

    def test_unreadable_key_fails_at_start_up(self, tmp_path: Path):
        """A missing key file fails when the handler is made, naming oauth_client_key."""
        with pytest.raises(ConfigurationError, match="oauth_client_key"):
            logbridge.AnalyticsHandler(
                destination="dreamdata", write_key="k", oauth_client_id=CLIENT_ID,
                oauth_client_key=str(tmp_path / "nope.pem"), oauth_key_id=KEY_ID,
            )

    def test_oauth_still_needs_the_write_key(self):
        """Segment takes the write key in the body beside the bearer: OAuth alone is refused."""
        with pytest.raises(ConfigurationError, match="write_key is required"):
            logbridge.AnalyticsHandler(
                destination="segment", oauth_client_id=CLIENT_ID,
                oauth_client_key=key_pair().private_pem, oauth_key_id=KEY_ID,
            )

    def test_key_without_client_id_fails_at_start_up(self):
        """OAuth settings without oauth_client_id are refused, naming it, not ignored."""
        with pytest.raises(ConfigurationError, match="oauth_client_id is missing"):
            logbridge.AnalyticsHandler(
                destination="segment", write_key="k",
                oauth_client_key=key_pair().private_pem, oauth_key_id=KEY_ID,
            )
