"""Unit tests of logbridge.encoding: messages become JSON bytes, whatever they hold."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import decimal
import enum
import json
import types
import uuid
from pathlib import PurePosixPath
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logbridge.encoding import Encoder, convert, to_jsonable

UTC = dt.timezone.utc


def encode_value(value: Any) -> tuple[Any, int]:
    """Encode ``{"v": value}`` with a new Encoder; return the parsed value and the count."""
    encoder = Encoder()
    out = encoder.encode({"v": value})
    assert isinstance(out, bytes)
    return json.loads(out.decode("utf-8"))["v"], encoder.coerced


class Colour(enum.Enum):
    RED = "red"
    BLUE = 2


@dataclasses.dataclass
class Item:
    sku: str
    added: dt.datetime
    tags: frozenset[str]


class Model:
    """Looks like a pydantic model: it has model_dump."""

    def model_dump(self) -> dict[str, Any]:
        return {"id": 1, "when": dt.date(2026, 11, 22)}


class Plain:
    def __str__(self) -> str:
        return "plain!"


class BadStr:
    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        return "<BadStr>"


class BadBoth:
    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class TestConversions:
    """Each row of the module docstring's table, as parsed JSON."""

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (dt.datetime(2026, 11, 22, 6, 30, 0, 123456), "2026-11-22T06:30:00.123Z"),
            (dt.datetime(2026, 11, 22, 6, 30, tzinfo=UTC), "2026-11-22T06:30:00.000Z"),
            (
                dt.datetime(
                    2026, 11, 22, 8, 30, 0, 500000, tzinfo=dt.timezone(dt.timedelta(hours=2))
                ),
                "2026-11-22T06:30:00.500Z",
            ),
            (
                dt.datetime(
                    2026, 11, 21, 22, 0, tzinfo=dt.timezone(dt.timedelta(hours=-8, minutes=-30))
                ),
                "2026-11-22T06:30:00.000Z",
            ),
        ],
    )
    def test_datetime(self, value: dt.datetime, expected: str):
        """A datetime is ISO-8601 in UTC with milliseconds and Z; a naive one is UTC."""
        assert encode_value(value) == (expected, 0)

    def test_date_and_time(self):
        """A date and a time are their ISO strings."""
        assert encode_value(dt.date(2026, 11, 22)) == ("2026-11-22", 0)
        assert encode_value(dt.time(6, 30)) == ("06:30:00", 0)

    def test_timedelta(self):
        """A timedelta is its seconds."""
        assert encode_value(dt.timedelta(minutes=1, milliseconds=500)) == (60.5, 0)

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (decimal.Decimal("12.50"), 12.5),
            (decimal.Decimal("-3"), -3),
            (decimal.Decimal("NaN"), None),
            (decimal.Decimal("sNaN"), None),
            (decimal.Decimal("Infinity"), None),
            (decimal.Decimal("-Infinity"), None),
        ],
    )
    def test_decimal(self, value: decimal.Decimal, expected: Any):
        """A Decimal is a number; its NaN and infinities are null."""
        assert encode_value(value)[0] == expected

    @pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
    def test_float_not_finite(self, value: float):
        """A float NaN or infinity is null (JSON has no such numbers)."""
        assert encode_value(value)[0] is None

    def test_uuid_and_path(self):
        """A UUID and a path are their strings."""
        value = uuid.UUID("12345678-1234-5678-1234-567812345678")
        assert encode_value(value) == (str(value), 0)
        assert encode_value(PurePosixPath("/var/log/app.log")) == ("/var/log/app.log", 0)

    def test_sets_and_tuples(self):
        """Sets and frozensets are sorted arrays; a tuple is an array."""
        assert encode_value({3, 1, 2}) == ([1, 2, 3], 0)
        assert encode_value(frozenset({"b", "c", "a"})) == (["a", "b", "c"], 0)
        assert encode_value((1, "a", None)) == ([1, "a", None], 0)

    def test_unsortable_set(self):
        """A set whose items do not sort is an array of its items, in any order."""
        value, _ = encode_value({1, "a"})
        assert sorted(value, key=str) == [1, "a"]

    def test_set_of_decimals_with_nan(self):
        """A set holding a Decimal NaN (whose comparison raises) still encodes."""
        value, _ = encode_value({decimal.Decimal("NaN"), decimal.Decimal(1)})
        assert sorted(value, key=str) == [1.0, None]

    def test_bytes(self):
        """Bytes are UTF-8 text, or base64 when they are not valid UTF-8."""
        assert encode_value("café".encode()) == ("café", 0)
        assert encode_value(bytearray(b"abc")) == ("abc", 0)
        assert encode_value(b"\xff\xfe\x00") == ("//4A", 0)

    def test_enum(self):
        """An Enum is its value."""
        assert encode_value([Colour.RED, Colour.BLUE]) == (["red", 2], 0)

    def test_dataclass(self):
        """A dataclass is an object of its fields, each converted in turn."""
        item = Item("A1", dt.datetime(2026, 11, 22, 6, 30), frozenset({"y", "x"}))
        assert encode_value(item) == (
            {"sku": "A1", "added": "2026-11-22T06:30:00.000Z", "tags": ["x", "y"]},
            0,
        )

    def test_model_dump(self):
        """An object with model_dump (pydantic) is the dict it dumps."""
        assert encode_value(Model()) == ({"id": 1, "when": "2026-11-22"}, 0)

    def test_other_mapping(self):
        """A mapping that is not a dict is an object."""
        assert encode_value(types.MappingProxyType({"a": 1})) == ({"a": 1}, 0)

    def test_non_string_keys(self):
        """Dict keys that are not strings become strings."""
        key = uuid.UUID("12345678-1234-5678-1234-567812345678")
        value, _ = encode_value({1: "int", None: "none", key: "uuid", dt.date(2026, 1, 2): "d"})
        assert value == {"1": "int", "null": "none", str(key): "uuid", "2026-01-02": "d"}

    def test_self_containing_dict(self):
        """A dict that contains itself encodes the inner one as "<recursive>"."""
        value: dict[str, Any] = {"a": 1}
        value["self"] = value
        assert encode_value(value)[0] == {"a": 1, "self": "<recursive>"}

    def test_self_containing_list(self):
        """A list that contains itself encodes the inner one as "<recursive>"."""
        value: list[Any] = [1]
        value.append(value)
        assert encode_value(value)[0] == [1, "<recursive>"]

    def test_shared_reference_is_not_recursive(self):
        """The same dict twice (no cycle) is encoded twice, not called recursive."""
        shared = {"x": 1}
        other: list[Any] = []
        other.append(other)  # forces the cleaning path
        assert encode_value({"a": shared, "b": shared, "c": other})[0] == {
            "a": {"x": 1},
            "b": {"x": 1},
            "c": ["<recursive>"],
        }

    @pytest.mark.parametrize("container", [list, dict])
    def test_very_deep_nesting(self, container: type):
        """Nesting deeper than any recursion limit encodes, cut off with "<too deep>"."""
        value: Any = "bottom"
        for _ in range(20_000):
            value = [value] if container is list else {"k": value}
        parsed, coerced = encode_value(value)
        depth = 0
        while parsed != "<too deep>":
            parsed = parsed[0] if container is list else parsed["k"]
            depth += 1
            assert depth < 200
        assert coerced == 1

    def test_str_fallback(self):
        """Anything else is its str(), and counted."""
        assert encode_value(Plain()) == ("plain!", 1)

    def test_str_raises(self):
        """An object whose __str__ raises is its repr, and counted."""
        assert encode_value(BadStr()) == ("<BadStr>", 1)

    def test_str_and_repr_raise(self):
        """An object whose __str__ and __repr__ both raise is still encoded, and counted."""
        value, coerced = encode_value(BadBoth())
        assert isinstance(value, str)
        assert "BadBoth" in value
        assert coerced == 1

    @pytest.mark.parametrize("value", ["a\ud800b", "\udfff", {"k\ud800": "v"}])
    def test_lone_surrogates(self, value: Any):
        """A lone surrogate gives valid (strictly decodable) UTF-8 that parses."""
        out = Encoder().encode({"v": value})
        text = out.decode("utf-8")  # strict: what a server's JSON parser accepts
        assert json.loads(text)["v"]

    @pytest.mark.parametrize(
        "value",
        [
            dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5))),
            dt.datetime(9999, 12, 31, 23, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
        ],
    )
    def test_datetime_out_of_utc_range(self, value: dt.datetime):
        """An aware datetime whose UTC moment is outside year 1-9999 still encodes."""
        parsed, _ = encode_value(value)
        assert isinstance(parsed, str)


class TestCoerced:
    """``coerced`` counts the lossy conversions, once each."""

    def test_exact_conversions_not_counted(self):
        """Conversions that lose nothing are not counted."""
        encoder = Encoder()
        encoder.encode(
            {
                "when": dt.datetime(2026, 11, 22),
                "id": uuid.uuid4(),
                "set": {1, 2},
                "bytes": b"\xff",
                "enum": Colour.RED,
                "amount": decimal.Decimal("1.5"),
            }
        )
        assert encoder.coerced == 0

    def test_each_lossy_value_counted(self):
        """Each str() fallback, non-finite float and cycle counts one."""
        cycle: list[Any] = []
        cycle.append(cycle)
        encoder = Encoder(use_orjson=False)  # orjson writes NaN as null without a word
        # The NaN comes first, so the fast path gives up before converting anything.
        encoder.encode({"b": [float("nan"), float("inf")], "a": Plain(), "c": cycle})
        assert encoder.coerced == 4

    def test_counted_once_when_cleaning(self):
        """A value converted before the fast path gave up is not counted twice."""
        encoder = Encoder(use_orjson=False)
        encoder.encode({"a": Plain(), "b": float("nan")})
        assert encoder.coerced == 2

    def test_count_accumulates(self):
        """The count grows across messages encoded by the same encoder."""
        encoder = Encoder()
        encoder.encode({"a": Plain()})
        encoder.encode({"a": Plain(), "b": Plain()})
        assert encoder.coerced == 3

    def test_to_jsonable(self):
        """to_jsonable returns a JSON-only copy and its count, leaving the input alone."""
        value = {"s": {2, 1}, "f": float("nan"), "o": Plain(), 3: (1, 2)}
        before = copy.copy(value)
        cleaned, coerced = to_jsonable(value)
        assert cleaned == {"s": [1, 2], "f": None, "o": "plain!", "3": [1, 2]}
        assert coerced == 2
        assert value == before

    def test_convert(self):
        """convert says whether a conversion was exact."""
        assert convert(uuid.UUID(int=0)) == ("00000000-0000-0000-0000-000000000000", True)
        assert convert(Plain()) == ("plain!", False)


class TestOutput:
    """The output is compact UTF-8 JSON."""

    def test_compact_utf8(self):
        """No spaces after separators, and non-ASCII characters are kept, not escaped."""
        out = Encoder().encode({"a": [1, 2], "b": "café ✓ 日本", "c": {"d": None}})
        assert out == '{"a":[1,2],"b":"café ✓ 日本","c":{"d":null}}'.encode()

    def test_compact_when_cleaning(self):
        """The cleaning path gives the same compact UTF-8."""
        out = Encoder().encode({"a": [1, float("nan")], "b": "café"})
        assert out == '{"a":[1,null],"b":"café"}'.encode()

    def test_input_not_mutated(self):
        """Encoding leaves the message as it was, even on the cleaning path."""
        message = {"a": {"b": [1, float("inf")]}, "s": {3, 1}}
        before = repr(message)
        Encoder().encode(message)
        assert repr(message) == before


# JSON-ish values plus the awkward ones: non-finite floats, bytes, sets, datetimes, Decimals.
hashables = st.one_of(
    st.integers(),
    st.text(max_size=5),
    st.decimals(allow_nan=False, allow_infinity=True),
    st.just(decimal.Decimal("NaN")),  # a signalling NaN cannot be hashed, so no sets of those
    st.floats(allow_nan=True, allow_infinity=True),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
    st.sampled_from(["\ud800", "a\udfffb"]),
    st.binary(max_size=20),
    st.datetimes(timezones=st.none() | st.just(UTC)),
    st.datetimes(
        timezones=st.builds(
            dt.timezone,
            st.timedeltas(min_value=dt.timedelta(hours=-23), max_value=dt.timedelta(hours=23)),
        )
    ),
    st.dates(),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.sets(hashables, max_size=4),
    st.frozensets(hashables, max_size=4),
    st.uuids(),
)
keys = st.one_of(st.text(max_size=8), st.integers(), st.none(), st.booleans(), st.uuids())
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.dictionaries(keys, children, max_size=4),
    ),
    max_leaves=20,
)


class TestNeverRaises:
    """encode never raises, whatever a message holds."""

    @settings(max_examples=200, deadline=None, database=None, report_multiple_bugs=False)
    @given(st.dictionaries(st.text(max_size=8), values, max_size=5))
    def test_encode_never_raises(self, message: dict[str, Any]):
        """Any message of JSON-ish and awkward values encodes to bytes that parse as JSON."""
        out = Encoder().encode(message)
        assert isinstance(out, bytes)
        assert isinstance(json.loads(out), dict)


_plain_floats = st.floats(allow_nan=False, allow_infinity=False).filter(
    lambda f: "e" not in repr(f)
)
_event_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | _plain_floats
    | st.text()
    | st.datetimes(timezones=st.none() | st.just(dt.timezone.utc))
    | st.uuids()
    | st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-1000, max_value=1000),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


class TestOrjsonAndStdlib:
    """The orjson fast path and the stdlib path give the same JSON."""

    def test_orjson_is_used_when_installed(self) -> None:
        """With orjson installed (the dev extra), the default encoder takes the fast path."""
        assert Encoder().uses_orjson
        assert not Encoder(use_orjson=False).uses_orjson

    @settings(max_examples=300, deadline=None, database=None)
    @given(st.dictionaries(st.text(), _event_values, max_size=6))
    def test_same_bytes(self, properties: dict[str, Any]) -> None:
        """For values without exponent-form floats, both paths write identical bytes."""
        message = {"type": "track", "event": "E", "properties": properties}
        assert Encoder(use_orjson=True).encode(message) == Encoder(use_orjson=False).encode(
            message
        )

    @settings(max_examples=200, deadline=None, database=None)
    @given(st.lists(st.floats(), max_size=8))
    def test_same_numbers(self, numbers: list[float]) -> None:
        """Any float, NaN and infinities included, parses to the same value both ways."""
        message = {"properties": {"numbers": numbers}}
        fast = json.loads(Encoder(use_orjson=True).encode(message))
        plain = json.loads(Encoder(use_orjson=False).encode(message))
        assert fast == plain
