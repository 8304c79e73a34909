"""Send the same logging calls to Amplitude: one dictConfig entry, ``destination: amplitude``.

Run it with ``python examples/amplitude_dictconfig.py``. The handler is pointed at a local
collector, which speaks Amplitude's HTTP V2 API (``/2/httpapi``) and its User Mapping API
(``/usermap``); in production drop ``endpoint`` and put the Amplitude API key in
``LOGBRIDGE_WRITE_KEY`` (``"destination": "amplitude-eu"`` for the EU region,
``"amplitude_api": "batch"`` for the Batch Event Upload API).
"""

from __future__ import annotations

import logging
import logging.config
import sys
from typing import Any

from logbridge.collector import Collector

API_KEY = "example-amplitude-key"


def logging_config(endpoint: str) -> dict[str, Any]:
    """The application's logging configuration: the analytics logger sends to Amplitude."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {
            "amplitude": {
                "()": "logbridge.AnalyticsHandler",
                "destination": "amplitude",
                "endpoint": endpoint,  # in production: leave it out
                "write_key": API_KEY,  # in production: LOGBRIDGE_WRITE_KEY
                "amplitude_usermap": True,  # aliases go to the User Mapping API
                "amplitude_group_type": "company",
            },
        },
        "loggers": {
            "analytics": {"handlers": ["amplitude"], "level": "INFO", "propagate": False},
        },
    }


def main() -> int:
    """Log one call of each type, let logging.shutdown() deliver them, show what arrived."""
    with Collector(write_key=API_KEY) as collector:
        logging.config.dictConfig(logging_config(collector.url + "/2/httpapi"))
        log = logging.getLogger("analytics")
        user = {"user_id": "user-1234", "anonymous_id": "device-5678"}
        log.info("Signed Up", extra={**user, "plan": "pro", "revenue": 29.0})
        log.info("page", extra={**user, "page_name": "Pricing", "tab": "yearly"})
        log.info("identify", extra={**user, "email": "ada@example.com"})
        log.info("group", extra={**user, "group_id": "acme-inc", "name": "Acme"})
        log.info("alias", extra={"user_id": "user-1234", "previous_id": "device-5678"})
        log.info("Bad Id", extra={"user_id": "null"})  # refused at the record, with a reason
        logging.shutdown()  # what the interpreter does at exit: deliver everything
        collector.wait_for_amplitude(6, timeout=10)
        events, mappings = collector.amplitude_events, collector.usermaps

    for event in events:
        print(f"  {event['event_type']:<16} user_id={event.get('user_id')}")
    for mapping in mappings:
        print(f"  usermap          {mapping['user_id']} -> {mapping['global_user_id']}")
    types = [event["event_type"] for event in events]
    ok = types == ["Signed Up", "Viewed Pricing", "$identify", "$identify", "$groupidentify"] and (
        mappings == [{"user_id": "device-5678", "global_user_id": "user-1234"}]
    )
    print("\nOK: every call arrived as Amplitude expects it" if ok else "\nFAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
