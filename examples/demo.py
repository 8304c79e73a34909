"""The logbridge demo: every message type, both styles, through logging to a local collector.

Run it with ``scripts/demo``. It starts ``logbridge collect`` in-process on 127.0.0.1,
configures logging with dictConfig exactly as an application would (pointing the
handler at the collector instead of Segment), logs events, lets ``logging.shutdown()``
deliver them, and prints what arrived.
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging
import logging.config
import sys
from collections import Counter

from logbridge.collector import Collector

WRITE_KEY = "demo-write-key"


def configure(endpoint: str) -> None:
    """The application's logging configuration: the analytics logger feeds logbridge."""
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {
                "console": {"class": "logging.StreamHandler", "level": "WARNING"},
                "analytics": {
                    "()": "logbridge.AnalyticsHandler",
                    "endpoint": endpoint,  # in production: "destination": "segment"
                    "write_key": WRITE_KEY,
                    "flush_at": 5,
                    "context": {"app": {"name": "logbridge-demo", "version": "1.0"}},
                },
            },
            "root": {"handlers": ["console"], "level": "WARNING"},
            "loggers": {
                "analytics": {"handlers": ["analytics"], "level": "INFO", "propagate": False},
                "logbridge": {"handlers": ["console"], "level": "WARNING", "propagate": False},
            },
        }
    )


def log_events() -> int:
    """Log one of each message type in both styles; returns how many should arrive."""
    log = logging.getLogger("analytics")
    # Event-name style: the message is the event of an implicit track.
    log.info(
        "Order Completed",
        extra={
            "user_id": "u1",
            "order_id": "o1",
            "revenue": 99.99,
            "currency": "EUR",
            "placed": dt.datetime.now(dt.timezone.utc),
            "tax": decimal.Decimal("19.00"),
        },
    )
    log.info("Signed Up", extra={"anonymous_id": "anon-7", "plan": "trial"})
    # Type style, snake_case keys.
    log.info(
        "identify", extra={"user_id": "u1", "traits": {"email": "a@example.com"}, "plan": "pro"}
    )
    log.info("track", extra={"user_id": "u1", "event": "Article Read", "read_time": 245})
    log.info(
        "page",
        extra={
            "anonymous_id": "anon-7",
            "page_name": "Pricing",
            "category": "Docs",
            "url": "https://example.com/pricing",
        },
    )
    log.info("screen", extra={"user_id": "u1", "screen_name": "Profile", "variation": "dark"})
    log.info("group", extra={"user_id": "u1", "group_id": "acme", "traits": {"employees": 150}})
    log.info("alias", extra={"user_id": "u1", "previous_id": "anon-7"})
    # Type style, the spec's camelCase keys.
    log.info("identify", extra={"userId": "u2", "traits": {"name": "Jane"}})
    log.info("group", extra={"userId": "u2", "groupId": "acme", "industry": "Technology"})
    # Filtered by level, as logging always does: never sent.
    log.debug("Debug Only", extra={"user_id": "u1"})
    # Invalid (no user_id or anonymous_id): dropped, counted and reported, never raised.
    log.info("Orphan Event", extra={"order_id": "o2"})
    return 10


def main() -> int:
    print("logbridge demo: starting the local collector on 127.0.0.1")
    print(
        "The demo logs 10 valid events and, on purpose, one without a user: logbridge\n"
        "drops that one, counts it and reports why on the 'logbridge' logger (the\n"
        "'invalid: ... dropped' line below); the logging call itself never raises.\n"
    )
    with Collector(write_key=WRITE_KEY, echo=sys.stdout) as collector:
        configure(collector.endpoint)
        expected = log_events()
        handler = next(h for h in logging.getLogger("analytics").handlers)
        logging.shutdown()  # what the interpreter does at exit: drain and deliver
        arrived = collector.wait_for(expected, timeout=10)
        stats = collector.stats()
        requests = collector.requests
        types = Counter(message["type"] for message in collector.messages)

    print("\nWhat arrived at the collector:")
    kinds = ", ".join(f"{n} {t}" for t, n in sorted(types.items()))
    print(f"  messages: {stats['received']} ({kinds})")
    print(f"  invalid by the spec: {stats['invalid']}")
    gzipped = all(r.content_encoding == "gzip" for r in requests)
    authed = all(r.auth_user is not None for r in requests)
    print(f"  requests: {len(requests)}, gzip: {gzipped}, Basic auth: {authed}")
    counters = handler.stats()  # type: ignore[attr-defined]
    print(
        f"  handler stats: sent={counters['sent']} batches={counters['batches']} "
        f"dropped={ {k: v for k, v in counters['dropped'].items() if v} }"
    )
    ok = arrived and stats["received"] == expected and stats["invalid"] == 0
    print("\nOK: every event arrived" if ok else "\nFAILED: not every event arrived")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
