"""A long-running service that loses no event when it is stopped with SIGTERM.

Containers, systemd and deploy tools stop a process with SIGTERM. Python's default
action for it ends the process at once: no ``atexit``, so no ``logging.shutdown()``,
and whatever logbridge still holds would be lost. ``logbridge.install_signal_handlers()``
flushes every handler first, then exits with the conventional status (143).

Try it against the local collector::

    logbridge collect                      # terminal 1: prints each event it receives
    python examples/sigterm_service.py     # terminal 2: prints its pid, logs events
    kill -TERM <pid>                       # every event logged so far arrives

The endpoint and write key come from ``LOGBRIDGE_ENDPOINT`` / ``LOGBRIDGE_WRITE_KEY``
(default: the collector on 127.0.0.1:8765). ``--events N`` stops logging after N events
and waits for the signal.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading

import logbridge

DEFAULT_ENDPOINT = "http://127.0.0.1:8765/v1/batch"


def main(argv: list[str] | None = None) -> int:
    """Log an event every ``--every`` seconds until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=0, help="stop logging after N (0: never)")
    parser.add_argument("--every", type=float, default=0.5, help="seconds between events")
    args = parser.parse_args(argv)

    handler = logbridge.AnalyticsHandler(
        endpoint=os.environ.get("LOGBRIDGE_ENDPOINT", DEFAULT_ENDPOINT),
        write_key=os.environ.get("LOGBRIDGE_WRITE_KEY", "example-write-key"),
        flush_interval=60,  # nothing leaves on its own: only the signal delivers
    )
    log = logging.getLogger("analytics")
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    logbridge.install_signal_handlers()  # SIGTERM and SIGINT flush first

    print(f"pid {os.getpid()}: logging events; stop me with kill -TERM {os.getpid()}",
          flush=True)
    tick = threading.Event()
    sent = 0
    while args.events == 0 or sent < args.events:
        log.info("Heartbeat", extra={"user_id": "service", "n": sent})
        sent += 1
        tick.wait(args.every)
    print(f"logged {sent} events; waiting for the signal", flush=True)
    threading.Event().wait()  # until the signal's SystemExit
    return 0


if __name__ == "__main__":
    sys.exit(main())
