"""What the destination examples share: the command line, the events, the delivery check.

Each ``examples/destination_*.py`` is one dictConfig for one service. Pass
``--endpoint URL`` to send to a local collector instead of the service itself::

    logbridge collect --port 8765 &
    python examples/destination_segment.py --endpoint http://127.0.0.1:8765
"""

from __future__ import annotations

import argparse
import logging
import logging.config
from collections.abc import Mapping
from typing import Any

import logbridge

LOGGER = "analytics"


def command_line(description: str, **extra: str) -> argparse.Namespace:
    """``--endpoint`` (the local collector; default: the real service), and ``extra`` options."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--endpoint", metavar="URL", help="send here, e.g. a local collector, not to the service"
    )
    for name, help_text in extra.items():
        parser.add_argument(f"--{name.replace('_', '-')}", metavar="VALUE", help=help_text)
    return parser.parse_args()


def handler_config(destination: str, **options: Any) -> dict[str, Any]:
    """A dictConfig handler entry for an AnalyticsHandler; options set to None are left out."""
    given = {name: value for name, value in options.items() if value is not None}
    return {"()": "logbridge.AnalyticsHandler", "level": "INFO", "destination": destination,
            **given}


def logging_config(handlers: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The whole dictConfig: ``handlers`` on the ``analytics`` logger, nothing else touched."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": dict(handlers),
        "loggers": {
            LOGGER: {"handlers": list(handlers), "level": "INFO", "propagate": False},
        },
    }


def send_events() -> int:
    """One call of each kind, through plain logging; how many."""
    log = logging.getLogger(LOGGER)
    log.info("identify", extra={"user_id": "user-42", "traits": {"plan": "pro"}})
    log.info("Order Completed", extra={"user_id": "user-42", "order_id": "o-1", "revenue": 99.5})
    log.info("page", extra={"user_id": "user-42", "page_name": "Pricing"})
    log.info("group", extra={"user_id": "user-42", "group_id": "acme", "traits": {"seats": 12}})
    log.info("alias", extra={"user_id": "user-42", "previous_id": "anon-7"})
    return 5


def run(config: Mapping[str, Any]) -> int:
    """Configure logging with ``config``, send the events, flush; 0 if all were delivered."""
    logging.config.dictConfig(dict(config))
    with logbridge.flushing(timeout=10.0) as flushed:
        sent = send_events()
    print(f"sent {sent} events; delivered: {flushed.delivered}")
    logging.shutdown()
    return 0 if flushed.delivered else 1
