"""pytest plugin (auto-loaded when logbridge is installed): the ``analytics_events`` fixture.

It registers one fixture and one ini option and nothing else; tests that do not ask
for the fixture are not affected. Disable it with ``-p no:logbridge``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from logbridge.testing import CapturedEvents

_LOGGERS_INI = "logbridge_capture_loggers"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Declare the ``logbridge_capture_loggers`` ini option."""
    parser.addini(
        _LOGGERS_INI,
        "loggers whose records are analytics events when no AnalyticsHandler is "
        "configured for them (logbridge's analytics_events fixture)",
        type="linelist",
        default=["analytics"],
    )


@pytest.fixture
def analytics_events(request: pytest.FixtureRequest) -> Iterator[CapturedEvents]:
    """Every analytics message logged during the test, captured instead of sent.

    See :func:`logbridge.testing.capture`; the loggers it watches when the application
    configured no AnalyticsHandler come from the ``logbridge_capture_loggers`` ini
    option (default: ``analytics``).
    """
    from logbridge.testing import capture

    loggers = request.config.getini(_LOGGERS_INI) or ["analytics"]
    with capture(loggers=loggers) as events:
        events.loggers_setting = _LOGGERS_INI
        yield events
