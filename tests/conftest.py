"""Shared fixtures: a local collector to send events to."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from logbridge.collector.server import Collector


@pytest.fixture
def collector_factory() -> Iterator[Callable[..., Collector]]:
    """Start collectors on 127.0.0.1 (ephemeral port) from Collector kwargs; stop them after."""
    started: list[Collector] = []

    def make(**kwargs: Any) -> Collector:
        """Start a collector with ``kwargs`` (write_key, faults, output, echo, ...)."""
        collector = Collector("127.0.0.1", 0, **kwargs)
        started.append(collector)
        return collector.start()

    yield make
    for collector in reversed(started):
        collector.stop()


@pytest.fixture
def collector(collector_factory: Callable[..., Collector]) -> Collector:
    """A started collector with default settings (no write key, no faults)."""
    return collector_factory()
