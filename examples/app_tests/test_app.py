"""The shop's analytics, checked with logbridge's ``analytics_events`` fixture."""

from __future__ import annotations

from decimal import Decimal

import shop

from logbridge.testing import CapturedEvents


def test_sign_up_identifies_then_tracks(analytics_events: CapturedEvents) -> None:
    """Signing up identifies the user with their email, then tracks Signed Up."""
    user_id = shop.sign_up("ada@example.com")
    analytics_events.assert_identified(user_id, email="ada@example.com")
    analytics_events.assert_tracked("Signed Up", user_id=user_id, plan="trial")
    assert [m["type"] for m in analytics_events] == ["identify", "track"]


def test_checkout_tracks_the_order(analytics_events: CapturedEvents) -> None:
    """Order Completed carries the bound user, the order and its revenue as sent."""
    order_id = shop.checkout("u1", [("sku-1", Decimal("9.99")), ("sku-2", Decimal("20.00"))])
    order = analytics_events.assert_tracked(
        "Order Completed", user_id="u1", order_id=order_id, revenue=29.99, currency="EUR"
    )
    assert [p["sku"] for p in order["properties"]["products"]] == ["sku-1", "sku-2"]
    analytics_events.assert_not_tracked("Big Spender")


def test_big_order_is_a_big_spender(analytics_events: CapturedEvents) -> None:
    """An order of 100 or more is also tracked as Big Spender (a plain logging call)."""
    shop.checkout("u2", [("sku-9", Decimal("120.00"))])
    assert analytics_events.event_names() == ["Order Completed", "Big Spender"]
    assert len(analytics_events.for_user("u2")) == 2


def test_anonymous_page_view(analytics_events: CapturedEvents) -> None:
    """A visitor's page view is a page named after the path, for their anonymous id."""
    shop.view_page("anon-1", "/pricing")
    (page,) = analytics_events.of_type("page")
    assert (page["name"], page["anonymousId"], page["properties"]) == (
        "Pricing", "anon-1", {"path": "/pricing"}
    )
    assert analytics_events.named("Pricing") == [page]


def test_a_whole_visit_sends_only_valid_events(analytics_events: CapturedEvents) -> None:
    """A visit from page view to order makes four valid events and no invalid one."""
    shop.view_page("anon-2", "/")
    user_id = shop.sign_up("grace@example.com")
    shop.checkout(user_id, [("sku-1", Decimal("5.00"))])
    analytics_events.assert_no_invalid()
    assert len(analytics_events) == 4
