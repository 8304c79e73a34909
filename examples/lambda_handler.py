"""An AWS Lambda handler whose events are delivered before each invocation ends.

Lambda freezes the process as soon as the handler returns, so a background flush may
never run. ``@logbridge.flushing`` delivers what the invocation logged first. Logging is
configured once per cold start, from the environment (``LOGBRIDGE_WRITE_KEY``;
``LOGBRIDGE_ENDPOINT`` for another endpoint). Deploy with the handler
``lambda_handler.handler``.

Run it with ``python examples/lambda_handler.py``: it starts a local collector, invokes
the handler twice as Lambda would, and checks after each call that its events have
already arrived.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import logbridge

analytics = logbridge.Analytics("analytics")


def configure_logging() -> None:
    """Cold start: the ``analytics`` logger feeds an AnalyticsHandler set by environment."""
    log = logging.getLogger("analytics")
    if any(isinstance(h, logbridge.AnalyticsHandler) for h in log.handlers):
        return
    log.addHandler(logbridge.AnalyticsHandler())
    log.setLevel(logging.INFO)
    log.propagate = False


@logbridge.flushing(timeout=2.0)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point: generate a report, track it, flush before returning."""
    request_id = getattr(context, "aws_request_id", "local")
    with logbridge.bind(user_id=event["user_id"], context={"requestId": request_id}):
        analytics.track("Report Generated", properties={"report": event["report"]})
        if event.get("shared"):
            analytics.track("Report Shared", properties={"report": event["report"]})
    return {"statusCode": 200, "body": f"report {event['report']} ready"}


def main() -> int:
    """Two local invocations against a collector; 0 when each call's events had arrived."""
    from logbridge.collector import Collector

    with Collector() as collector:
        os.environ["LOGBRIDGE_ENDPOINT"] = collector.endpoint
        configure_logging()
        ok = True
        for number, event in enumerate(
            [{"user_id": "u1", "report": "sales"}, {"user_id": "u2", "report": "q3", "shared": 1}],
            start=1,
        ):
            result = handler(event, None)
            arrived = [m["event"] for m in collector.messages]  # no waiting: already there
            print(f"invocation {number}: {result['body']}; arrived so far: {arrived}")
            ok = ok and len(arrived) == number * (number + 1) // 2
    print("\nOK: each invocation's events arrived before it returned" if ok else "\nFAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
else:  # imported by the Lambda runtime: configure once per cold start
    configure_logging()
