"""Plumbing shared by the web examples (not an example itself): where events go, and output.

Events go to ``LOGBRIDGE_ENDPOINT`` when it is set (with ``LOGBRIDGE_WRITE_KEY``), else to
a local collector started here on 127.0.0.1. Either way every delivered message is
recorded through the handler's ``on_success`` callback and can be printed.
"""

from __future__ import annotations

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
