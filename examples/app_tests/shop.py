"""A tiny shop: the application whose analytics ``test_app.py`` checks.

It logs its events through the facade and through plain logging, binds identity per
request, and configures logbridge as it would in production (the write key and, for
tests against a local collector, the endpoint come from ``LOGBRIDGE_*`` variables).
"""

from __future__ import annotations

import itertools
import logging
import logging.config
from decimal import Decimal

import logbridge

analytics = logbridge.Analytics("analytics")
log = logging.getLogger("analytics.shop")
_ids = itertools.count(1)


def configure_logging() -> None:
    """Production logging: the analytics logger feeds an AnalyticsHandler."""
    logging.config.dictConfig({
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"analytics": {"()": "logbridge.AnalyticsHandler"}},
        "loggers": {
            "analytics": {"handlers": ["analytics"], "level": "INFO", "propagate": False},
        },
    })


def sign_up(email: str) -> str:
    """Create an account; returns the new user's id."""
    user_id = f"user-{next(_ids)}"
    analytics.identify(user_id, traits={"email": email})
    analytics.track("Signed Up", user_id=user_id, properties={"plan": "trial"})
    return user_id


def checkout(user_id: str, cart: list[tuple[str, Decimal]]) -> str:
    """Place an order for ``cart`` (sku, price); returns the order id."""
    order_id = f"order-{next(_ids)}"
    total = sum((price for _, price in cart), Decimal("0"))
    with logbridge.bind(user_id=user_id):
        analytics.track("Order Completed", properties={
            "order_id": order_id,
            "revenue": total,
            "currency": "EUR",
            "products": [{"sku": sku, "price": price} for sku, price in cart],
        })
        if total >= 100:
            log.info("Big Spender", extra={"order_id": order_id, "total": total})
    return order_id


def view_page(anonymous_id: str, path: str) -> None:
    """A visitor who has not signed up views a page."""
    analytics.page(path.strip("/").title() or "Home", anonymous_id=anonymous_id,
                   properties={"path": path})
