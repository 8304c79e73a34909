"""The debugger's HTTP routes: the page, its static files, the events API and the live stream.

``GET /`` serves the page; ``GET /events`` lists kept events (newest first, filtered by
``type``, ``event``, ``user``, ``invalid``, ``after`` and ``limit``), ``DELETE /events``
clears them, ``GET /events/stream`` sends each new event as a server-sent event and
``GET /requests/ID`` shows the request an event came in, redacted.
"""

from __future__ import annotations

import contextlib
import ipaddress
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Final
from urllib.parse import parse_qs

from logbridge.collector.debugger.views import dumps, event_json, request_json
from logbridge.collector.events import EventQuery

if TYPE_CHECKING:
    from logbridge.collector.handler import RequestHandler

__all__ = ["allowed_methods", "handles", "host_allowed", "serve"]

#: The page runs only what it was served with, and talks only to this server.
PAGE_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_SECURITY_HEADERS: Final = {
    "Content-Security-Policy": PAGE_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_STATIC: Final = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/debugger/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/debugger/style.css": ("style.css", "text/css; charset=utf-8"),
}
#: Seconds between keep-alive comments on an idle stream.
_HEARTBEAT: Final = 15.0
_LOOPBACK_NAMES: Final = frozenset({"localhost", "localhost."})


def handles(path: str) -> bool:
    """Whether ``path`` is one of the debugger's."""
    return (
        path in _STATIC
        or path in ("/events", "/events/stream")
        or path.startswith("/requests/")
    )


def allowed_methods(path: str) -> str | None:
    """The ``Allow`` header for a debugger path; None for other paths."""
    if path == "/events":
        return "GET, HEAD, DELETE"
    return "GET, HEAD" if handles(path) else None


def serve(handler: RequestHandler, path: str, query: str) -> None:
    """Answer a GET, HEAD or DELETE of a debugger ``path`` (see :func:`handles`)."""
    if not host_allowed(handler):
        _reply(handler, 403, {"success": False, "error": "unexpected Host header"})
        return
    if handler.command == "DELETE":
        if path == "/events":
            cleared = handler.server.service.events.clear()
            _reply(handler, 200, {"success": True, "cleared": cleared})
        else:
            error = {"success": False, "error": "method DELETE not allowed"}
            _reply(handler, 405, error, {"Allow": allowed_methods(path) or ""})
        return
    if path in _STATIC:
        name, content_type = _STATIC[path]
        handler.send_payload(200, content_type, _static(name), _SECURITY_HEADERS)
    elif path == "/events":
        _list_events(handler, parse_qs(query))
    elif path == "/events/stream":
        _stream(handler, parse_qs(query))
    else:
        _show_request(handler, path.removeprefix("/requests/"))


def _reply(
    handler: RequestHandler, status: int, payload: object, headers: dict[str, str] | None = None
) -> None:
    """Send ``payload`` as JSON a browser can parse, never cached."""
    body = dumps(payload).encode("utf-8")
    headers = {"Cache-Control": "no-store", **(headers or {})}
    handler.send_payload(status, "application/json", body, headers)


@cache
def _static(name: str) -> bytes:
    """A file shipped in ``static/`` beside this module."""
    return resources.files(__package__).joinpath("static").joinpath(name).read_bytes()


def host_allowed(handler: RequestHandler) -> bool:
    """Refuse other host names on a loopback server, so a rebound DNS name cannot read it."""
    if not _is_loopback(str(handler.server.server_address[0])):
        return True
    host = (handler.headers.get("Host") or "").strip().lower()
    if host.startswith("["):
        name = host[1 : host.find("]")] if "]" in host else host
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name in _LOOPBACK_NAMES or _is_loopback(name)


def _is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback IP address (no DNS lookups)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _BadQuery(ValueError):
    """A query parameter that cannot be read."""


def _query(params: dict[str, list[str]]) -> EventQuery:
    """The :class:`EventQuery` of ``/events`` query parameters."""

    def text(name: str) -> str | None:
        values = params.get(name)
        return values[-1] if values and values[-1] != "" else None

    def number(name: str) -> int | None:
        value = text(name)
        if value is None:
            return None
        if not value.isdigit():
            raise _BadQuery(f"{name} must be a whole number, got {value!r}")
        return int(value)

    invalid_text = (text("invalid") or "").lower()
    if invalid_text not in ("", "1", "true", "yes", "0", "false", "no"):
        raise _BadQuery(f"invalid must be true or false, got {invalid_text!r}")
    return EventQuery(
        type=text("type"),
        event=text("event"),
        user=text("user"),
        invalid=None if not invalid_text else invalid_text in ("1", "true", "yes"),
        after=number("after") or 0,
        limit=number("limit"),
    )


def _list_events(handler: RequestHandler, params: dict[str, list[str]]) -> None:
    """``GET /events``: the kept events matching the query, newest first."""
    try:
        query = _query(params)
    except _BadQuery as exc:
        _reply(handler, 400, {"success": False, "error": str(exc)})
        return
    log = handler.server.service.events
    found = log.events(query)
    stats = log.stats()["events"]
    listing = {
        "events": [event_json(event) for event in found],
        "kept": stats["kept"],
        "max_events": stats["max_events"],
        "evicted": stats["evicted"],
    }
    _reply(handler, 200, listing)


def _show_request(handler: RequestHandler, text_id: str) -> None:
    """``GET /requests/ID``: the request some kept events came in, redacted."""
    service = handler.server.service
    request = service.events.request(int(text_id)) if text_id.isdigit() else None
    if request is None:
        _reply(handler, 404, {"success": False, "error": "that request is no longer kept"})
        return
    _reply(handler, 200, request_json(request, [service.write_key]))


def _stream(handler: RequestHandler, params: dict[str, list[str]]) -> None:
    """``GET /events/stream``: kept and new events as server-sent events, oldest first."""
    service = handler.server.service
    log = service.events
    start = (handler.headers.get("Last-Event-ID") or params.get("after", ["0"])[-1]).strip()
    after = int(start) if start.isdigit() else 0
    handler.close_connection = True
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream; charset=utf-8")
    handler.send_header("Cache-Control", "no-store")
    handler.send_header("Connection", "close")
    handler.end_headers()
    if handler.command == "HEAD":
        return
    generation = log.generation
    with contextlib.suppress(OSError, ValueError):
        handler.wfile.write(b"retry: 2000\n\n")
        while not service.stopping.is_set():
            events, now_generation, open_ = log.wait_after(after, generation, _HEARTBEAT)
            if not open_ or service.stopping.is_set():
                return
            if now_generation != generation:
                generation = now_generation
                handler.wfile.write(b"event: clear\ndata: {}\n\n")
                continue
            if not events:
                handler.wfile.write(b": keep-alive\n\n")
                continue
            chunks = []
            for event in events:
                data = dumps(event_json(event))
                chunks.append(f"id: {event.id}\ndata: {data}\n\n")
            handler.wfile.write("".join(chunks).encode("utf-8"))
            after = events[-1].id
