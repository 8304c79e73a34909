"""Unit tests of logbridge.message: fields become a Segment-spec message."""

from __future__ import annotations

import copy
import datetime as dt
import re
import time
import uuid
from typing import Any

import pytest

import logbridge
from logbridge.errors import InvalidEvent
from logbridge.message import LIBRARY, build_message, format_timestamp, type_word_hint

UTC = dt.timezone.utc
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
EXPECTED_LIBRARY = {"name": "logbridge", "version": logbridge.__version__}


def build(kind: str, fields: dict[Any, Any], **kwargs: Any) -> dict[str, Any]:
    """Build a message and check that nothing was left out."""
    message, ignored = build_message(kind, fields, **kwargs)
    assert ignored == []
    return message


def reason_of(kind: str, fields: dict[Any, Any], **kwargs: Any) -> str:
    """The reason of the InvalidEvent that building ``fields`` raises."""
    with pytest.raises(InvalidEvent) as info:
        build_message(kind, fields, **kwargs)
    assert info.value.reason == str(info.value)
    return info.value.reason


def dict_ids(value: Any) -> set[int]:
    """The ids of every dict inside ``value`` (through lists too), ``value`` included."""
    found: set[int] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            found.add(id(item))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


# (kind, snake_case fields, camelCase fields, the message fields both must give)
TYPE_CASES = [
    (
        "identify",
        {"user_id": "u1", "email": "a@example.com"},
        {"userId": "u1", "email": "a@example.com"},
        {"type": "identify", "userId": "u1", "traits": {"email": "a@example.com"}},
    ),
    (
        "track",
        {"user_id": "u1", "event": "Order Completed", "revenue": 9.5},
        {"userId": "u1", "event": "Order Completed", "revenue": 9.5},
        {
            "type": "track",
            "userId": "u1",
            "event": "Order Completed",
            "properties": {"revenue": 9.5},
        },
    ),
    (
        "page",
        {"anonymous_id": "a1", "page_name": "Pricing", "category": "Docs", "path": "/p"},
        {"anonymousId": "a1", "page_name": "Pricing", "category": "Docs", "path": "/p"},
        {
            "type": "page",
            "anonymousId": "a1",
            "name": "Pricing",
            "category": "Docs",
            "properties": {"path": "/p"},
        },
    ),
    (
        "screen",
        {"anonymous_id": "a1", "screen_name": "Settings", "category": "App", "dark": True},
        {"anonymousId": "a1", "screen_name": "Settings", "category": "App", "dark": True},
        {
            "type": "screen",
            "anonymousId": "a1",
            "name": "Settings",
            "category": "App",
            "properties": {"dark": True},
        },
    ),
    (
        "group",
        {"user_id": "u1", "group_id": "g1", "plan": "pro"},
        {"userId": "u1", "groupId": "g1", "plan": "pro"},
        {"type": "group", "userId": "u1", "groupId": "g1", "traits": {"plan": "pro"}},
    ),
    (
        "alias",
        {"user_id": "new", "previous_id": "old"},
        {"userId": "new", "previousId": "old"},
        {"type": "alias", "userId": "new", "previousId": "old"},
    ),
]

TOP_LEVEL_KEYS = {
    "identify": {"type", "userId", "traits", "context", "timestamp", "messageId"},
    "track": {"type", "userId", "event", "properties", "context", "timestamp", "messageId"},
    "page": {
        "type",
        "anonymousId",
        "name",
        "category",
        "properties",
        "context",
        "timestamp",
        "messageId",
    },
    "screen": {
        "type",
        "anonymousId",
        "name",
        "category",
        "properties",
        "context",
        "timestamp",
        "messageId",
    },
    "group": {"type", "userId", "groupId", "traits", "context", "timestamp", "messageId"},
    "alias": {"type", "userId", "previousId", "context", "timestamp", "messageId"},
}


class TestTypeStyle:
    """The log message names the type; the fields fill it."""

    @pytest.mark.parametrize(("kind", "snake", "camel", "expected"), TYPE_CASES)
    def test_snake_case_keys(self, kind: str, snake: dict[str, Any], camel: Any, expected: Any):
        """snake_case keys fill the spec's camelCase fields of every type."""
        message = build(kind, snake)
        assert {key: message[key] for key in expected} == expected

    @pytest.mark.parametrize(("kind", "snake", "camel", "expected"), TYPE_CASES)
    def test_camel_case_keys(self, kind: str, snake: Any, camel: dict[str, Any], expected: Any):
        """camelCase keys fill the same fields as their snake_case forms."""
        message = build(kind, camel)
        assert {key: message[key] for key in expected} == expected

    @pytest.mark.parametrize(("kind", "snake", "camel", "expected"), TYPE_CASES)
    def test_top_level_keys(self, kind: str, snake: dict[str, Any], camel: Any, expected: Any):
        """Each type carries exactly its spec fields at the top level, nothing else."""
        assert set(build(kind, snake)) == TOP_LEVEL_KEYS[kind]

    def test_both_ids(self):
        """A message may carry userId and anonymousId together."""
        message = build("track", {"user_id": "u1", "anonymous_id": "a1", "event": "E"})
        assert (message["userId"], message["anonymousId"]) == ("u1", "a1")

    def test_same_value_in_both_spellings(self):
        """The same value given as snake_case and camelCase is not a conflict."""
        message = build("identify", {"user_id": "u1", "userId": "u1"})
        assert message["userId"] == "u1"
        assert message["traits"] == {}

    def test_event_key_on_a_page_is_a_property(self):
        """A recognised key the type does not take (event on a page) becomes a property."""
        message = build("page", {"user_id": "u1", "event": "x", "group_id": "g1"})
        assert message["properties"] == {"event": "x", "group_id": "g1"}
        assert "event" not in message
        assert "groupId" not in message


class TestEventNameStyle:
    """Any other log message is the event name of an implicit track."""

    def test_message_is_the_event(self):
        """The event argument becomes the track's event and extras become properties."""
        message = build("track", {"user_id": "u1", "revenue": 3}, event="Order Completed")
        assert message["type"] == "track"
        assert message["event"] == "Order Completed"
        assert message["properties"] == {"revenue": 3}

    def test_event_key_stays_a_property(self):
        """An ``event`` key in the fields is data, not the event name, in event-name style."""
        message = build("track", {"user_id": "u1", "event": "signup"}, event="Clicked")
        assert message["event"] == "Clicked"
        assert message["properties"] == {"event": "signup"}

    def test_empty_event_name(self):
        """An empty log message cannot name a track."""
        assert "event name" in reason_of("track", {"user_id": "u1"}, event="")


class TestPropertiesAndTraits:
    """Unrecognised keys go to properties or traits, merged over the explicit dict."""

    @pytest.mark.parametrize(
        ("kind", "required", "bag"),
        [
            ("track", {"event": "E"}, "properties"),
            ("page", {}, "properties"),
            ("screen", {}, "properties"),
            ("identify", {}, "traits"),
            ("group", {"group_id": "g1"}, "traits"),
        ],
    )
    def test_extra_keys_go_to_the_bag(self, kind: str, required: dict[str, Any], bag: str):
        """Extra keys land in properties (track/page/screen) or traits (identify/group)."""
        message = build(kind, {"user_id": "u1", "plan": "pro", "seats": 3, **required})
        assert message[bag] == {"plan": "pro", "seats": 3}

    @pytest.mark.parametrize(
        ("kind", "required", "bag"),
        [
            ("track", {"event": "E"}, "properties"),
            ("page", {}, "properties"),
            ("screen", {}, "properties"),
            ("identify", {}, "traits"),
            ("group", {"group_id": "g1"}, "traits"),
        ],
    )
    def test_extra_key_wins_over_explicit_dict(self, kind: str, required: dict[str, Any], bag: str):
        """Extra keys are merged over the explicit dict, the extra key winning a clash."""
        fields = {"user_id": "u1", bag: {"a": 1, "b": 2}, "b": 3, "c": 4, **required}
        assert build(kind, fields)[bag] == {"a": 1, "b": 3, "c": 4}

    def test_traits_on_a_track_go_to_context_traits(self):
        """Traits sent with a track live in context.traits, merged over the context's own."""
        message = build(
            "track",
            {
                "user_id": "u1",
                "event": "E",
                "traits": {"plan": "pro", "email": "new@example.com"},
                "context": {"traits": {"email": "old@example.com", "age": 3}},
            },
        )
        assert "traits" not in message
        assert message["context"]["traits"] == {
            "email": "new@example.com",
            "age": 3,
            "plan": "pro",
        }
        assert message["properties"] == {}

    def test_properties_on_an_identify_fold_into_traits(self):
        """A properties dict on an identify is folded into traits, below explicit traits."""
        message = build(
            "identify",
            {"user_id": "u1", "properties": {"a": 1, "b": 1}, "traits": {"b": 2}, "c": 3},
        )
        assert message["traits"] == {"a": 1, "b": 2, "c": 3}
        assert "properties" not in message

    def test_page_name_on_a_screen_is_a_property(self):
        """page_name names a page only: on a screen it is an ordinary property."""
        message = build("screen", {"user_id": "u1", "page_name": "Home"})
        assert "name" not in message
        assert message["properties"] == {"page_name": "Home"}

    def test_screen_name_on_a_page_is_a_property(self):
        """screen_name names a screen only: on a page it is an ordinary property."""
        message = build("page", {"user_id": "u1", "screen_name": "Home"})
        assert "name" not in message
        assert message["properties"] == {"screen_name": "Home"}

    @pytest.mark.parametrize(
        ("kind", "required", "bag"),
        [("track", {"event": "E"}, "properties"), ("identify", {}, "traits")],
    )
    def test_name_keys_elsewhere_are_data(self, kind: str, required: dict[str, Any], bag: str):
        """page_name and screen_name on other types are data, not a name."""
        fields = {"user_id": "u1", "page_name": "P", "screen_name": "S", **required}
        message = build(kind, fields)
        assert "name" not in message
        assert message[bag] == {"page_name": "P", "screen_name": "S"}

    def test_alias_returns_other_keys_as_ignored(self):
        """An alias has no properties or traits: its other keys are returned as ignored."""
        message, ignored = build_message(
            "alias",
            {"user_id": "new", "previous_id": "old", "plan": "pro", "traits": {"a": 1}},
        )
        assert sorted(ignored) == ["plan", "traits"]
        assert "properties" not in message
        assert "traits" not in message
        assert "traits" not in message["context"]

    def test_non_string_keys_are_kept_as_data(self):
        """A non-string key is never a field name: it goes to properties unchanged."""
        message = build("track", {"user_id": "u1", "event": "E", 1: "one"})
        assert message["properties"] == {1: "one"}


class TestValidation:
    """Fields that break the spec's rules raise InvalidEvent with a helpful reason."""

    @pytest.mark.parametrize(
        ("kind", "fields"),
        [
            ("track", {"event": "E"}),
            ("identify", {"email": "a@example.com"}),
            ("page", {"user_id": "", "anonymous_id": None}),
            ("group", {"group_id": "g1"}),
        ],
    )
    def test_no_user_or_anonymous_id(self, kind: str, fields: dict[str, Any]):
        """Every type needs user_id or anonymous_id (an empty one does not count)."""
        reason = reason_of(kind, fields)
        assert "user_id" in reason
        assert "anonymous_id" in reason

    def test_track_without_event(self):
        """A type-style track needs an event key."""
        assert "event" in reason_of("track", {"user_id": "u1"})

    def test_track_with_non_string_event(self):
        """A track's event must be a string."""
        assert "event must be a string" in reason_of("track", {"user_id": "u1", "event": 5})

    def test_group_without_group_id(self):
        """A group needs a groupId."""
        assert "groupId" in reason_of("group", {"user_id": "u1", "plan": "pro"})

    def test_alias_without_previous_id(self):
        """An alias needs a previousId."""
        assert "previousId" in reason_of("alias", {"user_id": "u1"})

    def test_alias_without_user_id(self):
        """An alias needs a userId; an anonymousId is not enough."""
        assert "userId" in reason_of("alias", {"anonymous_id": "a1", "previous_id": "old"})

    @pytest.mark.parametrize(
        ("kind", "fields", "field"),
        [
            ("track", {"user_id": "a", "userId": "b", "event": "E"}, "userId"),
            (
                "track",
                {"user_id": "u", "anonymous_id": "a", "anonymousId": "b", "event": "E"},
                "anonymousId",
            ),
            ("group", {"user_id": "u", "group_id": "g1", "groupId": "g2"}, "groupId"),
            ("alias", {"user_id": "u", "previous_id": "p1", "previousId": "p2"}, "previousId"),
            (
                "track",
                {"user_id": "u", "event": "E", "message_id": "m1", "messageId": "m2"},
                "messageId",
            ),
        ],
    )
    def test_conflicting_spellings(self, kind: str, fields: dict[str, Any], field: str):
        """Different values under the snake_case and camelCase spelling are refused."""
        reason = reason_of(kind, fields)
        assert "conflicting" in reason
        assert field in reason

    @pytest.mark.parametrize(
        ("kind", "key", "value"),
        [
            ("track", "properties", ["a"]),
            ("identify", "traits", "plan=pro"),
            ("track", "traits", 3),
            ("track", "context", "web"),
            ("identify", "properties", [("a", 1)]),
            ("track", "integrations", ["All"]),
        ],
    )
    def test_non_dict_bags(self, kind: str, key: str, value: Any):
        """properties, traits, context and integrations must be dicts."""
        reason = reason_of(kind, {"user_id": "u1", "event": "E", key: value})
        assert f"{key} must be a dict" in reason
        assert type(value).__name__ in reason

    def test_context_traits_not_a_dict(self):
        """context.traits must be a dict when a track's traits are merged into it."""
        fields = {"user_id": "u1", "event": "E", "traits": {}, "context": {"traits": 1}}
        assert "context.traits" in reason_of("track", fields)

    @pytest.mark.parametrize("value", ["yesterday", "2026-13-45T00:00:00Z", "1700000000x"])
    def test_bad_timestamp_string(self, value: str):
        """A timestamp string that is not ISO-8601 is refused, naming the value."""
        reason = reason_of("track", {"user_id": "u1", "event": "E", "timestamp": value})
        assert "timestamp" in reason
        assert repr(value) in reason

    @pytest.mark.parametrize("value", [[2026, 11, 22], True, object()])
    def test_bad_timestamp_type(self, value: Any):
        """A timestamp that is neither a datetime, a string nor a number is refused."""
        reason = reason_of("track", {"user_id": "u1", "event": "E", "timestamp": value})
        assert "timestamp" in reason

    @pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), 1e20])
    def test_impossible_epoch_timestamp(self, value: float):
        """An epoch timestamp that is no moment (NaN, infinite, far out) is an InvalidEvent."""
        reason = reason_of("track", {"user_id": "u1", "event": "E", "timestamp": value})
        assert "timestamp" in reason

    @pytest.mark.parametrize(
        ("kind", "fields", "field"),
        [
            ("track", {"user_id": True, "event": "E"}, "userId"),
            ("track", {"anonymous_id": False, "event": "E"}, "anonymousId"),
            ("group", {"user_id": "u1", "group_id": True}, "groupId"),
            ("alias", {"user_id": "u1", "previous_id": True}, "previousId"),
            ("alias", {"user_id": False, "previous_id": "old"}, "userId"),
            ("track", {"user_id": 1.5, "event": "E"}, "userId"),
            ("track", {"user_id": ["u1"], "event": "E"}, "userId"),
        ],
    )
    def test_non_string_ids(self, kind: str, fields: dict[str, Any], field: str):
        """Identifiers must be strings: bools, floats and lists are refused."""
        reason = reason_of(kind, fields)
        assert f"{field} must be a string" in reason

    def test_int_ids_become_strings(self):
        """Integer identifiers are accepted and sent as strings."""
        message = build("group", {"user_id": 42, "anonymous_id": 7, "group_id": 0})
        assert (message["userId"], message["anonymousId"], message["groupId"]) == ("42", "7", "0")
        alias = build("alias", {"userId": 2, "previousId": 1})
        assert (alias["userId"], alias["previousId"]) == ("2", "1")

    def test_uuid_ids_become_strings(self):
        """A UUID identifier is sent as its string."""
        value = uuid.UUID("12345678-1234-5678-1234-567812345678")
        assert build("identify", {"user_id": value})["userId"] == str(value)

    @pytest.mark.parametrize(("kind", "key"), [("page", "page_name"), ("screen", "screen_name")])
    def test_non_string_name(self, kind: str, key: str):
        """A page or screen name must be a string."""
        assert "name must be a string" in reason_of(kind, {"user_id": "u1", key: 3})

    def test_non_string_category(self):
        """A page's category must be a string."""
        assert "category must be a string" in reason_of("page", {"user_id": "u1", "category": 1})

    def test_non_string_message_id(self):
        """An explicit messageId must be a string."""
        reason = reason_of("track", {"user_id": "u1", "event": "E", "message_id": 12})
        assert "messageId must be a string" in reason


class TestTimestamps:
    """Every timestamp becomes ``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC."""

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (dt.datetime(2026, 11, 22, 6, 30, 0, 500000, tzinfo=UTC), "2026-11-22T06:30:00.500Z"),
            (
                dt.datetime(2026, 11, 22, 8, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),
                "2026-11-22T06:30:00.000Z",
            ),
            (
                dt.datetime(
                    2026, 11, 22, 1, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5, minutes=-30))
                ),
                "2026-11-22T06:30:00.000Z",
            ),
            (dt.datetime(2026, 11, 22, 6, 30, 0, 250000), "2026-11-22T06:30:00.250Z"),
            (dt.date(2026, 11, 22), "2026-11-22T00:00:00.000Z"),
        ],
    )
    def test_datetimes(self, value: Any, expected: str):
        """Aware datetimes are converted to UTC; naive ones are taken as UTC; dates at 00:00."""
        assert build("identify", {"user_id": "u1", "timestamp": value})["timestamp"] == expected

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("2026-11-22T06:30:00Z", "2026-11-22T06:30:00.000Z"),
            ("2026-11-22T06:30:00.250Z", "2026-11-22T06:30:00.250Z"),
            ("2026-11-22T06:30:00.250z", "2026-11-22T06:30:00.250Z"),
            ("2026-11-22T06:30:00.500000+00:00", "2026-11-22T06:30:00.500Z"),
            ("2026-11-22T08:30:00+02:00", "2026-11-22T06:30:00.000Z"),
            ("2026-11-22T01:30:00-05:00", "2026-11-22T06:30:00.000Z"),
            ("2026-11-22T06:30:00", "2026-11-22T06:30:00.000Z"),
            (" 2026-11-22T06:30:00Z ", "2026-11-22T06:30:00.000Z"),
            ("2026-11-22", "2026-11-22T00:00:00.000Z"),
        ],
    )
    def test_iso_strings(self, value: str, expected: str):
        """ISO-8601 strings with Z, an offset or none (UTC) are normalised to UTC."""
        assert build("identify", {"user_id": "u1", "timestamp": value})["timestamp"] == expected

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (0, "1970-01-01T00:00:00.000Z"),
            (1795329000, "2026-11-22T06:30:00.000Z"),
            (1795329000.5, "2026-11-22T06:30:00.500Z"),
            (-0.5, "1969-12-31T23:59:59.500Z"),
        ],
    )
    def test_epoch_numbers(self, value: float, expected: str):
        """Numbers are seconds since the epoch."""
        assert build("identify", {"user_id": "u1", "timestamp": value})["timestamp"] == expected

    @pytest.mark.parametrize("millis", [1, 7, 123, 456, 789, 999])
    def test_exact_milliseconds_of_a_datetime(self, millis: int):
        """A datetime's milliseconds are kept exactly, never one less through float error."""
        value = dt.datetime(2026, 11, 22, 6, 30, 0, millis * 1000, tzinfo=UTC)
        message = build("identify", {"user_id": "u1", "timestamp": value})
        assert message["timestamp"] == f"2026-11-22T06:30:00.{millis:03d}Z"

    @pytest.mark.parametrize("text", ["2026-11-22T06:30:00.123Z", "2026-11-22T06:30:00.001Z"])
    def test_exact_milliseconds_of_a_string(self, text: str):
        """An ISO string that already has milliseconds comes out unchanged."""
        assert build("identify", {"user_id": "u1", "timestamp": text})["timestamp"] == text

    @pytest.mark.parametrize("seconds", [0.0, 1.001, 1795329000.123, 1795329000.999999, 1e9 + 0.5])
    def test_format_timestamp_matches_datetime(self, seconds: float):
        """format_timestamp renders a float like datetime does, truncated to milliseconds."""
        moment = dt.datetime.fromtimestamp(seconds, UTC)
        expected = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        assert format_timestamp(seconds) == expected

    def test_created_is_used_without_a_timestamp(self):
        """The record's creation time is the timestamp when the fields have none."""
        message = build("identify", {"user_id": "u1"}, created=0.25)
        assert message["timestamp"] == "1970-01-01T00:00:00.250Z"

    def test_explicit_timestamp_beats_created(self):
        """An explicit timestamp wins over the record's creation time."""
        fields = {"user_id": "u1", "timestamp": "2026-11-22T06:30:00Z"}
        assert build("identify", fields, created=0.25)["timestamp"] == "2026-11-22T06:30:00.000Z"

    def test_now_without_timestamp_or_created(self):
        """With neither a timestamp nor a creation time, the message is stamped now."""
        before = time.time()
        stamp = build("identify", {"user_id": "u1"})["timestamp"]
        after = time.time()
        assert TIMESTAMP.match(stamp)
        moment = dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        assert before - 0.002 <= moment.timestamp() <= after

    def test_every_type_has_the_format(self):
        """Every type gets a timestamp in the spec's format."""
        for kind, snake, _camel, _expected in TYPE_CASES:
            assert TIMESTAMP.match(build(kind, snake)["timestamp"])


class TestMessageId:
    """Each message has an id: a fresh uuid4 unless one is given."""

    def test_uuid4_by_default(self):
        """Without a messageId, a new uuid4 is made for every message."""
        first = build("identify", {"user_id": "u1"})["messageId"]
        second = build("identify", {"user_id": "u1"})["messageId"]
        assert uuid.UUID(first).version == 4
        assert str(uuid.UUID(first)) == first
        assert first != second

    @pytest.mark.parametrize("key", ["message_id", "messageId"])
    def test_given_id_is_kept(self, key: str):
        """A messageId given in either spelling is kept as it is."""
        assert build("identify", {"user_id": "u1", key: "dedupe-1"})["messageId"] == "dedupe-1"


class TestContext:
    """context.library names logbridge, over the default and the event's context."""

    def test_library(self):
        """context.library is logbridge and its installed version."""
        message = build("identify", {"user_id": "u1"})
        assert message["context"] == {"library": EXPECTED_LIBRARY}

    def test_default_context_is_merged(self):
        """The handler-level default context is merged under the event's own context."""
        default = {"app": {"name": "shop"}, "locale": "en-GB"}
        fields = {"user_id": "u1", "context": {"locale": "fr-FR", "ip": "10.0.0.1"}}
        message = build("identify", fields, context=default)
        assert message["context"] == {
            "app": {"name": "shop"},
            "locale": "fr-FR",
            "ip": "10.0.0.1",
            "library": EXPECTED_LIBRARY,
        }

    def test_library_always_wins(self):
        """Neither the default nor the event's context can replace context.library."""
        fields = {"user_id": "u1", "context": {"library": {"name": "evil", "version": "0"}}}
        message = build("identify", fields, context={"library": {"name": "other"}})
        assert message["context"]["library"] == EXPECTED_LIBRARY

    def test_integrations_when_given(self):
        """integrations is copied into the message when given, and absent otherwise."""
        integrations = {"All": False, "Mixpanel": True}
        message = build("track", {"user_id": "u1", "event": "E", "integrations": integrations})
        assert message["integrations"] == integrations
        assert "integrations" not in build("track", {"user_id": "u1", "event": "E"})

    def test_integrations_on_an_alias(self):
        """integrations is a common field: an alias takes it too."""
        fields = {"user_id": "n", "previous_id": "o", "integrations": {"All": True}}
        assert build("alias", fields)["integrations"] == {"All": True}


class TestNoSharing:
    """The caller's dicts are never modified and the message's dicts are new objects."""

    def fields_for(self, kind: str) -> dict[str, Any]:
        """Fields with nested dicts in every bag the type reads."""
        fields: dict[str, Any] = {
            "user_id": "u1",
            "properties": {"cart": {"items": [{"sku": "A"}]}, "total": 3},
            "traits": {"address": {"city": "Oslo"}, "plan": "pro"},
            "context": {"traits": {"email": "a@example.com"}, "device": {"id": "d1"}},
            "integrations": {"All": True, "Options": {"x": 1}},
            "extra": {"nested": {"deep": [1, 2]}},
        }
        extra_required = {
            "track": {"event": "E"},
            "group": {"group_id": "g1"},
            "alias": {"previous_id": "old"},
        }
        fields.update(extra_required.get(kind, {}))
        return fields

    @pytest.mark.parametrize("kind", sorted(TOP_LEVEL_KEYS))
    def test_caller_dicts_not_mutated(self, kind: str):
        """Building any type leaves the fields and the default context exactly as they were."""
        fields = self.fields_for(kind)
        default = {"app": {"name": "shop"}, "traits": {"tier": "gold"}}
        fields_before = copy.deepcopy(fields)
        default_before = copy.deepcopy(default)
        build_message(kind, fields, context=default)
        assert fields == fields_before
        assert default == default_before

    @pytest.mark.parametrize("kind", sorted(TOP_LEVEL_KEYS))
    def test_top_level_dicts_are_new(self, kind: str):
        """properties, traits, context, context.traits and integrations are new dicts."""
        fields = self.fields_for(kind)
        default = {"app": {"name": "shop"}}
        message, _ = build_message(kind, fields, context=default)
        given = [fields["properties"], fields["traits"], fields["context"], default]
        given += [fields["context"]["traits"], fields["integrations"]]
        for key in ("properties", "traits", "context", "integrations"):
            if key in message:
                assert all(message[key] is not other for other in given), key
        if kind in ("track", "page", "screen"):  # context.traits is built by merging
            assert all(message["context"]["traits"] is not other for other in given)

    def test_writing_to_the_message_leaves_the_caller_alone(self):
        """Adding keys to the message's dicts does not add them to the caller's."""
        fields = self.fields_for("track")
        before = copy.deepcopy(fields)
        message = build("track", fields)
        message["properties"]["added"] = 1
        message["context"]["added"] = 1
        message["context"]["traits"]["added"] = 1
        message["integrations"]["added"] = 1
        assert fields == before

    def test_library_dict_is_not_shared(self):
        """context.library is a new dict in every message, never the module's LIBRARY."""
        first = build("identify", {"user_id": "u1"})
        second = build("identify", {"user_id": "u1"})
        assert first["context"]["library"] is not LIBRARY
        assert first["context"]["library"] is not second["context"]["library"]



class TestMessageIds:
    """Generated messageIds are random version-4 UUIDs, unique across forks."""

    def test_ids_are_uuid4(self):
        """Each generated id parses as a version-4, RFC 4122 UUID and prints the same."""
        import uuid

        from logbridge.message import new_message_id

        for _ in range(200):
            text = new_message_id()
            parsed = uuid.UUID(text)
            assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)

    def test_a_forked_child_draws_other_ids(self):
        """A child forked after ids were drawn does not repeat the parent's next ids."""
        from tests.support import run_python

        result = run_python(
            """
            import os
            from logbridge.message import new_message_id
            new_message_id()
            read_end, write_end = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: report its first id and leave at once
                os.write(write_end, new_message_id().encode())
                os._exit(0)
            os.waitpid(pid, 0)
            print(os.read(read_end, 64).decode(), new_message_id())
            """
        )
        assert result.returncode == 0, result.stderr
        child_id, parent_id = result.stdout.split()
        assert child_id != parent_id


class TestNearTypeWords:
    """A type word in another case or with stray spaces stays a track, with a hint."""

    @pytest.mark.parametrize("word", ["Identify", "identify ", " TRACK", "Page\n"])
    def test_near_words_get_the_type_they_resemble(self, word: str) -> None:
        """The hint names the type word the message resembles."""
        assert type_word_hint(word) == word.strip().lower()

    @pytest.mark.parametrize("word", ["identify", "Order Completed", "", "identified", None])
    def test_other_words_get_no_hint(self, word: str | None) -> None:
        """Exact type words, event names and non-strings get no hint."""
        assert type_word_hint(word) is None
