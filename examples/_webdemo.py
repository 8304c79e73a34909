"""Plumbing shared by the web examples (not an example itself): where events go, and output.

Events go to ``LOGBRIDGE_ENDPOINT`` when it is set (with ``LOGBRIDGE_WRITE_KEY``), else to
a local collector started here on 127.0.0.1. Either way every delivered message is
recorded through the handler's ``on_success`` callback and can be printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from logbridge.collector import Collector


class Sent:
    """The messages the handler reported delivered (its ``on_success`` callback)."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self._cond = threading.Condition()

    def __call__(self, messages: list[dict[str, Any]]) -> None:
        """Record a delivered batch (called on the sender's thread)."""
        with self._cond:
            self.messages.extend(messages)
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        """Block until ``count`` messages were delivered; False if ``timeout`` ran out."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self.messages) >= count, timeout)


@contextmanager
def destination(*, echo: bool = False) -> Iterator[tuple[str, str]]:
    """The endpoint and write key to send to; starts (and stops) a local collector if needed.

    ``echo`` prints each message as the local collector receives it (for serve mode).
    """
    endpoint = os.environ.get("LOGBRIDGE_ENDPOINT")
    write_key = os.environ.get("LOGBRIDGE_WRITE_KEY", "example-write-key")
    if endpoint:
        print(f"sending to {endpoint} (LOGBRIDGE_ENDPOINT)")
        yield endpoint, write_key
        return
    with Collector(write_key=write_key, echo=sys.stdout if echo else None) as collector:
        print(f"sending to a local collector at {collector.endpoint}")
        yield collector.endpoint, write_key


def handler_config(
    endpoint: str, write_key: str, on_success: Callable[..., object]
) -> dict[str, Any]:
    """The ``dictConfig`` entry of the AnalyticsHandler the examples use."""
    return {
        "()": "logbridge.AnalyticsHandler",
        "endpoint": endpoint,  # in production: "destination": "segment" (or dreamdata, ...)
        "write_key": write_key,
        "flush_interval": 0.5,
        "on_success": on_success,
    }


def describe(message: dict[str, Any]) -> str:
    """One line about a delivered message: type, ids, name and the request context."""
    kind = message["type"]
    parts = [f"{kind:<8}"]
    if message.get("userId"):
        parts.append(f"userId={message['userId']}")
    if message.get("anonymousId"):
        parts.append(f"anonymousId={message['anonymousId']}")
    if kind == "track":
        parts.append(f"event={message['event']!r}")
    elif kind == "page":
        parts.append(f"name={message.get('name')!r}")
    elif kind == "alias":
        parts.append(f"previousId={message['previousId']}")
    elif kind == "identify":
        parts.append(f"traits={message.get('traits')}")
    context = message.get("context", {})
    for key in ("ip", "userAgent"):
        if key in context:
            parts.append(f"{key}={context[key]}")
    if "page" in context and "url" in context["page"]:
        parts.append(f"page.url={context['page']['url']}")
    return "  ".join(parts)


def report(sent: Sent, checks: list[tuple[str, bool]]) -> int:
    """Print what was sent and each check; 0 when every check passed."""
    print(f"\nsent {len(sent.messages)} messages:")
    for message in sent.messages:
        print("  " + describe(message))
    print("\nchecks:")
    for name, passed in checks:
        print(f"  {'ok    ' if passed else 'FAILED'} {name}")
    ok = all(passed for _, passed in checks)
    print("\nall checks passed" if ok else "\nSOME CHECKS FAILED")
    return 0 if ok else 1


def find(sent: Sent, kind: str, **fields: Any) -> dict[str, Any] | None:
    """The first delivered message of ``kind`` whose top-level fields match ``fields``."""
    for message in sent.messages:
        if message["type"] == kind and all(message.get(k) == v for k, v in fields.items()):
            return message
    return None


#: What the anonymous-id cookie must say, besides its value.
COOKIE_ATTRIBUTES = ("Max-Age=31536000", "Path=/", "Secure", "HttpOnly", "SameSite=Lax")


def cookie_header_ok(header: str, linked_id: str) -> bool:
    """Whether a Set-Cookie header sets the linked id for a year, Secure, HttpOnly, Lax."""
    return all(part in header for part in (f"lb_anonymous_id={linked_id}", *COOKIE_ATTRIBUTES))


def check_visit(
    sent: Sent,
    *,
    delivered: bool,
    cookie_ok: bool,
    location: str | None,
    linked_id: str,
    user_agent: str,
) -> int:
    """Check the visit every example makes (link in, login, link out); print and report."""
    pricing = find(sent, "track", event="Pricing Viewed") or {"context": {}}
    alias = find(sent, "alias") or {}
    dashboard = find(sent, "track", event="Dashboard Viewed") or {}
    kinds = [message["type"] for message in sent.messages]
    partner_link = f"https://partner.example/landing?lb_anon_id={linked_id}"
    checks = [
        ("every event was delivered", delivered and len(sent.messages) == 5),
        ("the linked id was adopted", pricing.get("anonymousId") == linked_id),
        ("the cookie: 1 year, Path=/, Secure, HttpOnly, SameSite=Lax", cookie_ok),
        ("the link parameter was stripped", "lb_anon_id" not in json.dumps(sent.messages)),
        ("context.ip and userAgent were bound",
         (pricing["context"].get("ip"), pricing["context"].get("userAgent"))
         == ("203.0.113.9", user_agent)),
        ("login sent alias, then identify", kinds[2:4] == ["alias", "identify"]),
        ("alias linked the anonymous id to the user",
         (alias.get("previousId"), alias.get("userId")) == (linked_id, "user-1")),
        ("later events carry the user", dashboard.get("userId") == "user-1"),
        ("the outbound link carries the id", location == partner_link),
    ]
    return report(sent, checks)


def run_example(
    doc: str,
    self_check: Callable[[], int],
    serve: Callable[[int], int],
    argv: list[str] | None,
    *,
    port: int,
) -> int:
    """``serve`` runs the server; anything else (the default) runs the self-check."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("mode", nargs="?", choices=["check", "serve"], default="check")
    parser.add_argument("--port", type=int, default=port)
    args = parser.parse_args(argv)
    return serve(args.port) if args.mode == "serve" else self_check()
