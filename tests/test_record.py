"""Unit tests of logbridge.record: what a LogRecord says, as plain fields."""

from __future__ import annotations

import copy
import logging
import sys
from typing import Any

import pytest

from logbridge.errors import InvalidEvent
from logbridge.guard import is_internal
from logbridge.message import build_message
from logbridge.record import RESERVED_ATTRS, read_record


class Keep(logging.Handler):
    """A real handler that formats each record (as a stream handler would) and keeps it."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.format(record)
        self.records.append(record)


@pytest.fixture
def logger() -> Any:
    """A non-propagating logger at INFO, with a Keep handler, removed after the test."""
    log = logging.getLogger(f"test_record.{id(object())}")
    log.setLevel(logging.INFO)
    log.propagate = False
    keep = Keep()
    log.addHandler(keep)
    yield log, keep
    log.removeHandler(keep)


def make_record(msg: Any, args: Any = (), extra: dict[str, Any] | None = None) -> logging.LogRecord:
    """A record made the way Logger._log makes one."""
    log = logging.getLogger("test_record.make")
    return log.makeRecord(log.name, logging.INFO, __file__, 10, msg, args, None, extra=extra)


class TestReservedAttrs:
    """RESERVED_ATTRS names every attribute a LogRecord has on this Python."""

    def test_every_blank_record_attribute(self):
        """Every attribute of a blank LogRecord on the running Python is reserved."""
        blank = logging.LogRecord("name", logging.INFO, "path", 1, "msg", (), None)
        assert set(vars(blank)) <= RESERVED_ATTRS

    def test_formatter_attributes(self):
        """``message`` and ``asctime``, set by formatters, are reserved."""
        assert {"message", "asctime"} <= RESERVED_ATTRS

    def test_task_name_on_312(self):
        """taskName (3.12+) is reserved whenever records carry it."""
        blank = logging.LogRecord("name", logging.INFO, "path", 1, "msg", (), None)
        assert hasattr(blank, "taskName") == (sys.version_info >= (3, 12))
        assert "taskName" in RESERVED_ATTRS or not hasattr(blank, "taskName")

    @pytest.mark.parametrize(
        "key", ["user_id", "event", "page_name", "screen_name", "properties", "context"]
    )
    def test_event_fields_are_not_reserved(self, key: str):
        """The keys logbridge reads from extra are not reserved names."""
        assert key not in RESERVED_ATTRS


class TestStdlibRecords:
    """``log.info(word, extra={...})``: the extras are the fields."""

    def test_extras_from_make_record(self):
        """Exactly the extra keys are read, none of the record's own attributes."""
        extra = {"user_id": "u1", "revenue": 9.5, "context": {"ip": "10.0.0.1"}}
        event = read_record(make_record("Order Completed", extra=extra))
        assert event.word == "Order Completed"
        assert event.text == "Order Completed"
        assert event.fields == extra

    def test_extras_after_logger_handle(self, logger: Any):
        """A record that went through logger.info and a formatter still yields only extras."""
        log, keep = logger
        log.info("identify", extra={"user_id": "u1", "email": "a@example.com"})
        (record,) = keep.records
        assert hasattr(record, "message")
        assert hasattr(record, "asctime")
        event = read_record(record)
        assert event.word == "identify"
        assert event.fields == {"user_id": "u1", "email": "a@example.com"}

    def test_extras_with_exception_info(self, logger: Any):
        """exc_info, exc_text and stack_info on a formatted record are never fields."""
        log, keep = logger
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            log.exception("Checkout Failed", extra={"user_id": "u1"}, stack_info=True)
        (record,) = keep.records
        assert record.exc_text
        assert read_record(record).fields == {"user_id": "u1"}

    def test_underscore_keys_are_skipped(self):
        """Keys starting with an underscore are private and never fields."""
        event = read_record(make_record("E", extra={"_private": 1, "__x": 2, "user_id": "u1"}))
        assert event.fields == {"user_id": "u1"}

    def test_fields_are_a_new_dict(self):
        """The fields are a new dict, not the record's __dict__."""
        record = make_record("E", extra={"user_id": "u1"})
        event = read_record(record)
        event.fields["added"] = 1
        assert not hasattr(record, "added")

    def test_args_format_the_text(self):
        """With args, the text is getMessage() while the word stays the raw msg."""
        event = read_record(make_record("Order %s for %d", ("Completed", 3)))
        assert event.word == "Order %s for %d"
        assert event.text == "Order Completed for 3"

    def test_mapping_arg(self):
        """A single mapping argument formats named placeholders."""
        event = read_record(make_record("Plan %(plan)s", ({"plan": "pro"},)))
        assert event.text == "Plan pro"

    def test_unformattable_message(self):
        """A message its args cannot format raises InvalidEvent saying so."""
        with pytest.raises(InvalidEvent) as info:
            read_record(make_record("%d items", ("many",)))
        assert "could not be formatted" in info.value.reason

    def test_too_few_args(self):
        """A message missing an argument raises InvalidEvent."""
        with pytest.raises(InvalidEvent):
            read_record(make_record("%s and %s", ("one",)))

    def test_non_string_msg(self):
        """A non-string msg has no word; its str() is the text."""
        event = read_record(make_record(42))
        assert event.word is None
        assert event.text == "42"


class TestStructlogRecords:
    """structlog's ProcessorFormatter.wrap_for_formatter path: msg is the event dict."""

    def structlog_record(self, event_dict: dict[str, Any], logger: Any, **extra: Any) -> Any:
        """Log ``event_dict`` as structlog's stdlib bridge does, and return the record."""
        log, keep = logger
        log.info(event_dict, extra={"_logger": object(), "_name": "info", **extra})
        (record,) = keep.records
        return record

    def test_event_key_is_the_word_and_text(self, logger: Any):
        """The dict's ``event`` is the word and the text; its other keys are the fields."""
        record = self.structlog_record({"event": "identify", "user_id": "u1"}, logger)
        event = read_record(record)
        assert event.word == "identify"
        assert event.text == "identify"
        assert event.fields == {"user_id": "u1"}

    def test_event_name_style(self, logger: Any):
        """An event dict whose event is an event name gives that name as the text."""
        record = self.structlog_record(
            {"event": "Order Completed", "user_id": "u1", "revenue": 3}, logger
        )
        event = read_record(record)
        assert event.text == "Order Completed"
        assert event.fields == {"user_id": "u1", "revenue": 3}

    def test_structlog_extras_are_skipped(self, logger: Any):
        """structlog's own extras (_logger, _name) are not fields; other extras are."""
        record = self.structlog_record({"event": "E", "user_id": "u1"}, logger, plan="pro")
        assert read_record(record).fields == {"user_id": "u1", "plan": "pro"}

    def test_event_dict_not_mutated(self, logger: Any):
        """Reading the record leaves the event dict (record.msg) untouched."""
        event_dict = {"event": "E", "user_id": "u1", "nested": {"a": 1}}
        before = copy.deepcopy(event_dict)
        record = self.structlog_record(event_dict, logger)
        read_record(record)
        assert record.msg is event_dict
        assert event_dict == before

    def test_event_dict_without_event_is_invalid(self, logger: Any):
        """An event dict with no ``event`` key does not become a track named "None"."""
        record = self.structlog_record({"user_id": "u1", "plan": "pro"}, logger)
        with pytest.raises(InvalidEvent):
            event = read_record(record)
            build_message("track", event.fields, event=event.text)


class TestIsInternal:
    """Records of logbridge and of its HTTP stack never become events."""

    @pytest.mark.parametrize(
        "name",
        [
            "logbridge",
            "logbridge.x",
            "logbridge.transport",
            "urllib3",
            "urllib3.connectionpool",
            "requests",
            "requests.adapters",
            "charset_normalizer",
            "chardet.universaldetector",
        ],
    )
    def test_internal(self, name: str):
        """logbridge and the HTTP libraries (and their children) are internal."""
        assert is_internal(name)

    @pytest.mark.parametrize(
        "name", ["logbridge_app", "requestsfoo", "myapp.requests", "root", "", "urllib"]
    )
    def test_not_internal(self, name: str):
        """Names that merely start with or contain those names are not internal."""
        assert not is_internal(name)


class TestReservedExtraKeys:
    """Why page_name and screen_name exist: ``extra`` cannot use a reserved name."""

    @pytest.mark.parametrize("key", ["name", "message", "asctime", "msg", "args"])
    def test_reserved_key_raises_at_call_site(self, logger: Any, key: str):
        """logging raises KeyError in the caller when extra names a LogRecord attribute."""
        log, keep = logger
        with pytest.raises(KeyError, match=key):
            log.info("page", extra={key: "Home", "user_id": "u1"})
        assert keep.records == []

    def test_page_name_is_accepted(self, logger: Any):
        """page_name and screen_name pass through logging and are read as fields."""
        log, keep = logger
        log.info("page", extra={"page_name": "Home", "screen_name": "S", "user_id": "u1"})
        (record,) = keep.records
        assert read_record(record).fields == {
            "page_name": "Home",
            "screen_name": "S",
            "user_id": "u1",
        }
