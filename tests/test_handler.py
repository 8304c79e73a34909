"""AnalyticsHandler end to end: logging calls in, spec messages out at a real collector."""

from __future__ import annotations

import copy
import logging
import threading
import time
from typing import Any

import pytest

import logbridge
from logbridge.collector import Collector, Faults
from tests.support import analytics_logger, wait_until


def by_type(collector: Collector) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for message in collector.messages:
        grouped.setdefault(message["type"], []).append(message)
    return grouped


class TestMessageTypes:
    """Every message type arrives as a valid spec message, in both styles."""

    def test_event_name_style_is_an_implicit_track(self, collector: Collector) -> None:
        """The log message is the event name; other extra keys become properties."""
        with analytics_logger(collector.endpoint) as (log, handler):
            log.info("Order Completed", extra={"user_id": "u1", "order_id": "o1", "revenue": 99.99})
            assert handler.flush()
        assert collector.wait_for(1)
        (message,) = collector.messages
        assert message["type"] == "track"
        assert message["event"] == "Order Completed"
        assert message["userId"] == "u1"
        assert message["properties"] == {"order_id": "o1", "revenue": 99.99}
        assert collector.invalid == []

    def test_event_name_comes_from_get_message(self, collector: Collector) -> None:
        """A %-style message is formatted with its args to make the event name."""
        with analytics_logger(collector.endpoint) as (log, handler):
            log.info("Plan %s Chosen", "Pro", extra={"user_id": "u1"})
            handler.flush()
        assert collector.wait_for(1)
        assert collector.messages[0]["event"] == "Plan Pro Chosen"

    @pytest.mark.parametrize("camel", [False, True], ids=["snake_case", "camelCase"])
    def test_every_type_in_type_style(self, collector: Collector, camel: bool) -> None:
        """identify, track, page, screen, group and alias arrive with their spec fields."""
        k = {
            "user_id": "userId" if camel else "user_id",
            "anonymous_id": "anonymousId" if camel else "anonymous_id",
            "group_id": "groupId" if camel else "group_id",
            "previous_id": "previousId" if camel else "previous_id",
            "message_id": "messageId" if camel else "message_id",
        }
        with analytics_logger(collector.endpoint) as (log, handler):
            log.info(
                "identify",
                extra={k["user_id"]: "u1", "traits": {"email": "a@example.com"}, "plan": "pro"},
            )
            log.info("track", extra={k["user_id"]: "u1", "event": "Article Read", "minutes": 4})
            log.info(
                "page",
                extra={
                    k["anonymous_id"]: "a1",
                    "page_name": "Pricing",
                    "category": "Docs",
                    "url": "/pricing",
                },
            )
            log.info(
                "screen",
                extra={k["user_id"]: "u1", "screen_name": "Profile", "category": "Settings"},
            )
            log.info(
                "group",
                extra={
                    k["user_id"]: "u1",
                    k["group_id"]: "acme",
                    "traits": {"employees": 150},
                    "industry": "Tech",
                },
            )
            log.info(
                "alias",
                extra={k["user_id"]: "u1", k["previous_id"]: "a1", k["message_id"]: "fixed-id-1"},
            )
            assert handler.flush()
        assert collector.wait_for(6)
        assert collector.invalid == []
        got = by_type(collector)
        assert got["identify"][0]["traits"] == {"email": "a@example.com", "plan": "pro"}
        assert got["track"][0]["event"] == "Article Read"
        assert got["track"][0]["properties"] == {"minutes": 4}
        page = got["page"][0]
        assert (page["name"], page["category"], page["anonymousId"]) == ("Pricing", "Docs", "a1")
        assert page["properties"] == {"url": "/pricing"}
        assert (got["screen"][0]["name"], got["screen"][0]["category"]) == ("Profile", "Settings")
        group = got["group"][0]
        assert group["groupId"] == "acme"
        assert group["traits"] == {"employees": 150, "industry": "Tech"}
        alias = got["alias"][0]
        assert (alias["userId"], alias["previousId"], alias["messageId"]) == (
            "u1",
            "a1",
            "fixed-id-1",
        )
        for message in collector.messages:
            assert message["context"]["library"]["name"] == "logbridge"
            assert message["timestamp"].endswith("Z")

    def test_structlog_style_dict_message(self, collector: Collector) -> None:
        """A record whose msg is the event dict (structlog's formatter path) is read whole."""
        with analytics_logger(collector.endpoint) as (log, handler):
            log.info(
                {"event": "identify", "user_id": "u9", "traits": {"plan": "team"}},
                extra={"_logger": object(), "_name": "info"},
            )
            log.info({"event": "Report Exported", "user_id": "u9", "rows": 10})
            handler.flush()
        assert collector.wait_for(2)
        got = by_type(collector)
        assert got["identify"][0]["traits"] == {"plan": "team"}
        assert got["track"][0]["event"] == "Report Exported"
        assert got["track"][0]["properties"] == {"rows": 10}

    def test_handler_context_is_merged(self, collector: Collector) -> None:
        """A handler-level context reaches every message, with the library's own entry."""
        with analytics_logger(collector.endpoint, context={"app": {"name": "shop"}}) as (log, h):
            log.info("Viewed", extra={"user_id": "u1", "context": {"ip": "203.0.113.9"}})
            h.flush()
        assert collector.wait_for(1)
        context = collector.messages[0]["context"]
        assert context["app"] == {"name": "shop"}
        assert context["ip"] == "203.0.113.9"
        assert context["library"] == {"name": "logbridge", "version": logbridge.__version__}

    def test_callers_dicts_are_not_mutated(self, collector: Collector) -> None:
        """The dicts passed in extra are left exactly as they were."""
        properties = {"items": [{"sku": "a"}], "nested": {"x": 1}}
        context = {"ip": "198.51.100.1"}
        before = copy.deepcopy((properties, context))
        with analytics_logger(collector.endpoint) as (log, handler):
            log.info(
                "Cart Viewed",
                extra={
                    "user_id": "u1",
                    "properties": properties,
                    "context": context,
                    "extra_key": 1,
                },
            )
            handler.flush()
        assert collector.wait_for(1)
        assert (properties, context) == before

    def test_level_filtering_still_applies(self, collector: Collector) -> None:
        """A record below the logger's level never becomes an event."""
        with analytics_logger(collector.endpoint) as (log, handler):
            log.debug("Hidden", extra={"user_id": "u1"})
            log.info("Shown", extra={"user_id": "u1"})
            handler.flush()
        assert collector.wait_for(1)
        assert [m["event"] for m in collector.messages] == ["Shown"]


class TestBatching:
    """Batches go out by count, by size and by age."""

    def test_flush_by_count(self, collector: Collector) -> None:
        """flush_at messages make one request without waiting for the interval."""
        with analytics_logger(collector.endpoint, flush_at=5, flush_interval=3600) as (log, _):
            for burst in range(2):
                for i in range(5):
                    log.info("Tick", extra={"user_id": "u1", "i": i})
                assert collector.wait_for(5 * (burst + 1), timeout=10)
            assert [r.message_count for r in collector.requests] == [5, 5]

    def test_flush_by_interval(self, collector: Collector) -> None:
        """A lone message goes out flush_interval after it was queued, with no flush call."""
        with analytics_logger(collector.endpoint, flush_interval=0.2) as (log, _):
            log.info("Lonely", extra={"user_id": "u1"})
            assert collector.wait_for(1, timeout=10)

    def test_flush_by_size(self, collector: Collector) -> None:
        """No request body exceeds 500 KB: a message that would overflow starts a new batch."""
        blob = "x" * 30_000
        with analytics_logger(
            collector.endpoint, flush_at=1000, flush_interval=3600, gzip=False
        ) as (log, _):
            for i in range(20):
                log.info("Big", extra={"user_id": "u1", "i": i, "blob": blob})
            # The 17th message no longer fits: the first 16 leave without any flush.
            assert collector.wait_for(16, timeout=10)
        assert collector.wait_for(20)
        assert len(collector.requests) >= 2
        assert all(r.body_bytes <= 500_000 for r in collector.requests)

    def test_oversize_message_is_dropped_and_reported(self, collector: Collector) -> None:
        """A message over 32 KB serialised is dropped with its reason; the rest flows."""
        errors: list[tuple[Exception, list[dict[str, Any]]]] = []
        with analytics_logger(
            collector.endpoint, on_error=lambda exc, msgs: errors.append((exc, msgs))
        ) as (log, h):
            log.info("Huge", extra={"user_id": "u1", "blob": "y" * 40_000})
            log.info("Small", extra={"user_id": "u1"})
            h.flush()
            stats = h.stats()
        assert collector.wait_for(1)
        assert [m["event"] for m in collector.messages] == ["Small"]
        assert stats["dropped"]["oversize"] == 1  # type: ignore[index]
        assert len(errors) == 1
        assert "32768" in str(errors[0][0])
        assert errors[0][1][0]["event"] == "Huge"


class TestWire:
    """What goes over HTTP: gzip, auth, user agent, envelope."""

    @pytest.mark.parametrize("gzip", [True, False])
    def test_gzip_on_and_off(self, collector: Collector, gzip: bool) -> None:
        """gzip=True (the default) compresses the body; gzip=False sends plain JSON."""
        with analytics_logger(collector.endpoint, gzip=gzip) as (log, handler):
            log.info("Zipped", extra={"user_id": "u1"})
            handler.flush()
        assert collector.wait_for(1)
        (request,) = collector.requests
        assert request.content_encoding == ("gzip" if gzip else None)

    def test_basic_auth_with_the_write_key(self, collector_factory: Any) -> None:
        """The write key is the Basic auth user name; the collector accepts it."""
        collector = collector_factory(write_key="secret-wk")
        with analytics_logger(collector.endpoint, write_key="secret-wk") as (log, handler):
            log.info("Authed", extra={"user_id": "u1"})
            handler.flush()
        assert collector.wait_for(1)
        assert collector.requests[0].auth_user == "secret-wk"
        assert collector.requests[0].user_agent.startswith("logbridge/")

    def test_wrong_write_key_is_rejected_not_retried(self, collector_factory: Any) -> None:
        """A 401 is not retried; the messages are counted as rejected."""
        collector = collector_factory(write_key="right")
        with analytics_logger(collector.endpoint, write_key="wrong") as (log, handler):
            log.info("Denied", extra={"user_id": "u1"})
            handler.flush()
            stats = handler.stats()
        assert len(collector.requests) == 1
        assert collector.requests[0].status == 401
        assert stats["dropped"]["rejected"] == 1  # type: ignore[index]


class TestNeverRaises:
    """Bad input never raises into the logging call and never vanishes silently."""

    def test_invalid_record_is_counted_reported_and_passed_to_on_error(
        self, collector: Collector, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A record with no user is dropped, counted, reported on 'logbridge', and on_error'd."""
        errors: list[Exception] = []
        with (
            caplog.at_level(logging.WARNING, logger="logbridge"),
            analytics_logger(collector.endpoint, on_error=lambda exc, msgs: errors.append(exc)) as (
                log,
                handler,
            ),
        ):
            log.info("No User", extra={"order_id": "o1"})
            log.info("Has User", extra={"user_id": "u1"})
            handler.flush()
            stats = handler.stats()
        assert collector.wait_for(1)
        assert [m["event"] for m in collector.messages] == ["Has User"]
        assert stats["dropped"]["invalid"] == 1  # type: ignore[index]
        assert isinstance(errors[0], logbridge.InvalidEvent)
        assert any("user_id or anonymous_id" in r.getMessage() for r in caplog.records)

    def test_unencodable_values_become_json(self, collector: Collector) -> None:
        """Objects JSON can't hold are converted; the event still arrives."""

        class Weird:
            def __str__(self) -> str:
                raise RuntimeError("no str")

        with analytics_logger(collector.endpoint) as (log, handler):
            log.info(
                "Odd",
                extra={"user_id": "u1", "weird": Weird(), "nan": float("nan"), "tags": {"b", "a"}},
            )
            handler.flush()
        assert collector.wait_for(1)
        properties = collector.messages[0]["properties"]
        assert properties["nan"] is None
        assert properties["tags"] == ["a", "b"]
        assert "Weird" in properties["weird"]

    def test_record_after_close_is_counted(self, collector: Collector) -> None:
        """A record emitted after close() is counted as after_close, not silently lost."""
        handler = logbridge.AnalyticsHandler(endpoint=collector.endpoint, write_key="k")
        log = logging.getLogger("analytics.after_close")
        log.propagate = False
        log.setLevel(logging.INFO)
        log.addHandler(handler)
        log.info("Before", extra={"user_id": "u1"})
        handler.close()
        log.info("After", extra={"user_id": "u1"})
        log.removeHandler(handler)
        assert handler.stats()["dropped"]["after_close"] == 1  # type: ignore[index]
        assert [m["event"] for m in collector.messages] == ["Before"]

    def test_full_queue_drops_newest_and_counts(self, collector_factory: Any) -> None:
        """Past max_queue_size, the newest records are dropped and counted, never blocking."""
        collector = collector_factory(faults=Faults(status=503, status_count=1, retry_after="1"))
        with analytics_logger(collector.endpoint, flush_at=1, max_queue_size=5) as (log, h):
            log.info("First", extra={"user_id": "u1"})
            # Once the listener has taken "First", it waits out a 503's Retry-After of 1 s.
            assert wait_until(lambda: h.stats()["processed"] == 1)
            started = time.perf_counter()
            for i in range(50):
                log.info("Flood", extra={"user_id": "u1", "i": i})
            elapsed = time.perf_counter() - started
            assert h.flush(timeout=30)
            dropped = h.stats()["dropped"]["queue_full"]  # type: ignore[index]
        assert elapsed < 1.0  # the caller never waited for the network
        assert dropped >= 40
        assert len(collector.messages) == 51 - dropped


class TestLoopGuard:
    """The handler never feeds on its own HTTP traffic."""

    def test_root_handler_with_requests_debug_logging(self, collector: Collector) -> None:
        """On the root logger at DEBUG with urllib3 debug on, only the app's events are sent."""
        root = logging.getLogger()
        handler = logbridge.AnalyticsHandler(endpoint=collector.endpoint, write_key="k", flush_at=2)
        old_level = root.level
        urllib3_logger = logging.getLogger("urllib3")
        old_urllib3 = urllib3_logger.level
        root.addHandler(handler)
        root.setLevel(logging.DEBUG)
        urllib3_logger.setLevel(logging.DEBUG)
        try:
            for i in range(6):
                logging.getLogger("app").info("Clicked", extra={"user_id": "u1", "i": i})
            assert handler.flush()
        finally:
            root.removeHandler(handler)
            root.setLevel(old_level)
            urllib3_logger.setLevel(old_urllib3)
            handler.close()
        assert collector.wait_for(6)
        assert len(collector.messages) == 6
        assert {m["event"] for m in collector.messages} == {"Clicked"}


class TestConcurrency:
    """Many threads, one handler: nothing lost, nothing doubled."""

    def test_eight_threads_ten_thousand_each(self, collector: Collector) -> None:
        """8 threads x 10,000 events all arrive exactly once."""
        threads, per_thread = 8, 10_000
        with analytics_logger(collector.endpoint) as (log, handler):

            def emit(thread_index: int) -> None:
                for i in range(per_thread):
                    log.info("Load", extra={"user_id": f"u{thread_index}", "i": i})

            workers = [threading.Thread(target=emit, args=(t,)) for t in range(threads)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            assert handler.flush(timeout=60)
            stats = handler.stats()
        assert collector.wait_for(threads * per_thread, timeout=60)
        summary = collector.stats()
        assert summary["received"] == threads * per_thread
        assert summary["duplicates"] == 0
        seen = {(m["userId"], m["properties"]["i"]) for m in collector.messages}
        assert len(seen) == threads * per_thread
        assert stats["sent"] == threads * per_thread
        assert stats["dropped_total"] == 0


class TestDisabled:
    """disabled=True validates and counts but sends nothing."""

    def test_disabled_sends_nothing(self, collector: Collector) -> None:
        """No request reaches the endpoint; records are still processed and validated."""
        with analytics_logger(collector.endpoint, disabled=True) as (log, handler):
            log.info("Quiet", extra={"user_id": "u1"})
            log.info("Invalid Quiet", extra={})
            handler.flush()
            stats = handler.stats()
        assert collector.requests == []
        assert stats["processed"] == 2
        assert stats["dropped"]["invalid"] == 1  # type: ignore[index]
        assert stats["sent"] == 0


class TestRetries:
    """Failed requests are retried when worth it, with the same messageIds."""

    def test_500s_are_retried_with_the_same_message_ids(self, collector_factory: Any) -> None:
        """Two 500s, then success: the batch arrives once, its messageIds unchanged."""
        collector = collector_factory(faults=Faults(status=500, status_count=2))
        with analytics_logger(collector.endpoint) as (log, handler):
            log.info("Retried", extra={"user_id": "u1", "message_id": "m-1"})
            assert handler.flush(timeout=30)
            stats = handler.stats()
        assert [r.status for r in collector.requests] == [500, 500, 200]
        assert [m["messageId"] for m in collector.messages] == ["m-1"]
        assert stats["retries"] == 2
        assert stats["sent"] == 1

    def test_429_waits_at_least_retry_after(self, collector_factory: Any) -> None:
        """A 429 with Retry-After: 1 delays the next attempt by at least a second."""
        collector = collector_factory(faults=Faults(status=429, status_count=1, retry_after="1"))
        with analytics_logger(collector.endpoint) as (log, handler):
            started = time.monotonic()
            log.info("Throttled", extra={"user_id": "u1"})
            assert handler.flush(timeout=30)
            elapsed = time.monotonic() - started
        assert [r.status for r in collector.requests] == [429, 200]
        assert elapsed >= 1.0
        assert len(collector.messages) == 1

    def test_400_is_not_retried(self, collector_factory: Any) -> None:
        """A 400 fails the batch at once: one request, on_error with the status, counted."""
        errors: list[tuple[Exception, list[dict[str, Any]]]] = []
        collector = collector_factory(faults=Faults(status=400, status_count=1))
        with analytics_logger(
            collector.endpoint, on_error=lambda exc, msgs: errors.append((exc, msgs))
        ) as (log, handler):
            log.info("Refused", extra={"user_id": "u1"})
            assert handler.flush(timeout=30)
            stats = handler.stats()
        assert [r.status for r in collector.requests] == [400]
        assert stats["dropped"]["rejected"] == 1  # type: ignore[index]
        ((exc, messages),) = errors
        assert isinstance(exc, logbridge.DeliveryError) and exc.status == 400
        assert messages[0]["event"] == "Refused"


class TestDuplicateHandlers:
    """Two handlers for one destination and key on one logger's path: warned once."""

    def _pair(
        self, endpoint: str, second_key: str
    ) -> tuple[logging.Logger, logbridge.AnalyticsHandler, logbridge.AnalyticsHandler]:
        parent = logging.getLogger("analytics.dup")
        child = logging.getLogger("analytics.dup.checkout")
        parent.setLevel(logging.INFO)
        parent.propagate = False
        first = logbridge.AnalyticsHandler(endpoint=endpoint, write_key="k")
        second = logbridge.AnalyticsHandler(endpoint=endpoint, write_key=second_key)
        parent.addHandler(first)  # as dictConfig would put it
        child.addHandler(second)  # ...and application code again
        return child, first, second

    def _close(self, *handlers: logbridge.AnalyticsHandler) -> None:
        for name in ("analytics.dup", "analytics.dup.checkout"):
            for handler in handlers:
                logging.getLogger(name).removeHandler(handler)
        for handler in handlers:
            handler.close()

    def test_same_endpoint_and_key_warns_once(
        self, collector: Collector, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Every event arrives twice, and logbridge says so once, without the key."""
        log, first, second = self._pair(collector.endpoint, "k")
        try:
            with caplog.at_level(logging.WARNING, logger="logbridge"):
                for i in range(3):
                    log.info("Paid", extra={"user_id": "u1", "i": i})
                assert first.flush() and second.flush()
        finally:
            self._close(first, second)
        assert collector.wait_for(6)
        duplicates = [r.getMessage() for r in caplog.records if "twice" in r.getMessage()]
        assert len(duplicates) == 1, duplicates
        assert "analytics.dup.checkout" in duplicates[0]
        assert collector.endpoint in duplicates[0]
        assert "'k'" not in duplicates[0]

    def test_other_key_is_not_a_duplicate(
        self, collector: Collector, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Two sources (another write key) to one endpoint are not reported."""
        log, first, second = self._pair(collector.endpoint, "other")
        try:
            with caplog.at_level(logging.WARNING, logger="logbridge"):
                log.info("Paid", extra={"user_id": "u1"})
                assert first.flush() and second.flush()
        finally:
            self._close(first, second)
        assert not [r for r in caplog.records if "twice" in r.getMessage()]


class TestNearTypeWords:
    """``log.info("Identify", ...)`` is a track named "Identify", reported once with a hint."""

    def test_reported_once_per_word_with_a_hint(
        self, collector: Collector, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Each near word is one line with its hint; the events still arrive as tracks."""
        with (
            caplog.at_level(logging.WARNING, logger="logbridge"),
            analytics_logger(collector.endpoint) as (log, handler),
        ):
            for word in ("Identify", "identify ", "Identify", "identify "):
                log.info(word, extra={"user_id": "u1", "email": "a@example.com"})
            assert handler.flush()
        assert collector.wait_for(4)
        assert {m["type"] for m in collector.messages} == {"track"}
        hints = [r.getMessage() for r in caplog.records if "did you mean" in r.getMessage()]
        assert len(hints) == 2, hints
        assert all("did you mean 'identify'?" in hint for hint in hints)
        assert "'Identify'" in hints[0] and "'identify '" in hints[1]
