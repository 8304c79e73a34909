"""The listener survives anything: raising callbacks, hostile values, arbitrary extras."""

from __future__ import annotations

import datetime as dt
import decimal
import logging
import math
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import logbridge
from logbridge.collector import Collector
from tests.support import analytics_logger


class Hostile:
    """A value whose __str__, __repr__ and __format__ all raise."""

    def __str__(self) -> str:
        raise RuntimeError("no str for you")

    def __repr__(self) -> str:
        raise ValueError("no repr either")

    def __format__(self, spec: str) -> str:
        raise TypeError("nor format")


class BrokenStr:
    """A value whose __str__ raises (its repr works, so hypothesis can print examples)."""

    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        return "BrokenStr()"


class Unhashable:
    """A value that cannot be hashed or compared."""

    __hash__ = None  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no comparing")


def accounted(stats: dict[str, Any]) -> bool:
    """Every processed record was sent or dropped with a counted reason."""
    return bool(stats["processed"] == stats["sent"] + stats["dropped_total"])


class TestCallbacks:
    """A user callback that raises is reported; delivery and the listener go on."""

    def test_on_success_that_raises(
        self, collector: Collector, caplog: pytest.LogCaptureFixture
    ) -> None:
        """on_success raising after every batch: all events arrive, the error is reported."""

        def on_success(messages: list[dict[str, Any]]) -> None:
            raise RuntimeError("callback bug")

        with (
            caplog.at_level(logging.WARNING, logger="logbridge"),
            analytics_logger(collector.endpoint, flush_at=5, on_success=on_success) as (log, h),
        ):
            for i in range(20):
                log.info("Fine", extra={"user_id": "u1", "i": i})
            assert h.flush(timeout=30)
            assert h.listener.running and h.listener.sender.running
            stats: dict[str, Any] = h.stats()
        assert len(collector.messages) == 20
        assert accounted(stats)
        assert any("callback bug" in r.getMessage() for r in caplog.records)

    def test_on_error_that_raises_base_exception(self, collector: Collector) -> None:
        """on_error raising SystemExit (for invalid records) ends neither thread."""

        def on_error(exc: BaseException, messages: list[dict[str, Any]]) -> None:
            raise SystemExit("callback wants out")

        with analytics_logger(collector.endpoint, on_error=on_error) as (log, handler):
            log.info("No User", extra={"order_id": 1})
            log.info("Has User", extra={"user_id": "u1"})
            assert handler.flush(timeout=30)
            assert handler.listener.running and handler.listener.sender.running
            log.info("Still Going", extra={"user_id": "u1"})
            assert handler.flush(timeout=30)
            stats: dict[str, Any] = handler.stats()
        assert [m["event"] for m in collector.messages] == ["Has User", "Still Going"]
        assert stats["dropped"]["invalid"] == 1
        assert accounted(stats)

    def test_delivery_failure_callback_that_raises(self, collector_factory: Any) -> None:
        """on_error raising for a rejected batch: counted, reported, the sender lives on."""
        collector: Collector = collector_factory(write_key="right")

        def on_error(exc: BaseException, messages: list[dict[str, Any]]) -> None:
            raise KeyError("broken handler")

        with analytics_logger(
            collector.endpoint, write_key="wrong", on_error=on_error, flush_at=1
        ) as (log, handler):
            for i in range(3):  # one batch each: flushed one by one
                log.info("Rejected", extra={"user_id": "u1", "i": i})
                assert handler.flush(timeout=30)
            assert handler.listener.sender.running
            stats: dict[str, Any] = handler.stats()
        assert stats["dropped"]["rejected"] == 3
        assert len(collector.requests) == 3


class TestHostileValues:
    """Values that break naive code become JSON or a counted drop, never an exception."""

    def test_every_kind_of_awkward_value(self, collector: Collector) -> None:
        """One record per awkward value: none raises, every record is delivered or counted."""
        recursive: dict[str, Any] = {"name": "loop"}
        recursive["self"] = recursive
        looped: list[Any] = [1]
        looped.append(looped)
        deep: dict[str, Any] = {}
        node = deep
        for _ in range(200):
            node["d"] = {}
            node = node["d"]
        values: dict[str, Any] = {
            "raising_str": Hostile(),
            "unhashable": Unhashable(),
            "recursive_dict": recursive,
            "recursive_list": looped,
            "deep": deep,
            "non_string_keys": {1: "a", None: "b", (1, 2): "c", 2.5: "d", Hostile(): "e"},
            "nan": math.nan,
            "infinities": [math.inf, -math.inf],
            "decimal_nan": decimal.Decimal("NaN"),
            "big_int": 10**400,
            "bad_bytes": b"\xff\xfe\x00",
            "lone_surrogate": "\ud800",
            "megabyte": "m" * 1_000_000,
            "mixed_set": {1, "a", None},
            "when": dt.datetime(2026, 11, 22, 6, 30),
            "uuid": uuid.UUID(int=7),
            "exception": ValueError("boom"),
            "type": type,
        }
        with analytics_logger(collector.endpoint, flush_at=50) as (log, handler):
            for name, value in values.items():
                log.info("Awkward", extra={"user_id": "u1", "case": name, "value": value})
            log.info("Hostile Message %s", Hostile(), extra={"user_id": "u1"})
            log.info(Hostile(), extra={"user_id": "u1"})
            assert handler.flush(timeout=30)
            assert handler.listener.running
            stats: dict[str, Any] = handler.stats()
        cases = {m["properties"]["case"] for m in collector.messages if "case" in m["properties"]}
        assert cases == set(values) - {"megabyte"}  # 1 MB is over the 32 KB message limit
        assert stats["dropped"]["oversize"] == 1
        assert stats["processed"] == len(values) + 2
        assert accounted(stats)
        assert collector.invalid == []

    def test_target_handler_that_raises(self, collector: Collector) -> None:
        """A stdlib handler behind the listener that raises does not stop delivery."""

        class Exploding(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                raise RuntimeError("target down")

            def handleError(self, record: logging.LogRecord) -> None:
                raise RuntimeError("and loudly")

        with analytics_logger(collector.endpoint, handlers=[Exploding()]) as (log, handler):
            for i in range(5):
                log.info("Passed On", extra={"user_id": "u1", "i": i})
            assert handler.flush(timeout=30)
            assert handler.listener.running
        assert len(collector.messages) == 5


_KEYS = st.text(min_size=1, max_size=12).filter(lambda key: key not in logbridge.RESERVED_ATTRS)
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40), st.binary(max_size=20), st.decimals(allow_nan=True),
    st.datetimes(), st.uuids(), st.builds(BrokenStr),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=8), st.integers(), st.none()), inner,
                        max_size=4),
        st.tuples(inner, inner),
    ),
    max_leaves=12,
)
_IDENTITY = st.sampled_from(
    [{"user_id": "u1"}, {"anonymous_id": "a1"}, {}, {"user_id": ""}, {"user_id": BrokenStr()}]
)
_EXTRAS = st.builds(
    lambda identity, extra: {**extra, **identity},
    _IDENTITY,
    st.dictionaries(_KEYS, _VALUES, max_size=6),
)
_WORDS = st.sampled_from(
    ["Fuzzed", "identify", "track", "page", "screen", "group", "alias", "%s broken", ""]
)


class TestArbitraryExtras:
    """Property: any extra dict through the real handler is delivered or counted dropped."""

    def test_arbitrary_extra_dicts(self, collector: Collector) -> None:
        """Hypothesis feeds extras and messages; nothing raises, every record is accounted."""
        with analytics_logger(collector.endpoint, flush_at=25, flush_interval=0.05) as (
            log, handler,
        ):

            @settings(max_examples=300, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(word=_WORDS, extra=_EXTRAS)
            def log_one(word: str, extra: dict[str, Any]) -> None:
                log.info(word, extra=extra)  # must not raise into the caller

            log_one()
            assert handler.flush(timeout=60)
            assert handler.listener.running and handler.listener.sender.running
            stats: dict[str, Any] = handler.stats()
        assert stats["processed"] >= 300
        assert accounted(stats)
        assert stats["sent"] == len(collector.messages)
        assert stats["sent"] > 0 and stats["dropped"]["invalid"] > 0
        assert collector.invalid == []  # what was sent is valid Segment
