"""Spec messages become Amplitude events: the mapping of each type, ids, any input."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logbridge.destinations.amplitude_events import map_message
from logbridge.errors import InvalidEvent, UnsupportedEvent
from logbridge.message import build_message
from tests.amplitude_support import STAMP_MS, encode, message


class TestTrackPageScreen:
    """track, page and screen become events named as Segment's Amplitude destination names them."""

    def test_track(self) -> None:
        """A track is its event name with its properties, ids, time and insert_id."""
        (event,) = map_message(message("track", anonymous_id="anon-42", plan="pro"))
        assert event["event_type"] == "Signed Up"
        assert event["event_properties"] == {"plan": "pro"}
        assert (event["user_id"], event["device_id"]) == ("user-123", "anon-42")
        assert event["time"] == STAMP_MS
        assert event["insert_id"] == "msg-0001"
        assert event["library"].startswith("logbridge/")

    def test_device_id_from_context_wins(self) -> None:
        """context.device.id is the device_id even when there is an anonymousId."""
        msg = message("track", anonymous_id="anon-42", context={"device": {"id": "device-7"}})
        assert map_message(msg)[0]["device_id"] == "device-7"

    def test_context_fields(self) -> None:
        """ip, user agent, app version, os and locale are lifted from the context."""
        context = {
            "ip": "203.0.113.9", "userAgent": "Mozilla/5.0", "app": {"version": "2.1.3"},
            "os": {"name": "iOS", "version": "17.1"}, "locale": "en-US",
        }
        (event,) = map_message(message("track", context=context))
        assert {k: event[k] for k in ("ip", "user_agent", "app_version", "os_name",
                                      "os_version", "language")} == {
            "ip": "203.0.113.9", "user_agent": "Mozilla/5.0", "app_version": "2.1.3",
            "os_name": "iOS", "os_version": "17.1", "language": "en-US",
        }

    def test_context_of_any_mapping(self) -> None:
        """Nested context values that are mappings but not dicts are read too."""
        from types import MappingProxyType

        msg = message("track", context={"os": MappingProxyType({"name": "Linux"})})
        assert map_message(msg)[0]["os_name"] == "Linux"

    def test_revenue_fields_lifted(self) -> None:
        """revenue, price, quantity and productId go to the event's top level too."""
        msg = message("track", revenue=9.99, price=3.33, quantity=3, productId="sku-1",
                      revenueType="purchase", coupon="X")
        (event,) = map_message(msg)
        assert (event["revenue"], event["price"], event["quantity"]) == (9.99, 3.33, 3)
        assert (event["productId"], event["revenueType"]) == ("sku-1", "purchase")
        assert event["event_properties"]["coupon"] == "X"

    def test_wrong_revenue_types_not_lifted(self) -> None:
        """A quantity that is not an integer stays a property only."""
        (event,) = map_message(message("track", quantity=1.5, revenue="lots"))
        assert "quantity" not in event and "revenue" not in event
        assert event["event_properties"] == {"quantity": 1.5, "revenue": "lots"}

    def test_session_id_from_integrations(self) -> None:
        """integrations.Amplitude.session_id becomes the event's session_id."""
        msg = message("track", integrations={"Amplitude": {"session_id": 1_700_000_000_000}})
        assert map_message(msg)[0]["session_id"] == 1_700_000_000_000

    def test_bad_session_id_refused(self) -> None:
        """A session_id that is not a time is refused with its reason."""
        msg = message("track", integrations={"Amplitude": {"session_id": [1]}})
        with pytest.raises(InvalidEvent, match="session_id must be milliseconds"):
            map_message(msg)

    @pytest.mark.parametrize("kind", ["page", "screen"])
    def test_viewed_name(self, kind: str) -> None:
        """A page or screen is "Viewed {name}"."""
        (event,) = map_message(message(kind, **{f"{kind}_name": "Pricing"}, tab="yearly"))
        assert event["event_type"] == "Viewed Pricing"
        assert event["event_properties"] == {"tab": "yearly"}

    @pytest.mark.parametrize("kind", ["page", "screen"])
    def test_viewed_without_name(self, kind: str) -> None:
        """Without a name a page is "Viewed Page", a screen "Viewed Screen"."""
        assert map_message(message(kind))[0]["event_type"] == f"Viewed {kind.title()}"

    def test_none_properties_left_out(self) -> None:
        """Properties that are None are left out, as the official SDK does."""
        (event,) = map_message(message("track", plan="pro", coupon=None))
        assert event["event_properties"] == {"plan": "pro"}

    def test_long_strings_cut_at_1024(self) -> None:
        """Strings, nested ones too, are cut at Amplitude's 1,024 characters."""
        (event,) = map_message(message("track", note="x" * 2000, nested={"list": ["y" * 1500]}))
        assert len(event["event_properties"]["note"]) == 1024
        assert len(event["event_properties"]["nested"]["list"][0]) == 1024

class TestIdentifyGroupAlias:
    """identify and group become $identify/$groupidentify; alias a User Mapping or nothing."""

    def test_identify(self) -> None:
        """An identify is $identify with user_properties.$set = traits."""
        (event,) = map_message(message("identify", email="a@example.com", plan="pro"))
        assert event["event_type"] == "$identify"
        assert event["user_properties"] == {"$set": {"email": "a@example.com", "plan": "pro"}}
        assert "event_properties" not in event

    def test_group_two_events(self) -> None:
        """A group puts the user in it, then sets its traits, with distinct insert_ids."""
        membership, properties = map_message(message("group", group_id="acme-inc", name="Acme"))
        assert membership["event_type"] == "$identify"
        assert membership["groups"] == {"company": "acme-inc"}
        assert membership["user_properties"] == {"$set": {"company": "acme-inc"}}
        assert properties["event_type"] == "$groupidentify"
        assert properties["groups"] == {"company": "acme-inc"}
        assert properties["group_properties"] == {"$set": {"name": "Acme"}}
        assert membership["insert_id"] != properties["insert_id"]
        assert properties["insert_id"] == map_message(message("group", group_id="acme-inc"))[1][
            "insert_id"
        ]

    def test_group_type_from_the_call(self) -> None:
        """The call's group_type key names the group type and is not a trait."""
        _, properties = map_message(message("group", group_id="team-9", group_type="team"))
        assert properties["groups"] == {"team": "team-9"}
        assert properties["group_properties"] == {"$set": {}}

    def test_group_type_option(self) -> None:
        """Without group_type the amplitude_group_type option names it."""
        membership, _ = map_message(message("group", group_id="org-12"), group_type="org")
        assert membership["groups"] == {"org": "org-12"}

    def test_alias_unsupported_without_usermap(self) -> None:
        """Without the User Mapping API an alias is refused as unsupported."""
        alias = message("alias", previous_id="old-user")
        with pytest.raises(UnsupportedEvent, match=r"no alias .*amplitude_usermap=True"):
            map_message(alias)

    def test_alias_usermap(self) -> None:
        """With usermap an alias is a mapping of previousId onto userId."""
        (item,) = map_message(message("alias", previous_id="old-user"), usermap=True)
        assert item == {"$usermap": {"user_id": "old-user", "global_user_id": "user-123"}}

class TestIds:
    """Ids Amplitude would drop or refuse are refused at the record, with the reason."""

    def test_short_id_refused(self) -> None:
        """A 3-character user id is under the minimum of 5."""
        with pytest.raises(InvalidEvent, match="userId has 3 characters, under Amplitude's min"):
            map_message(message("track", user_id="abc"))

    def test_min_id_length_allows_shorter(self) -> None:
        """min_id_length=3 lets a 3-character id through."""
        assert map_message(message("track", user_id="abc"), min_id_length=3)[0]["user_id"] == "abc"

    def test_short_device_id_refused(self) -> None:
        """A short anonymousId is refused too."""
        with pytest.raises(InvalidEvent, match="anonymousId has 2 characters"):
            map_message(message("track", anonymous_id="ab"))

    @pytest.mark.parametrize("placeholder", ["null", "anonymous", "0", "-1", "NULL",
                                             "00000000-0000-0000-0000-000000000000"])
    def test_placeholders_refused(self, placeholder: str) -> None:
        """Placeholder ids are refused whatever min_id_length says."""
        with pytest.raises(InvalidEvent, match="placeholder id that Amplitude refuses"):
            map_message(message("track", user_id=placeholder), min_id_length=1)

    def test_too_long_id_refused(self) -> None:
        """An id over 1,024 characters is refused rather than cut (it would merge users)."""
        with pytest.raises(InvalidEvent, match="1024-character limit"):
            map_message(message("track", user_id="u" * 1025))

class TestAnyInput:
    """Whatever a logging call carries, the mapping gives events or refuses with a reason."""

    @settings(max_examples=200, deadline=None)
    @given(
        kind=st.sampled_from(["track", "page", "screen", "identify", "group", "alias"]),
        fields=st.dictionaries(
            st.sampled_from(["user_id", "anonymous_id", "group_id", "previous_id", "context",
                             "integrations", "group_type", "revenue", "quantity", "x"]),
            st.recursive(
                st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                lambda inner: st.lists(inner, max_size=3)
                | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                max_leaves=8,
            ),
        ),
    )
    def test_events_or_invalid_event(self, kind: str, fields: dict[str, Any]) -> None:
        """map_message returns dict events or raises InvalidEvent, never anything else."""
        try:
            built, _ = build_message(kind, fields, event="E" if kind == "track" else None)
        except InvalidEvent:
            return
        try:
            events = map_message(built, usermap=True)
        except InvalidEvent as exc:
            assert exc.reason
            return
        assert events and all(isinstance(event, dict) for event in events)
        encode(events)
