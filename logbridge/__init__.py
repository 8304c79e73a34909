"""logbridge: product analytics from Python's standard logging.

Log an event, and logbridge turns it into a Segment-spec message, batches it and
delivers it to Segment, RudderStack, Dreamdata, Amplitude or any Segment-compatible
endpoint::

    log = logging.getLogger("analytics")
    log.info("Order Completed", extra={"user_id": "u1", "revenue": 99.99})
"""

from __future__ import annotations

from . import testing
from ._version import __version__
from .analytics import Analytics
from .context import bind, bound, clear, unbind
from .errors import ConfigurationError, DeliveryError, InvalidEvent, LogbridgeError
from .formatter import AnalyticsFormatter
from .handler import AnalyticsHandler, flush
from .lifecycle import Flushing, flushing
from .listener import AnalyticsListener
from .record import RESERVED_ATTRS
from .signals import install_signal_handlers
from .stats import DropReason

__all__ = [
    "RESERVED_ATTRS",
    "Analytics",
    "AnalyticsFormatter",
    "AnalyticsHandler",
    "AnalyticsListener",
    "ConfigurationError",
    "DeliveryError",
    "DropReason",
    "Flushing",
    "InvalidEvent",
    "LogbridgeError",
    "__version__",
    "bind",
    "bound",
    "clear",
    "flush",
    "flushing",
    "install_signal_handlers",
    "testing",
    "unbind",
]
