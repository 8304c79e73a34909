"""The typed facade: spec calls validated at the call, then logged to a real collector."""

from __future__ import annotations

import datetime as dt
import io
import logging
import logging.handlers
import queue
import subprocess
import sys
from typing import Any

import pytest

import logbridge
from logbridge.collector import Collector
from logbridge.listener import AnalyticsListener
from logbridge.options import Options
from tests.support import ROOT, analytics_logger


class TestCalls:
    """Each method arrives as the spec message of its type."""

    def test_every_method_arrives_valid(self, collector: Collector) -> None:
        """track, identify, page, screen, group and alias arrive with their spec fields."""
        with analytics_logger(collector.endpoint) as (log, handler):
            analytics = logbridge.Analytics(log)
            analytics.track("Order Completed", user_id="u1", properties={"revenue": 9.99})
            analytics.identify("u1", traits={"email": "a@example.com"})
            analytics.page("Pricing", category="Docs", anonymous_id="a1",
                           properties={"url": "/pricing"})
            analytics.screen("Profile", category="Settings", user_id="u1")
            analytics.group("acme", user_id="u1", traits={"employees": 150})
            analytics.alias("a1", user_id="u1")
            assert handler.flush()
        assert collector.wait_for(6)
        assert collector.invalid == []
        track, identify, page, screen, group, alias = collector.messages
        assert (track["type"], track["event"], track["userId"]) == (
            "track", "Order Completed", "u1"
        )
        assert track["properties"] == {"revenue": 9.99}
        assert identify["traits"] == {"email": "a@example.com"}
        assert (page["name"], page["category"], page["anonymousId"]) == ("Pricing", "Docs", "a1")
        assert page["properties"] == {"url": "/pricing"}
        assert (screen["type"], screen["name"], screen["category"]) == (
            "screen", "Profile", "Settings"
        )
        assert (group["groupId"], group["traits"]) == ("acme", {"employees": 150})
        assert (alias["previousId"], alias["userId"]) == ("a1", "u1")

    def test_returns_the_message_id_that_is_sent(self, collector: Collector) -> None:
        """The returned messageId is the one the endpoint receives; a given one is kept."""
        with analytics_logger(collector.endpoint) as (log, handler):
            analytics = logbridge.Analytics(log)
            generated = analytics.track("Viewed", user_id="u1")
            given = analytics.identify("u1", message_id="fixed-1")
            handler.flush()
        assert collector.wait_for(2)
        assert [m["messageId"] for m in collector.messages] == [generated, "fixed-1"]
        assert given == "fixed-1"

    def test_optional_spec_fields(self, collector: Collector) -> None:
        """timestamp, context and integrations reach the message as the spec places them."""
        moment = dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=dt.timezone.utc)
        with analytics_logger(collector.endpoint) as (log, handler):
            logbridge.Analytics(log).track(
                "Signed Up", anonymous_id="a1", timestamp=moment,
                context={"ip": "203.0.113.9"}, integrations={"All": False, "Mixpanel": True},
            )
            handler.flush()
        assert collector.wait_for(1)
        (message,) = collector.messages
        assert message["timestamp"] == "2026-01-02T03:04:05.678Z"
        assert message["context"]["ip"] == "203.0.113.9"
        assert message["integrations"] == {"All": False, "Mixpanel": True}

    def test_event_named_like_a_message_type_is_a_track(self, collector: Collector) -> None:
        """track("identify") is a track whose event is "identify", not an identify."""
        with analytics_logger(collector.endpoint) as (log, handler):
            logbridge.Analytics(log).track("identify", user_id="u1", properties={"step": 2})
            handler.flush()
        assert collector.wait_for(1)
        (message,) = collector.messages
        assert (message["type"], message["event"]) == ("track", "identify")
        assert message["properties"] == {"step": 2}

    def test_bound_identity_is_used_and_explicit_wins(self, collector: Collector) -> None:
        """A bound user_id satisfies validation and is sent; an explicit one replaces it."""
        with analytics_logger(collector.endpoint) as (log, handler):
            analytics = logbridge.Analytics(log)
            with logbridge.bind(user_id="bound", context={"ip": "198.51.100.7"}):
                analytics.track("Bound")
                analytics.track("Explicit", user_id="explicit")
            handler.flush()
        assert collector.wait_for(2)
        bound, explicit = collector.messages
        assert (bound["userId"], explicit["userId"]) == ("bound", "explicit")
        assert bound["context"]["ip"] == explicit["context"]["ip"] == "198.51.100.7"


class TestValidation:
    """A malformed call raises InvalidEvent at once and logs nothing."""

    @pytest.mark.parametrize(
        ("call", "reason"),
        [
            (lambda a: a.track("Orphan"), "user_id or anonymous_id"),
            (lambda a: a.track("", user_id="u1"), "event"),
            (lambda a: a.group("", user_id="u1"), "groupId"),
            (lambda a: a.alias("a1"), "userId"),
            (lambda a: a.identify(True), "userId must be a string"),
            (lambda a: a.track("X", user_id="u1", properties=["a"]), "properties must be a dict"),
            (lambda a: a.page("P", user_id="u1", timestamp="yesterday"), "ISO-8601"),
            (lambda a: a.track("Big", user_id="u1", properties={"b": "x" * 40_000}), "32768"),
        ],
        ids=["no-identity", "empty-event", "empty-group", "alias-no-user", "bool-user",
             "properties-list", "bad-timestamp", "oversize"],
    )
    def test_raises_and_sends_nothing(self, collector: Collector, call: Any, reason: str) -> None:
        """The call raises InvalidEvent naming the problem; no record reaches the handler."""
        with analytics_logger(collector.endpoint) as (log, handler):
            with pytest.raises(logbridge.InvalidEvent, match=reason) as raised:
                call(logbridge.Analytics(log))
            handler.flush()
            stats = handler.stats()
        assert isinstance(raised.value, ValueError)
        assert stats["processed"] == 0
        assert collector.requests == []

    def test_validates_even_when_the_level_filters_it(self, collector: Collector) -> None:
        """A call below the logger's level still raises when malformed, and sends nothing."""
        with analytics_logger(collector.endpoint) as (log, handler):
            log.setLevel(logging.WARNING)
            analytics = logbridge.Analytics(log)
            with pytest.raises(logbridge.InvalidEvent):
                analytics.track("Orphan")
            analytics.track("Quiet", user_id="u1")
            handler.flush()
            assert handler.stats()["processed"] == 0
        assert collector.requests == []


class TestLogging:
    """A valid call is an ordinary log record: levels, filters and handlers rule."""

    def test_handler_filter_applies(self, collector: Collector) -> None:
        """A filter on the handler drops a facade call like any record."""
        with analytics_logger(collector.endpoint) as (log, handler):
            handler.addFilter(lambda record: record.getMessage() != "Secret")
            analytics = logbridge.Analytics(log)
            analytics.track("Secret", user_id="u1")
            analytics.track("Public", user_id="u1")
            handler.flush()
        assert collector.wait_for(1)
        assert [m["event"] for m in collector.messages] == ["Public"]

    def test_other_handlers_see_the_callers_line(self, collector: Collector) -> None:
        """A text handler shows the event name, with the caller's file and line."""
        stream = io.StringIO()
        text = logging.StreamHandler(stream)
        text.setFormatter(logging.Formatter("%(levelname)s %(filename)s:%(lineno)d %(message)s"))
        with analytics_logger(collector.endpoint) as (log, _):
            log.addHandler(text)
            line = sys._getframe().f_lineno + 1
            logbridge.Analytics(log).track("Order Completed", user_id="u1")
            logbridge.Analytics(log, level=logging.WARNING).identify("u1")
        assert stream.getvalue().splitlines() == [
            f"INFO test_analytics.py:{line} Order Completed",
            f"WARNING test_analytics.py:{line + 1} identify",
        ]

    def test_logger_by_name(self, collector: Collector) -> None:
        """Analytics("name") logs on logging.getLogger("name")."""
        with analytics_logger(collector.endpoint) as (log, handler):
            analytics = logbridge.Analytics(log.name)
            assert analytics.logger is log
            analytics.track("Named", user_id="u1")
            handler.flush()
        assert collector.wait_for(1)
        assert collector.messages[0]["event"] == "Named"


class TestFlush:
    """Analytics.flush delivers through the handlers its logger reaches."""

    def test_flush_delivers_before_returning(self, collector: Collector) -> None:
        """With a one-hour interval, flush() returns only after the message arrived."""
        with analytics_logger(collector.endpoint, flush_interval=3600) as (log, _):
            analytics = logbridge.Analytics(log)
            analytics.track("Flushed", user_id="u1")
            assert analytics.flush(timeout=10)
            assert [m["event"] for m in collector.messages] == ["Flushed"]

    def test_flush_reaches_the_parents_handler(self, collector: Collector) -> None:
        """A child logger's facade flushes the AnalyticsHandler on its parent."""
        with analytics_logger(collector.endpoint, flush_interval=3600) as (log, _):
            analytics = logbridge.Analytics(log.getChild("orders"))
            analytics.track("From Child", user_id="u1")
            assert analytics.flush(timeout=10)
            assert [m["event"] for m in collector.messages] == ["From Child"]

    def test_flush_without_a_reachable_handler_flushes_all(self, collector: Collector) -> None:
        """A facade whose logger reaches no AnalyticsHandler flushes every open one."""
        with analytics_logger(collector.endpoint, flush_interval=3600) as (log, _):
            log.info("Held", extra={"user_id": "u1"})
            orphan = logging.getLogger("analytics_orphan")
            orphan.propagate = False
            try:
                assert logbridge.Analytics(orphan).flush(timeout=10)
            finally:
                orphan.propagate = True
            assert [m["event"] for m in collector.messages] == ["Held"]

    def test_flush_reaches_a_stdlib_queue_handler_listener(self, collector: Collector) -> None:
        """A stdlib QueueHandler whose listener is an AnalyticsListener is flushed too."""
        records: queue.Queue[Any] = queue.Queue()
        options = Options.from_kwargs(endpoint=collector.endpoint, flush_interval=3600)
        listener = AnalyticsListener(records, options=options)
        front = logging.handlers.QueueHandler(records)
        front.listener = listener  # what dictConfig's queue form sets
        log = logging.getLogger("analytics.test_queue_form")
        log.propagate = False
        log.setLevel(logging.INFO)
        log.addHandler(front)
        listener.start()
        try:
            analytics = logbridge.Analytics(log)
            analytics.track("Queued", user_id="u1")
            assert analytics.flush(timeout=10)
            assert [m["event"] for m in collector.messages] == ["Queued"]
        finally:
            log.removeHandler(front)
            listener.stop()


class TestExample:
    """examples/facade.py runs against its own local collector."""

    def test_example_runs(self) -> None:
        """The example exits 0, having delivered six messages and rejected one call."""
        result = subprocess.run(
            [sys.executable, "examples/facade.py"], cwd=ROOT, capture_output=True, text=True,
            timeout=60, check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "OK: six calls, six valid messages" in result.stdout
        assert "rejected at the call, never logged: a track needs user_id" in result.stdout
