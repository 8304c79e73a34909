"""A local Segment- and Amplitude-compatible receiver for tests, demos and benchmarks.

``Collector`` is the HTTP server, ``Faults`` its fault-injection policy and
``validate_message`` the Segment-spec check it applies to every message.

Modules: ``server`` (the :class:`Collector` lifecycle), ``http_server`` and ``handler``
(the HTTP plumbing), ``body`` and ``batch`` (reading, decoding, authenticating and sorting
a batch), ``recorder`` (what was received), ``echo`` (readable lines), ``faults`` and
``validate``; for the debugger, ``events`` (the last N events), ``problems`` (the rule
behind each validation problem), ``debugger`` (the page and its JSON API) and
``terminal`` (what ``logbridge collect`` prints); for Amplitude's APIs (``/2/httpapi``,
``/batch``, ``/usermap``), ``amplitude`` and ``amplitude_validate``.
"""

from __future__ import annotations

from logbridge.collector.faults import Faults
from logbridge.collector.recorder import RequestRecord
from logbridge.collector.server import Collector
from logbridge.collector.validate import validate_message

__all__ = ["Collector", "Faults", "RequestRecord", "validate_message"]
