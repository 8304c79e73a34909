"""AnalyticsFormatter: a record as the JSON message the handler sends for it."""

from __future__ import annotations

import datetime as dt
import decimal
import inspect
import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from pythonjsonlogger.json import JsonFormatter

import logbridge
from logbridge.collector import Collector
from logbridge.encoding import Encoder
from tests.support import ROOT, analytics_logger, run_python


@pytest.fixture
def archive() -> Iterator[tuple[logging.Handler, io.StringIO]]:
    """A StreamHandler to a StringIO with an AnalyticsFormatter (context like the handler's)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logbridge.AnalyticsFormatter(context={"app": {"name": "shop"}}))
    yield handler, stream
    handler.close()


def lines(stream: io.StringIO) -> list[str]:
    """The lines written to ``stream``."""
    return stream.getvalue().splitlines()


class TestSameAsSent:
    """Each line is the message the AnalyticsHandler delivers for the same record."""

    @pytest.mark.parametrize("formatter_first", [True, False], ids=["before", "after"])
    def test_lines_equal_the_sent_messages(
        self,
        collector: Collector,
        archive: tuple[logging.Handler, io.StringIO],
        formatter_first: bool,
    ) -> None:
        """Every type, odd values and bound fields: the line's JSON is the sent message's."""
        text_handler, stream = archive
        with analytics_logger(collector.endpoint, context={"app": {"name": "shop"}}) as (log, h):
            if formatter_first:
                log.handlers.insert(0, text_handler)
            else:
                log.addHandler(text_handler)
            with logbridge.bind(user_id="u1", context={"ip": "203.0.113.9"}):
                log.info("identify", extra={"message_id": "m1", "city": "Zürich",
                                            "traits": {"plan": "pro"}})
                log.info("Order Completed", extra={
                    "message_id": "m2", "revenue": decimal.Decimal("29.99"),
                    "tags": {"b", "a"}, "at": dt.datetime(2026, 1, 2, 3, 4, 5),
                    "nan": float("nan"),
                })
                log.info("page", extra={"message_id": "m3", "page_name": "Pricing",
                                        "category": "Docs", "url": "/pricing"})
                log.info("group", extra={"message_id": "m4", "group_id": "acme"})
                log.info("alias", extra={"message_id": "m5", "previous_id": "a1", "lost": 1})
            h.flush()
        assert collector.wait_for(5)
        written = lines(stream)
        assert len(written) == 5
        for line, sent in zip(written, collector.messages, strict=True):
            assert line == Encoder().encode(sent).decode("utf-8")
        order = json.loads(written[1])
        assert order["properties"] == {"revenue": 29.99, "tags": ["a", "b"],
                                       "at": "2026-01-02T03:04:05.000Z", "nan": None}
        assert order["context"]["ip"] == "203.0.113.9"
        assert order["context"]["app"] == {"name": "shop"}
        assert "Zürich" in written[0]

    def test_without_message_id_only_the_id_differs(
        self, collector: Collector, archive: tuple[logging.Handler, io.StringIO]
    ) -> None:
        """A call without message_id: same message but for messageId, which nobody shares."""
        text_handler, stream = archive
        with analytics_logger(collector.endpoint, context={"app": {"name": "shop"}}) as (log, h):
            log.addHandler(text_handler)
            log.info("Coupon Applied", extra={"user_id": "u1", "code": "SPRING"})
            h.flush()
        assert collector.wait_for(1)
        (line,) = lines(stream)
        archived, sent = json.loads(line), collector.messages[0]
        assert archived["messageId"] != sent["messageId"]
        assert {**archived, "messageId": ""} == {**sent, "messageId": ""}

    def test_facade_calls_share_the_message_id(
        self, collector: Collector, archive: tuple[logging.Handler, io.StringIO]
    ) -> None:
        """The facade always passes a message_id, so archive and endpoint agree entirely."""
        text_handler, stream = archive
        with analytics_logger(collector.endpoint, context={"app": {"name": "shop"}}) as (log, h):
            log.addHandler(text_handler)
            message_id = logbridge.Analytics(log).track("Viewed", user_id="u1")
            h.flush()
        assert collector.wait_for(1)
        assert json.loads(lines(stream)[0]) == collector.messages[0]
        assert collector.messages[0]["messageId"] == message_id

    def test_structlog_style_record(self, archive: tuple[logging.Handler, io.StringIO]) -> None:
        """A record whose msg is an event dict is read as the handler reads it."""
        text_handler, stream = archive
        record = logging.LogRecord("analytics", logging.INFO, "", 0,
                                   {"event": "Exported", "user_id": "u1", "rows": 3}, None, None)
        text_handler.handle(record)
        message = json.loads(lines(stream)[0])
        assert (message["event"], message["userId"], message["properties"]) == (
            "Exported", "u1", {"rows": 3}
        )


class TestInvalid:
    """A record that cannot become a message is written as such; formatting never raises."""

    def test_invalid_record_line(self, archive: tuple[logging.Handler, io.StringIO]) -> None:
        """No user: the line names the reason, the logger, the event and the fields."""
        text_handler, stream = archive
        log = logging.getLogger("analytics.formatter_invalid")
        record = log.makeRecord(log.name, logging.INFO, "", 0, "Orphan", (), None,
                                extra={"order_id": "o1"})
        text_handler.handle(record)
        assert json.loads(lines(stream)[0]) == {
            "invalid": "a track needs user_id or anonymous_id",
            "logger": "analytics.formatter_invalid",
            "event": "Orphan",
            "fields": {"order_id": "o1"},
        }

    def test_unformattable_message_does_not_raise(self) -> None:
        """A message whose %-args do not fit gives an invalid line, not an exception."""
        record = logging.LogRecord("analytics", logging.INFO, "", 0, "%d items", ("x",), None)
        line = json.loads(logbridge.AnalyticsFormatter().format(record))
        assert "could not be formatted" in line["invalid"]
        assert line["event"] == "'%d items'"


class TestOptions:
    """Built on python-json-logger; configurable from dictConfig."""

    def test_is_a_python_json_logger_formatter(self) -> None:
        """AnalyticsFormatter subclasses python-json-logger's JsonFormatter."""
        assert issubclass(logbridge.AnalyticsFormatter, JsonFormatter)

    def test_prefix_and_indent(self) -> None:
        """prefix is written before the JSON; json_indent pretty-prints the same message."""
        record = logging.LogRecord("analytics", logging.INFO, "", 0, "Viewed", None, None)
        record.__dict__.update(user_id="u1", message_id="m1", timestamp="2026-01-01T00:00:00Z")
        compact = logbridge.AnalyticsFormatter(prefix="event: ").format(record)
        indented = logbridge.AnalyticsFormatter(json_indent=2).format(record)
        assert compact.startswith('event: {"type":"track","event":"Viewed"')
        assert "\n" in indented
        assert json.loads(indented) == json.loads(compact.removeprefix("event: "))

    @pytest.mark.parametrize("key", ["()", "class"])
    def test_dict_config_forms(self, key: str) -> None:
        """Both dictConfig forms build it, with a context in the factory form."""
        result = run_python(f"""
            import logging, logging.config, json
            formatter = {{{key!r}: "logbridge.AnalyticsFormatter"}}
            config = {{"version": 1, "formatters": {{"a": formatter}},
                      "handlers": {{"out": {{"class": "logging.StreamHandler",
                                            "stream": "ext://sys.stdout", "formatter": "a"}}}},
                      "loggers": {{"analytics": {{"handlers": ["out"], "level": "INFO"}}}}}}
            if {key!r} == "()":
                config["formatters"]["a"]["context"] = {{"app": {{"name": "x"}}}}
            logging.config.dictConfig(config)
            logging.getLogger("analytics").info("Configured", extra={{"user_id": "u1"}})
        """)
        assert result.returncode == 0, result.stderr
        message: dict[str, Any] = json.loads(result.stdout)
        assert (message["event"], message["userId"]) == ("Configured", "u1")
        assert ("app" in message["context"]) == (key == "()")


    def test_file_config_class_form(self, tmp_path: Any) -> None:
        """fileConfig builds it from a class= line (passing fmt, datefmt and style)."""
        ini = tmp_path / "logging.ini"
        ini.write_text(inspect.cleandoc("""
            [loggers]
            keys=root,analytics
            [handlers]
            keys=out
            [formatters]
            keys=analytics_json
            [logger_root]
            handlers=
            [logger_analytics]
            qualname=analytics
            level=INFO
            handlers=out
            [handler_out]
            class=StreamHandler
            formatter=analytics_json
            args=(sys.stdout,)
            [formatter_analytics_json]
            class=logbridge.AnalyticsFormatter
            format=%(message)s
        """))
        result = run_python(f"""
            import logging, logging.config
            logging.config.fileConfig({str(ini)!r})
            logging.getLogger("analytics").info("From Ini", extra={{"user_id": "u1"}})
        """)
        assert result.returncode == 0, result.stderr
        message = json.loads(result.stdout)
        assert (message["type"], message["event"], message["userId"]) == (
            "track", "From Ini", "u1"
        )


class TestExample:
    """examples/json_archive.py: Segment plus a JSON-lines archive from one dictConfig."""

    def test_example_archive_matches_what_was_sent(self, tmp_path: Any) -> None:
        """The example exits 0 with an archive line per event, equal to what arrived."""
        archive = tmp_path / "archive.jsonl"
        result = subprocess.run(
            [sys.executable, "examples/json_archive.py", str(archive)], cwd=ROOT,
            capture_output=True, text=True, timeout=60, check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "OK: the archive holds what was sent" in result.stdout
        archived = [json.loads(line) for line in archive.read_text("utf-8").splitlines()]
        assert [m.get("type", "invalid") for m in archived] == [
            "identify", "track", "track", "invalid"
        ]
