"""gunicorn settings for the delivery tests: report the bound port, log each worker's boot."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

bind = "127.0.0.1:0"
graceful_timeout = 15
accesslog = None


def when_ready(server: Any) -> None:
    """Tell the test which port was bound (port 0 picks a free one)."""
    port = server.LISTENERS[0].sock.getsockname()[1]
    sys.stdout.write(f"READY {port}\n")
    sys.stdout.flush()


def post_worker_init(worker: Any) -> None:
    """Each worker logs one event of its own once it is up."""
    logging.getLogger("analytics").info(
        "Worker Booted", extra={"user_id": "server", "pid": os.getpid()}
    )
    sys.stdout.write(f"WORKER {os.getpid()}\n")
    sys.stdout.flush()
