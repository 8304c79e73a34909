"""Send analytics events and keep a JSON-lines archive of exactly what was sent.

Run it with ``python examples/json_archive.py [archive.jsonl]``. One ``dictConfig``
gives the ``analytics`` logger two handlers: the AnalyticsHandler (pointed at a local
collector here; in production ``"destination": "segment"`` with the write key in
``LOGBRIDGE_WRITE_KEY``) and a ``FileHandler`` whose ``AnalyticsFormatter`` writes
each event as the JSON message it becomes. It then compares the archive with what the
collector received.
"""

from __future__ import annotations

import decimal
import json
import logging
import logging.config
import sys
import tempfile
from pathlib import Path
from typing import Any

import logbridge
from logbridge.collector import Collector

#: The handler-level context, given to the formatter too so the archive matches.
APP_CONTEXT = {"app": {"name": "shop", "version": "2.1"}}


def logging_config(endpoint: str, archive: Path) -> dict[str, Any]:
    """The application's logging configuration: Segment plus a JSON-lines archive."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "analytics_json": {"()": "logbridge.AnalyticsFormatter", "context": APP_CONTEXT},
        },
        "handlers": {
            "segment": {
                "()": "logbridge.AnalyticsHandler",
                "endpoint": endpoint,  # in production: "destination": "segment"
                "write_key": "example-key",  # in production: LOGBRIDGE_WRITE_KEY
                "context": APP_CONTEXT,
            },
            "archive": {
                "class": "logging.FileHandler",
                "filename": str(archive),
                "encoding": "utf-8",
                "formatter": "analytics_json",
            },
        },
        "loggers": {
            "analytics": {
                "handlers": ["segment", "archive"],
                "level": "INFO",
                "propagate": False,
            },
        },
    }


def main(argv: list[str]) -> int:
    """Log a few events, let logging.shutdown() deliver them, compare archive and endpoint."""
    folder = Path(tempfile.mkdtemp(prefix="logbridge-archive-"))
    archive = Path(argv[1]) if len(argv) > 1 else folder / "analytics.jsonl"
    with Collector() as collector:
        logging.config.dictConfig(logging_config(collector.endpoint, archive))
        analytics = logbridge.Analytics("analytics")
        with logbridge.bind(user_id="u1", context={"ip": "203.0.113.9"}):
            analytics.identify(traits={"email": "ada@example.com", "city": "Zürich"})
            analytics.track("Order Completed", properties={
                "order_id": "o1", "revenue": decimal.Decimal("29.99"), "tags": {"gift", "eu"},
            })
            # Plain logging works too; without a message_id the handler draws its own.
            logging.getLogger("analytics").info("Coupon Applied", extra={"code": "SPRING"})
        logging.getLogger("analytics").info("No User At All")  # invalid: archived, not sent
        logging.shutdown()  # what the interpreter does at exit: deliver, close the file
        collector.wait_for(3)
        received = {m.get("event", m["type"]): m for m in collector.messages}

    lines = [json.loads(line) for line in archive.read_text("utf-8").splitlines()]
    print(f"archive: {archive} ({len(lines)} lines)")
    matches = 0
    for line in lines:
        if "invalid" in line:
            print(f"  archived as invalid (not sent): {line['event']!r}: {line['invalid']}")
            continue
        key = line.get("event", line["type"])
        sent = received.get(key)
        same = sent == line
        same_but_id = sent is not None and {**sent, "messageId": ""} == {**line, "messageId": ""}
        matches += same_but_id
        verdict = "identical" if same else "identical but messageId" if same_but_id else "DIFFERS"
        print(f"  {line['type']:<8} {key:<16} archive vs sent: {verdict}")
    ok = matches == len(received) == 3
    print("\nOK: the archive holds what was sent" if ok else "\nFAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
