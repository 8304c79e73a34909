"""structlog, both ways: routed through stdlib logging, and AnalyticsProcessor without it."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

import logbridge
from logbridge.collector import Collector
from logbridge.structlog import AnalyticsProcessor
from tests.support import ROOT, analytics_logger, run_python


@pytest.fixture(autouse=True)
def _fresh_structlog() -> Iterator[None]:
    """Each test configures structlog itself; defaults and context are restored after."""
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def through_stdlib(*, last: Any = structlog.stdlib.ProcessorFormatter.wrap_for_formatter) -> None:
    """The documented recipe: structlog's stdlib integration, identity from contextvars."""
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, structlog.stdlib.filter_by_level,
                    last],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def to_stream(processor: AnalyticsProcessor) -> io.StringIO:
    """structlog rendering JSON lines to a StringIO, with ``processor`` in the chain."""
    stream = io.StringIO()
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, processor,
                    structlog.processors.JSONRenderer(sort_keys=True)],
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    return stream


def rendered(stream: io.StringIO) -> list[dict[str, Any]]:
    """The event dicts the renderer wrote."""
    return [json.loads(line) for line in stream.getvalue().splitlines()]


class TestThroughStdlib:
    """structlog.get_logger("analytics") reaches AnalyticsHandler through stdlib logging."""

    def test_keyword_arguments_are_the_fields(self, collector: Collector) -> None:
        """Event name and keyword arguments arrive; bind_contextvars supplies the user."""
        through_stdlib()
        with analytics_logger(collector.endpoint) as (stdlib_logger, handler):
            log = structlog.get_logger(stdlib_logger.name)
            structlog.contextvars.bind_contextvars(user_id="u1")
            log.info("Order Completed", order_id="o1", revenue=9.99)
            log.info("identify", traits={"email": "a@example.com"}, plan="pro")
            log.info("Overridden", user_id="u2")
            handler.flush()
        assert collector.wait_for(3)
        assert collector.invalid == []
        order, identify, overridden = collector.messages
        assert (order["event"], order["userId"]) == ("Order Completed", "u1")
        assert order["properties"] == {"order_id": "o1", "revenue": 9.99}
        assert (identify["type"], identify["traits"]) == (
            "identify", {"email": "a@example.com", "plan": "pro"}
        )
        assert overridden["userId"] == "u2"

    def test_levels_and_logbridge_bind_apply(self, collector: Collector) -> None:
        """Below the logger's level nothing is sent; logbridge.bind works as for stdlib."""
        through_stdlib()
        with analytics_logger(collector.endpoint) as (stdlib_logger, handler):
            log = structlog.get_logger(stdlib_logger.name)
            with logbridge.bind(anonymous_id="a1", context={"ip": "203.0.113.9"}):
                log.debug("Hidden")
                log.warning("Shown")
            handler.flush()
        assert collector.wait_for(1)
        (message,) = collector.messages
        assert (message["event"], message["anonymousId"], message["context"]["ip"]) == (
            "Shown", "a1", "203.0.113.9"
        )

    def test_console_handler_renders_the_same_records(self, collector: Collector) -> None:
        """A ProcessorFormatter handler beside the AnalyticsHandler renders the events."""
        through_stdlib()
        stream = io.StringIO()
        console = logging.StreamHandler(stream)
        console.setFormatter(structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                        structlog.processors.JSONRenderer()]
        ))
        with analytics_logger(collector.endpoint) as (stdlib_logger, handler):
            stdlib_logger.addHandler(console)
            structlog.get_logger(stdlib_logger.name).info("Rendered", user_id="u1", n=1)
            handler.flush()
        assert collector.wait_for(1)
        assert json.loads(stream.getvalue()) == {"event": "Rendered", "user_id": "u1", "n": 1}
        assert collector.messages[0]["properties"] == {"n": 1}

    def test_render_to_log_kwargs_variant(self, collector: Collector) -> None:
        """With render_to_log_kwargs the keyword arguments arrive as the record's extras."""
        through_stdlib(last=structlog.stdlib.render_to_log_kwargs)
        with analytics_logger(collector.endpoint) as (stdlib_logger, handler):
            structlog.contextvars.bind_contextvars(user_id="u1")
            structlog.get_logger(stdlib_logger.name).info("Exported", rows=3)
            handler.flush()
        assert collector.wait_for(1)
        (message,) = collector.messages
        assert (message["event"], message["userId"], message["properties"]) == (
            "Exported", "u1", {"rows": 3}
        )


class TestProcessor:
    """AnalyticsProcessor: structlog chains that never touch stdlib logging."""

    def test_marked_events_are_sent_and_passed_on_unchanged(self, collector: Collector) -> None:
        """Marked event dicts reach the handler; every dict is rendered exactly as logged."""
        with analytics_logger(collector.endpoint) as (_, handler):
            stream = to_stream(AnalyticsProcessor(handler))
            structlog.contextvars.bind_contextvars(user_id="u1")
            structlog.get_logger().info("cache warmed", entries=3)
            structlog.get_logger(analytics=True).info("Order Completed", revenue=9.99)
            structlog.get_logger().bind(analytics=True).info("identify", traits={"plan": "pro"})
            handler.flush()
        assert collector.wait_for(2)
        track, identify = collector.messages
        assert (track["event"], track["userId"], track["properties"]) == (
            "Order Completed", "u1", {"revenue": 9.99}
        )
        assert identify["traits"] == {"plan": "pro"}
        assert rendered(stream) == [
            {"entries": 3, "event": "cache warmed", "user_id": "u1"},
            {"analytics": True, "event": "Order Completed", "revenue": 9.99, "user_id": "u1"},
            {"analytics": True, "event": "identify", "traits": {"plan": "pro"}, "user_id": "u1"},
        ]

    def test_recognised_by_logger_name(self, collector: Collector) -> None:
        """A bound ``logger`` key, or a stdlib logger's name, of analytics marks an event."""
        with analytics_logger(collector.endpoint) as (_, handler):
            processor = AnalyticsProcessor(handler, logger_names=["analytics", "events"])
            to_stream(processor)
            structlog.get_logger().bind(logger="events.orders").info("By Key", user_id="u1")
            structlog.get_logger().bind(logger="app").info("Not An Event", user_id="u1")
            named = logging.getLogger("analytics.orders")
            processor(named, "info", {"event": "By Name", "user_id": "u1"})
            handler.flush()
        assert collector.wait_for(2)
        assert [(m["event"], m["properties"]) for m in collector.messages] == [
            ("By Key", {}), ("By Name", {})
        ]

    def test_drop_sends_but_does_not_render(self, collector: Collector) -> None:
        """drop=True: analytics events are sent and dropped from the chain; others render."""
        with analytics_logger(collector.endpoint) as (_, handler):
            stream = to_stream(AnalyticsProcessor(handler, drop=True))
            structlog.get_logger(analytics=True).info("Secret", user_id="u1")
            structlog.get_logger().info("visible")
            handler.flush()
        assert collector.wait_for(1)
        assert collector.messages[0]["event"] == "Secret"
        assert rendered(stream) == [{"event": "visible"}]

    def test_levels_of_the_target_apply(self, collector: Collector) -> None:
        """The method name is the record's level: under the handler's level nothing is sent."""
        with analytics_logger(collector.endpoint) as (_, handler):
            handler.setLevel(logging.INFO)
            to_stream(AnalyticsProcessor(handler))
            events = structlog.get_logger(analytics=True, user_id="u1")
            events.debug("Too Low")
            events.warning("Warned")
            events.exception("Failed")
            handler.flush()
        assert collector.wait_for(2)
        assert [m["event"] for m in collector.messages] == ["Warned", "Failed"]

    def test_target_by_logger_name_and_logbridge_bind(self, collector: Collector) -> None:
        """A logger name as target routes through its handlers; logbridge.bind applies."""
        with analytics_logger(collector.endpoint) as (stdlib_logger, handler):
            to_stream(AnalyticsProcessor(stdlib_logger.name))
            with logbridge.bind(user_id="bound"):
                structlog.get_logger(analytics=True).info("Via Logger")
            handler.flush()
        assert collector.wait_for(1)
        assert collector.messages[0]["userId"] == "bound"

    def test_invalid_event_is_dropped_by_the_handler(self, collector: Collector) -> None:
        """An event with no identity is counted invalid by the handler; the chain goes on."""
        with analytics_logger(collector.endpoint) as (_, handler):
            stream = to_stream(AnalyticsProcessor(handler))
            structlog.get_logger(analytics=True).info("Orphan")
            handler.flush()
            assert handler.stats()["dropped"]["invalid"] == 1  # type: ignore[index]
        assert rendered(stream) == [{"analytics": True, "event": "Orphan"}]

    def test_never_raises_into_the_chain(self, caplog: pytest.LogCaptureFixture) -> None:
        """A target that raises, or a logger whose name raises, leaves the event dict intact."""

        class Broken(logging.Handler):
            def handle(self, record: logging.LogRecord) -> bool:  # type: ignore[override]
                raise RuntimeError("target is broken")

        class Nameless:
            @property
            def name(self) -> str:
                raise RuntimeError("no name")

        processor = AnalyticsProcessor(Broken(), drop=False)
        event = {"event": "Kept", "analytics": True, "user_id": "u1"}
        with caplog.at_level(logging.WARNING, logger="logbridge"):
            assert processor(None, "info", event) is event
            assert processor(Nameless(), "info", {"event": "x"}) == {"event": "x"}
        assert event == {"event": "Kept", "analytics": True, "user_id": "u1"}
        messages = [r.getMessage() for r in caplog.records]
        assert any("target is broken" in m for m in messages)
        assert any("no name" in m for m in messages)


def parsed(timestamp: str) -> dt.datetime:
    """A message's ISO-8601 ``timestamp`` as an aware datetime."""
    return dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


def bookkeeping_chain(stamper: Any) -> None:
    """The stdlib recipe with structlog's usual bookkeeping processors in the chain."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.filter_by_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_log_level_number,
            stamper,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


class TestBookkeepingKeys:
    """level, logger and timestamp from structlog's processors are not event properties."""

    @pytest.mark.parametrize(
        "stamper",
        [
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.TimeStamper(),
            structlog.processors.TimeStamper(fmt="iso", utc=False),
            structlog.processors.TimeStamper(fmt="%d/%m/%Y %H.%M"),
        ],
        ids=["iso", "epoch", "local-iso", "custom-format"],
    )
    def test_through_stdlib(self, collector: Collector, stamper: Any) -> None:
        """Only the call's own keys are properties; the timestamp is the call's moment."""
        bookkeeping_chain(stamper)
        with analytics_logger(collector.endpoint) as (stdlib_logger, handler):
            before = dt.datetime.now(dt.timezone.utc)
            structlog.get_logger(stdlib_logger.name).info(
                "Order Completed", user_id="u1", revenue=9.99
            )
            after = dt.datetime.now(dt.timezone.utc)
            assert handler.flush()
        assert collector.wait_for(1)
        (message,) = collector.messages
        assert message["properties"] == {"revenue": 9.99}
        slack = dt.timedelta(milliseconds=2)
        assert before - slack <= parsed(message["timestamp"]) <= after + slack

    def test_explicit_timestamp_is_the_messages(self, collector: Collector) -> None:
        """A timestamp given in the call (a backfill) is the message's, not the stamper's."""
        bookkeeping_chain(structlog.processors.TimeStamper(fmt="iso", key="logged_at"))
        with analytics_logger(collector.endpoint) as (stdlib_logger, handler):
            structlog.get_logger(stdlib_logger.name).info(
                "Imported", user_id="u1", timestamp="2026-01-02T03:04:05Z"
            )
            assert handler.flush()
        assert collector.wait_for(1)
        (message,) = collector.messages
        assert message["timestamp"] == "2026-01-02T03:04:05.000Z"
        assert set(message["properties"]) == {"logged_at"}  # another key is the user's

    def test_local_time_stamps_in_another_zone(self, collector: Collector) -> None:
        """TimeStamper(utc=False) writes local time without an offset; it is not read as UTC."""
        code = f"""
        import logging, structlog, logbridge
        structlog.configure(
            processors=[structlog.processors.TimeStamper(fmt="iso", utc=False),
                        structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
        )
        handler = logbridge.AnalyticsHandler(endpoint={collector.endpoint!r}, write_key="k")
        logging.getLogger("analytics").addHandler(handler)
        logging.getLogger("analytics").setLevel(logging.INFO)
        structlog.get_logger("analytics").info("Local", user_id="u1")
        """
        before = dt.datetime.now(dt.timezone.utc)
        done = run_python(code, env={"TZ": "Asia/Kolkata"})
        after = dt.datetime.now(dt.timezone.utc)
        assert done.returncode == 0, done.stderr
        assert collector.wait_for(1)
        assert before - dt.timedelta(seconds=1) <= parsed(collector.messages[0]["timestamp"])
        assert parsed(collector.messages[0]["timestamp"]) <= after

    def test_processor_route(self, collector: Collector) -> None:
        """AnalyticsProcessor after add_log_level and TimeStamper sends only the call's keys."""
        with analytics_logger(collector.endpoint) as (_, handler):
            stream = io.StringIO()
            structlog.configure(
                processors=[
                    structlog.processors.add_log_level,
                    structlog.processors.TimeStamper(fmt="iso"),
                    AnalyticsProcessor(handler),
                    structlog.processors.JSONRenderer(),
                ],
                logger_factory=structlog.PrintLoggerFactory(stream),
                cache_logger_on_first_use=False,
            )
            structlog.get_logger().bind(logger="analytics").info("Paid", user_id="u1", n=2)
            assert handler.flush()
        assert collector.wait_for(1)
        (message,) = collector.messages
        assert message["properties"] == {"n": 2}
        (line,) = rendered(stream)
        assert message["timestamp"][:19] == line["timestamp"][:19]  # the stamper's moment
        assert line["level"] == "info"  # the chain goes on unchanged


class TestOptionalDependency:
    """structlog is an extra: logbridge imports and works without it."""

    def test_core_imports_without_structlog(self, collector: Collector) -> None:
        """With structlog unimportable, logbridge and logbridge.structlog still import and send."""
        result = run_python(f"""
            import sys
            sys.modules["structlog"] = None  # as if not installed
            import logging, logbridge, logbridge.testing, logbridge.structlog
            handler = logbridge.AnalyticsHandler(endpoint={collector.endpoint!r}, write_key="k")
            processor = logbridge.structlog.AnalyticsProcessor(handler)
            processor(None, "info", {{"event": "No Structlog", "analytics": True, "user_id": "u"}})
            handler.flush()
            try:
                logbridge.structlog.AnalyticsProcessor(handler, drop=True)
            except ImportError:
                print("drop needs structlog")
        """)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "drop needs structlog"
        assert [m["event"] for m in collector.messages] == ["No Structlog"]


class TestExamples:
    """Both structlog examples run against their own local collector."""

    @pytest.mark.parametrize(
        ("script", "expected"),
        [("structlog_stdlib.py", "OK: three events, keyword arguments as fields"),
         ("structlog_processor.py", "OK: two events sent, every line printed")],
    )
    def test_example_runs(self, script: str, expected: str) -> None:
        """The example exits 0 and says what arrived."""
        result = subprocess.run(
            [sys.executable, f"examples/{script}"], cwd=ROOT, capture_output=True, text=True,
            timeout=60, check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert expected in result.stdout
