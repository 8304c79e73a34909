"""A cron-style job: send its events, and exit non-zero if they were not all delivered.

Run it with ``python examples/cron_job.py``. With ``LOGBRIDGE_ENDPOINT`` (or
``LOGBRIDGE_WRITE_KEY`` for Segment) set it sends there; otherwise it starts a local
collector to send to. ``with logbridge.flushing(...)`` delivers everything the job
logged before the script goes on, and says whether that worked, so cron (or any
scheduler) sees a failed delivery in the exit status.
"""

from __future__ import annotations

import logging
import os
import sys

import logbridge

analytics = logbridge.Analytics("analytics")

INVOICES = [("inv-1", "u1", 120.0), ("inv-2", "u2", 35.5), ("inv-3", "u1", 9.99)]


def configure_logging() -> logbridge.AnalyticsHandler:
    """An AnalyticsHandler set by the environment; a short drain at exit (a batch job)."""
    handler = logbridge.AnalyticsHandler(shutdown_timeout=1.0, max_retries=2)
    log = logging.getLogger("analytics")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    return handler


def run_job() -> int:
    """The job itself: send the invoices; returns how many."""
    for invoice_id, user_id, amount in INVOICES:
        analytics.track("Invoice Sent", user_id=user_id,
                        properties={"invoice_id": invoice_id, "amount": amount})
    return len(INVOICES)


def main() -> int:
    """Run the job and flush; 0 only if every event was delivered."""
    collector = None
    if not (os.environ.get("LOGBRIDGE_ENDPOINT") or os.environ.get("LOGBRIDGE_WRITE_KEY")):
        from logbridge.collector import Collector

        collector = Collector().start()
        os.environ["LOGBRIDGE_ENDPOINT"] = collector.endpoint
    handler = configure_logging()
    with logbridge.flushing(timeout=3.0) as flushed:
        sent = run_job()
    stats = handler.stats()
    print(f"job done: {sent} invoices; events delivered: {flushed.delivered} "
          f"(sent={stats['sent']}, failed={stats['failed']})")
    if collector is not None:
        print(f"the local collector received {len(collector.messages)} events")
        collector.stop()
    return 0 if flushed.delivered and stats["sent"] == sent else 1


if __name__ == "__main__":
    sys.exit(main())
