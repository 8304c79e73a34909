"""The shop's test setup: logging configured as in production (unless told not to).

With ``SHOP_CONFIGURE_LOGGING=0`` the tests run with no logging configuration at all;
the ``analytics_events`` fixture (from logbridge's pytest plugin, loaded automatically)
captures the events either way, and sends none.
"""

from __future__ import annotations

import os

import shop

os.environ.setdefault("LOGBRIDGE_WRITE_KEY", "test-write-key")
if os.environ.get("SHOP_CONFIGURE_LOGGING", "1") == "1":
    shop.configure_logging()
