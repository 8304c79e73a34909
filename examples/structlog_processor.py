"""structlog rendering straight to stdout: AnalyticsProcessor picks out the events.

Run it with ``python examples/structlog_processor.py``. structlog writes JSON lines to
stdout with no stdlib logging involved. ``AnalyticsProcessor`` hands the event dicts
marked ``analytics=True`` to an AnalyticsHandler and lets every event dict go on to
the renderer unchanged; ordinary log lines are left alone.
"""

from __future__ import annotations

import sys

import structlog

import logbridge
from logbridge.collector import Collector
from logbridge.structlog import AnalyticsProcessor


def configure(endpoint: str) -> logbridge.AnalyticsHandler:
    """structlog's chain, with the processor early (before keys meant only for the logs)."""
    handler = logbridge.AnalyticsHandler(endpoint=endpoint, write_key="example")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            AnalyticsProcessor(handler),  # drop=True: send the events without printing them
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
    return handler


def main() -> int:
    """Log app lines and analytics events, deliver, and print what arrived."""
    with Collector() as collector:
        handler = configure(collector.endpoint)
        log = structlog.get_logger()
        events = structlog.get_logger(analytics=True)  # the marker: these are events

        structlog.contextvars.bind_contextvars(user_id="u1", request_id="r-42")
        log.info("cache warmed", entries=120)  # an ordinary log line: not an event
        events.info("Order Completed", order_id="o1", revenue=9.99)
        events.info("identify", traits={"plan": "pro"})
        structlog.contextvars.clear_contextvars()

        handler.flush(timeout=10)
        arrived = collector.wait_for(2)
        print("\nWhat arrived at the collector:")
        for message in collector.messages:
            fields = message.get("properties") or message.get("traits")
            print(f"  {message['type']:<8} {message['userId']:<4} "
                  f"{message.get('event', '')!s:<16} {fields}")
        ok = arrived and len(collector.messages) == 2 and not collector.invalid
        handler.close()
    print("\nOK: two events sent, every line printed" if ok else "\nFAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
