"""Helpers shared by the web-framework tests: known ids, Set-Cookie parsing, delivery."""

from __future__ import annotations

import asyncio
from typing import Any

import logbridge
from logbridge.collector import Collector

#: Two valid anonymous ids (UUIDs) for visitors the tests make up.
KNOWN = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
OTHER = "6fa459ea-ee8a-4ca4-894e-db77e160355e"
UA = "Mozilla/5.0 (logbridge tests)"


def attributes(header: str) -> dict[str, str]:
    """A Set-Cookie header as ``name``, ``value`` and its attributes (lower-cased names)."""
    first, *rest = [part.strip() for part in header.split(";")]
    name, _, value = first.partition("=")
    parsed = {"name": name, "value": value}
    for part in rest:
        key, _, val = part.partition("=")
        parsed[key.lower()] = val
    return parsed


def delivered(
    collector: Collector, handler: logbridge.AnalyticsHandler, count: int
) -> list[dict[str, Any]]:
    """Flush, wait for ``count`` messages and return them (exactly ``count``, all valid)."""
    assert handler.flush(10)
    assert collector.wait_for(count)
    assert collector.invalid == []
    messages = collector.messages
    assert len(messages) == count
    return messages


class Rendezvous:
    """Lets ``parties`` coroutines go on only once all of them have arrived (10 s at most)."""

    def __init__(self, parties: int) -> None:
        self.parties = parties
        self.arrived = 0
        self.event: asyncio.Event | None = None

    async def wait(self) -> None:
        """Arrive, then wait for the others."""
        if self.event is None:
            self.event = asyncio.Event()
        self.arrived += 1
        if self.arrived >= self.parties:
            self.event.set()
        await asyncio.wait_for(self.event.wait(), 10)
