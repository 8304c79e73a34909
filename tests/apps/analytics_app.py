"""A WSGI app that logs one analytics event per request, configured at import.

Run under gunicorn by tests/test_fork.py and tests/test_gevent.py: the endpoint comes
from ``LOGBRIDGE_ENDPOINT``. With ``--preload`` the import, and so the "App Loaded"
event, happens in the master before the workers are forked.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

import logbridge

handler = logbridge.AnalyticsHandler(
    endpoint=os.environ["LOGBRIDGE_ENDPOINT"], write_key="k", flush_interval=60
)
log = logging.getLogger("analytics")
log.setLevel(logging.INFO)
log.addHandler(handler)
log.info("App Loaded", extra={"user_id": "server", "pid": os.getpid()})


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Log "Request Served" with the query's ``n`` and this worker's pid."""
    n = int(parse_qs(environ.get("QUERY_STRING", "")).get("n", ["0"])[0])
    log.info("Request Served", extra={"user_id": "visitor", "n": n, "pid": os.getpid()})
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
