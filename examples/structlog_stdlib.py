"""structlog routed through stdlib logging: the AnalyticsHandler gets the event dicts.

Run it with ``python examples/structlog_stdlib.py``. structlog's stdlib integration
(``ProcessorFormatter.wrap_for_formatter``) hands each event dict to the stdlib logger
``analytics`` as the record's message. The AnalyticsHandler reads the event name and
the keyword arguments from it; a console handler renders the same records for humans.
Identity is bound once with ``structlog.contextvars.bind_contextvars``.
"""

from __future__ import annotations

import logging
import sys

import structlog

import logbridge
from logbridge.collector import Collector


def configure(endpoint: str) -> logbridge.AnalyticsHandler:
    """stdlib handlers on the ``analytics`` logger, and structlog routed through them."""
    handler = logbridge.AnalyticsHandler(endpoint=endpoint, write_key="example")
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(structlog.stdlib.ProcessorFormatter(processors=[
        # Added here, for the console only: in the main chain they would become properties.
        structlog.stdlib.add_log_level,
        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
        structlog.dev.ConsoleRenderer(colors=False),
    ]))
    analytics = logging.getLogger("analytics")
    analytics.setLevel(logging.INFO)
    analytics.propagate = False
    analytics.addHandler(handler)
    analytics.addHandler(console)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,  # bound identity into the event dict
            structlog.stdlib.filter_by_level,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,  # the dict is the msg
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    return handler


def main() -> int:
    """Log through structlog, deliver, and print what arrived."""
    with Collector() as collector:
        handler = configure(collector.endpoint)
        log = structlog.get_logger("analytics")

        structlog.contextvars.bind_contextvars(user_id="u1")  # e.g. in request middleware
        log.info("Order Completed", order_id="o1", revenue=9.99, currency="EUR")
        log.info("identify", traits={"email": "ada@example.com"}, plan="pro")
        structlog.contextvars.clear_contextvars()
        log.info("Signed Up", anonymous_id="anon-7", source="ad")
        log.debug("Debug Only", user_id="u1")  # below the logger's level: never sent

        handler.flush(timeout=10)
        arrived = collector.wait_for(3)
        print("\nWhat arrived at the collector:")
        for message in collector.messages:
            who = message.get("userId") or message.get("anonymousId")
            fields = message.get("properties") or message.get("traits")
            print(f"  {message['type']:<8} {who:<7} {message.get('event', '')!s:<16} {fields}")
        ok = arrived and len(collector.messages) == 3 and not collector.invalid
        logging.getLogger("analytics").removeHandler(handler)
        handler.close()
    print("\nOK: three events, keyword arguments as fields" if ok else "\nFAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
