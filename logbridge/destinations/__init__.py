"""Where batches go: one object per service, behind one small protocol.

- :mod:`~logbridge.destinations.base`: the protocol (:class:`Destination`, :class:`Limits`,
  :class:`Outcome`).
- :mod:`~logbridge.destinations.http`: the HTTP base (session, gzip, auth).
- :mod:`~logbridge.destinations.segment`: Segment, RudderStack, Dreamdata.
- :mod:`~logbridge.destinations.amplitude`: Amplitude's HTTP API v2 and Batch API.
- :mod:`~logbridge.destinations.oauth`: OAuth 2 for Segment and Dreamdata.
- :mod:`~logbridge.destinations.sinks`: console, JSON lines, memory.
- :mod:`~logbridge.destinations.registry`: names, and building from options.
"""

from __future__ import annotations

from .base import Destination, Limits, Outcome
from .registry import Preset, build_destination, presets

__all__ = ["Destination", "Limits", "Outcome", "Preset", "build_destination", "presets"]
