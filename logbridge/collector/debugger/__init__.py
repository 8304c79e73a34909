"""The collector's debugger: a page that shows events live, and the JSON API behind it.

``routes`` answers the HTTP paths, ``views`` shapes events and requests as JSON (with secrets
redacted) and ``static/`` holds the page: plain HTML, CSS and JavaScript, nothing fetched
from elsewhere.
"""

from __future__ import annotations

from logbridge.collector.debugger.routes import (
    PAGE_POLICY,
    allowed_methods,
    handles,
    host_allowed,
    serve,
)

__all__ = ["PAGE_POLICY", "allowed_methods", "handles", "host_allowed", "serve"]
