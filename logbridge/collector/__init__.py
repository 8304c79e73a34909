"""A local Segment-compatible batch receiver for tests, demos and benchmarks.

``Collector`` is the HTTP server, ``Faults`` its fault-injection policy and
``validate_message`` the Segment-spec check it applies to every message.
"""

from __future__ import annotations

from logbridge.collector.faults import Faults
from logbridge.collector.server import Collector, RequestRecord
from logbridge.collector.validate import validate_message

__all__ = ["Collector", "Faults", "RequestRecord", "validate_message"]
