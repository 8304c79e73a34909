"""logbridge.testing.capture and the pytest plugin: events captured, nothing sent."""

from __future__ import annotations

import decimal
import importlib.metadata
import logging
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

import logbridge
from logbridge.collector import Collector
from logbridge.testing import CapturedEvents, capture
from tests.support import ROOT, analytics_logger, run_python

_names = iter(range(10**6))


@pytest.fixture
def plain_logger() -> Iterator[logging.Logger]:
    """A fresh logger with no handler and no level of its own (as in an unconfigured app)."""
    logger = logging.getLogger(f"analytics_plain{next(_names)}")
    yield logger
    logger.handlers.clear()
    logger.setLevel(logging.NOTSET)


def run_pytest(
    args: list[str], *, cwd: Path, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run pytest in a fresh interpreter; LOGBRIDGE_* variables only as given."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("LOGBRIDGE_")}
    child_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=cwd, env=child_env, capture_output=True, text=True, timeout=120, check=False,
    )


class TestWithAnAnalyticsHandler:
    """An application that configured an AnalyticsHandler: its emit hands records over."""

    def test_captures_instead_of_sending(self, collector: Collector) -> None:
        """Events logged in the block are captured; the handler sends none of them."""
        with analytics_logger(collector.endpoint) as (log, handler):
            with capture() as events:
                log.info("Order Completed", extra={"user_id": "u1", "revenue": 9.99})
                log.info("identify", extra={"user_id": "u1", "traits": {"plan": "pro"}})
            assert handler.flush()
            stats = handler.stats()
        assert [(m["type"], m["userId"]) for m in events] == [("track", "u1"), ("identify", "u1")]
        assert events[0]["properties"] == {"revenue": 9.99}
        assert collector.requests == []
        assert stats["processed"] == 0

    def test_captured_message_is_the_one_sent(self, collector: Collector) -> None:
        """Outside a capture, the same call sends exactly the message the capture recorded."""
        fields = {"user_id": "u1", "message_id": "m-1", "timestamp": "2026-01-02T03:04:05Z",
                  "price": decimal.Decimal("9.99"), "tags": {"b", "a"}}
        with analytics_logger(collector.endpoint, context={"app": {"name": "shop"}}) as (log, h):
            with logbridge.bind(context={"ip": "203.0.113.9"}):
                with capture() as events:
                    log.info("Order Completed", extra=fields)
                log.info("Order Completed", extra=fields)
            h.flush()
        assert collector.wait_for(1)
        assert list(events) == collector.messages
        assert events[0]["context"]["app"] == {"name": "shop"}
        assert (events[0]["properties"]["tags"], events[0]["properties"]["price"]) == (
            ["a", "b"], 9.99
        )

    def test_levels_and_filters_still_rule(self, collector: Collector) -> None:
        """A record below the logger's level or refused by the handler's filter is not captured."""
        with analytics_logger(collector.endpoint) as (log, handler):
            handler.addFilter(lambda record: record.getMessage() != "Filtered")
            with capture() as events:
                log.debug("Too Low", extra={"user_id": "u1"})
                log.info("Filtered", extra={"user_id": "u1"})
                log.info("Kept", extra={"user_id": "u1"})
        assert events.event_names() == ["Kept"]

    def test_a_record_reaching_two_handlers_is_captured_once(self, collector: Collector) -> None:
        """A record seen by an AnalyticsHandler on the logger and one on its parent counts once."""
        with analytics_logger(collector.endpoint) as (parent, _):
            child = parent.getChild("orders")
            second = logbridge.AnalyticsHandler(endpoint=collector.endpoint, write_key="k")
            child.addHandler(second)
            try:
                with capture() as events:
                    child.info("Once", extra={"user_id": "u1"})
            finally:
                child.removeHandler(second)
                second.close()
        assert events.event_names() == ["Once"]

    def test_sending_resumes_after_the_block(self, collector: Collector) -> None:
        """Once the block ends, the handler sends again (and the capture records no more)."""
        with analytics_logger(collector.endpoint) as (log, handler):
            with capture() as events:
                log.info("Captured", extra={"user_id": "u1"})
            log.info("Sent", extra={"user_id": "u1"})
            handler.flush()
        assert collector.wait_for(1)
        assert [m["event"] for m in collector.messages] == ["Sent"]
        assert events.event_names() == ["Captured"]


class TestWithoutAnAnalyticsHandler:
    """An application whose analytics loggers reach no AnalyticsHandler (tests unconfigured)."""

    def test_unconfigured_logger_is_captured_at_info(self, plain_logger: logging.Logger) -> None:
        """A named logger with no level gets INFO for the block, and its own level back after."""
        with capture(loggers=[plain_logger.name]) as events:
            plain_logger.info("Signed Up", extra={"anonymous_id": "a1"})
            plain_logger.getChild("child").info("From Child", extra={"user_id": "u1"})
            plain_logger.debug("Debug", extra={"user_id": "u1"})
        assert events.event_names() == ["Signed Up", "From Child"]
        assert plain_logger.level == logging.NOTSET

    def test_default_logger_is_analytics(self) -> None:
        """With no arguments the 'analytics' logger's records are captured."""
        with capture() as events:
            logging.getLogger("analytics").info("Default", extra={"user_id": "u1"})
        assert events.event_names() == ["Default"]

    def test_level_none_leaves_levels_alone(self, plain_logger: logging.Logger) -> None:
        """level=None does not lower a logger's level: root's WARNING still drops INFO."""
        root = logging.getLogger()
        old = root.level
        root.setLevel(logging.WARNING)
        try:
            with capture(loggers=[plain_logger.name], level=None) as events:
                plain_logger.info("Dropped", extra={"user_id": "u1"})
                plain_logger.warning("Kept", extra={"user_id": "u1"})
        finally:
            root.setLevel(old)
        assert events.event_names() == ["Kept"]

    def test_other_loggers_are_not_events(self, plain_logger: logging.Logger) -> None:
        """Records of other loggers, and logbridge's own, are not captured."""
        with capture(loggers=[plain_logger.name]) as events:
            logging.getLogger("app.db").warning("slow query", extra={"user_id": "u1"})
            logging.getLogger("logbridge").warning("logbridge: a report")
            plain_logger.info("Counted", extra={"user_id": "u1"})
        assert events.event_names() == ["Counted"]

    def test_facade_on_any_logger_is_captured(self, plain_logger: logging.Logger) -> None:
        """An Analytics facade's records are captured whatever its logger is named."""
        other = logging.getLogger(f"myapp.events{next(_names)}")
        other.setLevel(logging.INFO)
        try:
            with capture(loggers=[plain_logger.name]) as events:
                logbridge.Analytics(other).track("From Facade", user_id="u1")
                other.info("Plain Record", extra={"user_id": "u1"})
        finally:
            other.setLevel(logging.NOTSET)
        assert events.event_names() == ["From Facade"]

    def test_bound_fields_are_applied(self, plain_logger: logging.Logger) -> None:
        """Fields bound with logbridge.bind reach captured events, explicit ones winning."""
        with (
            capture(loggers=[plain_logger.name]) as events,
            logbridge.bind(user_id="bound", context={"ip": "203.0.113.9"}),
        ):
            plain_logger.info("Bound")
            plain_logger.info("Explicit", extra={"userId": "explicit"})
        assert [m["userId"] for m in events] == ["bound", "explicit"]
        assert events[0]["context"]["ip"] == "203.0.113.9"

    def test_invalid_records_are_listed_not_captured(self, plain_logger: logging.Logger) -> None:
        """A record the handler would drop is in .invalid with its reason."""
        with capture(loggers=[plain_logger.name]) as events:
            plain_logger.info("No User", extra={"order_id": "o1"})
        assert list(events) == []
        (rejected,) = events.invalid
        assert "user_id or anonymous_id" in rejected.reason
        assert (rejected.logger, rejected.fields) == (
            plain_logger.name, {"order_id": "o1", "event": "No User"}
        )
        with pytest.raises(AssertionError, match="1 invalid analytics record"):
            events.assert_no_invalid()


class TestConcurrency:
    """Events from any thread are captured; captures nest."""

    def test_events_from_other_threads(self, plain_logger: logging.Logger) -> None:
        """Events logged by worker threads during the block are captured; wait_for sees them."""
        with capture(loggers=[plain_logger.name]) as events:
            workers = [
                threading.Thread(
                    target=plain_logger.info,
                    args=("Worked",),
                    kwargs={"extra": {"user_id": f"u{n}"}},
                )
                for n in range(4)
            ]
            for worker in workers:
                worker.start()
            assert events.wait_for(4, timeout=10)
            for worker in workers:
                worker.join()
        assert sorted(m["userId"] for m in events) == ["u0", "u1", "u2", "u3"]

    def test_nested_captures_both_record(self, collector: Collector) -> None:
        """An inner capture records its block; the outer one records everything."""
        with analytics_logger(collector.endpoint) as (log, _), capture() as outer:
            log.info("First", extra={"user_id": "u1"})
            with capture() as inner:
                log.info("Second", extra={"user_id": "u1"})
            log.info("Third", extra={"user_id": "u1"})
        assert outer.event_names() == ["First", "Second", "Third"]
        assert inner.event_names() == ["Second"]
        assert collector.requests == []


class TestHelpers:
    """CapturedEvents finds events and asserts on them with useful failures."""

    @pytest.fixture
    def events(self, plain_logger: logging.Logger) -> CapturedEvents:
        """A capture holding a small session of every kind."""
        analytics = logbridge.Analytics(plain_logger)
        with capture(loggers=[plain_logger.name]) as captured:
            analytics.page("Pricing", anonymous_id="a1", properties={"path": "/pricing"})
            analytics.identify("u1", traits={"email": "a@example.com", "plan": "pro"})
            analytics.track("Order Completed", user_id="u1", properties={"revenue": 9.99, "n": 2})
            analytics.track("Order Completed", user_id="u2", properties={"revenue": 5.0})
            analytics.screen("Profile", user_id="u2")
        return captured

    def test_finders(self, events: CapturedEvents) -> None:
        """of_type, named, for_user, for_anonymous and event_names select as documented."""
        assert [m["type"] for m in events.of_type("track")] == ["track", "track"]
        assert [m["type"] for m in events.named("Pricing")] == ["page"]
        assert [m["type"] for m in events.named("Profile")] == ["screen"]
        assert len(events.named("Order Completed")) == 2
        assert [m["type"] for m in events.for_user("u1")] == ["identify", "track"]
        assert [m["type"] for m in events.for_anonymous("a1")] == ["page"]
        assert events.event_names() == ["Order Completed", "Order Completed"]
        assert len(events) == 5 and events[-1]["type"] == "screen"
        assert events == events.messages

    def test_assert_tracked_finds_the_one_match(self, events: CapturedEvents) -> None:
        """assert_tracked returns the single track matching user and properties."""
        found = events.assert_tracked("Order Completed", user_id="u1", revenue=9.99)
        assert found["properties"] == {"revenue": 9.99, "n": 2}
        assert events.assert_tracked("Order Completed", revenue=5.0)["userId"] == "u2"

    @pytest.mark.parametrize(
        ("kwargs", "found"),
        [({}, "found 2"), ({"user_id": "u3"}, "found none"), ({"revenue": 1}, "found none")],
    )
    def test_assert_tracked_failures(
        self, events: CapturedEvents, kwargs: dict[str, Any], found: str
    ) -> None:
        """Zero or several matches fail, listing what was captured."""
        with pytest.raises(AssertionError, match=found) as failure:
            events.assert_tracked("Order Completed", **kwargs)
        assert "track 'Order Completed' userId='u1' properties={'revenue': 9.99, 'n': 2}" in str(
            failure.value
        )

    def test_assert_not_tracked_and_identified(self, events: CapturedEvents) -> None:
        """assert_not_tracked fails for a tracked event; assert_identified checks traits."""
        events.assert_not_tracked("Refund Issued")
        with pytest.raises(AssertionError, match="tracked 2 time"):
            events.assert_not_tracked("Order Completed")
        assert events.assert_identified("u1", plan="pro")["traits"]["email"] == "a@example.com"
        with pytest.raises(AssertionError, match="identify of 'u1'"):
            events.assert_identified("u1", plan="free")

    def test_clear(self, events: CapturedEvents) -> None:
        """clear() forgets what was captured."""
        events.clear()
        assert len(events) == 0 and events.describe() == "no events"


class TestPytestPlugin:
    """The analytics_events fixture, auto-loaded through the pytest11 entry point."""

    def test_entry_point_is_registered(self) -> None:
        """The installed distribution declares the plugin under pytest11."""
        points = importlib.metadata.entry_points(group="pytest11")
        assert {p.name: p.value for p in points}.get("logbridge") == "logbridge.pytest_plugin"

    def test_fixture_is_used_by_the_plugin(self, analytics_events: CapturedEvents) -> None:
        """In this very suite the fixture captures a facade call."""
        logging.getLogger("analytics").setLevel(logging.INFO)
        try:
            logbridge.Analytics("analytics").track("In Plugin Test", user_id="u1")
        finally:
            logging.getLogger("analytics").setLevel(logging.NOTSET)
        analytics_events.assert_tracked("In Plugin Test", user_id="u1")

    @pytest.mark.parametrize("configured", ["1", "0"], ids=["handler", "no-handler"])
    def test_example_suite_passes_and_sends_nothing(
        self, collector: Collector, configured: str
    ) -> None:
        """examples/app_tests passes with or without its AnalyticsHandler; nothing is sent."""
        env = {"LOGBRIDGE_ENDPOINT": collector.endpoint, "SHOP_CONFIGURE_LOGGING": configured}
        result = run_pytest(["examples/app_tests", "-q"], cwd=ROOT, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "5 passed" in result.stdout
        assert collector.requests == []

    def test_the_example_app_does_send_outside_tests(self, collector: Collector) -> None:
        """Control: the shop configured the same way delivers its events (at exit)."""
        result = run_python(
            """
            import sys
            sys.path.insert(0, "examples/app_tests")
            import shop
            shop.configure_logging()
            shop.sign_up("ada@example.com")
            """,
            env={"LOGBRIDGE_ENDPOINT": collector.endpoint, "LOGBRIDGE_WRITE_KEY": "k"},
        )
        assert result.returncode == 0, result.stderr
        assert collector.wait_for(2)
        assert [m["type"] for m in collector.messages] == ["identify", "track"]

    def test_plugin_leaves_other_suites_alone(self, tmp_path: Path) -> None:
        """A suite not using the fixture runs as usual; -p no:logbridge removes the fixture."""
        (tmp_path / "pytest.ini").write_text("[pytest]\n")
        (tmp_path / "test_plain.py").write_text(textwrap.dedent("""
            import logging
            def test_plain(caplog):
                logging.getLogger("analytics").warning("not an event")
                assert "not an event" in caplog.text
            def test_uses_fixture(analytics_events):
                assert len(analytics_events) == 0
        """))
        loaded = run_pytest(["-q"], cwd=tmp_path)
        assert loaded.returncode == 0, loaded.stdout + loaded.stderr
        assert "2 passed" in loaded.stdout
        disabled = run_pytest(["-q", "-p", "no:logbridge"], cwd=tmp_path)
        assert disabled.returncode == 1
        assert "fixture 'analytics_events' not found" in disabled.stdout
        assert "1 passed" in disabled.stdout

    def test_ini_option_names_the_loggers(self, tmp_path: Path) -> None:
        """logbridge_capture_loggers tells the fixture which loggers carry events."""
        (tmp_path / "pytest.ini").write_text("[pytest]\nlogbridge_capture_loggers =\n    events\n")
        (tmp_path / "test_events.py").write_text(textwrap.dedent("""
            import logging
            def test_events_logger(analytics_events):
                logging.getLogger("events").info("Custom", extra={"user_id": "u1"})
                logging.getLogger("analytics").info("Default", extra={"user_id": "u1"})
                assert analytics_events.event_names() == ["Custom"]
        """))
        result = run_pytest(["-q"], cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "1 passed" in result.stdout
