"""The typed facade: Segment's six calls as methods, checked before they are logged.

Run it with ``python examples/facade.py``. It starts a local collector, points an
AnalyticsHandler at it, makes one call of each kind (identity bound once with
``logbridge.bind``), shows a malformed call raising at once, and prints what arrived.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys

import logbridge
from logbridge.collector import Collector


def main() -> int:
    """Run the calls against a local collector; 0 when every valid call arrived."""
    with Collector() as collector:
        handler = logbridge.AnalyticsHandler(endpoint=collector.endpoint, write_key="example")
        log = logging.getLogger("analytics")
        log.setLevel(logging.INFO)
        log.propagate = False
        log.addHandler(handler)
        analytics = logbridge.Analytics(log)

        analytics.identify("u1", traits={"email": "ada@example.com", "plan": "pro"})
        with logbridge.bind(user_id="u1", context={"ip": "203.0.113.9"}):
            order_id = analytics.track(
                "Order Completed",
                properties={"order_id": "o1", "revenue": 9.99, "currency": "EUR"},
                timestamp=dt.datetime.now(dt.timezone.utc),
            )
            analytics.page("Pricing", category="Docs", properties={"url": "/pricing"})
        analytics.screen("Profile", anonymous_id="anon-7", properties={"theme": "dark"})
        analytics.group("acme", user_id="u1", traits={"employees": 150})
        analytics.alias("anon-7", user_id="u1")
        print(f"tracked Order Completed as message {order_id}")

        try:
            analytics.track("Orphan Event", properties={"order_id": "o2"})
        except logbridge.InvalidEvent as exc:
            print(f"rejected at the call, never logged: {exc}")

        delivered = analytics.flush(timeout=10)
        arrived = collector.wait_for(6)
        print(f"\nflush delivered everything: {delivered}")
        print("What arrived at the collector:")
        for message in collector.messages:
            name = message.get("event") or message.get("name") or ""
            who = message.get("userId") or message.get("anonymousId")
            print(f"  {message['type']:<8} {who:<7} {name}")
        invalid = collector.invalid
        logging.getLogger("analytics").removeHandler(handler)
        handler.close()

    ok = delivered and arrived and len(collector.messages) == 6 and not invalid
    print("\nOK: six calls, six valid messages" if ok else "\nFAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
