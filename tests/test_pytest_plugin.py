"""The analytics_events fixture's failures, as pytest prints them in a real run."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

CHECKOUT = """
import logging

def test_checkout(analytics_events):
    log = logging.getLogger("analytics")
    log.info("Order Completed", extra={"user_id": "u1", "revenue": 30.0, "items": 2})
    log.info("identify", extra={"user_id": "u1", "traits": {"plan": "pro"}})
    log.info("Cart Viewed", extra={"revenue": 1.0})
    analytics_events.assert_tracked("Order Completed", user_id="u1", revenue=29.99)
"""


def failure_of(pytester: pytest.Pytester, source: str, ini: str = "") -> str:
    """Run one failing test file in a fresh pytest; its output."""
    pytester.makepyfile(test_app=source)
    if ini:
        pytester.makeini(ini)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    return result.stdout.str()


class TestFailureMessages:
    """What a failing assertion on ``analytics_events`` tells the developer."""

    def test_shows_properties_and_traits(self, pytester: pytest.Pytester) -> None:
        """The captured events are listed with their properties and traits: 30.0 is visible."""
        output = failure_of(pytester, CHECKOUT)
        assert "expected one track 'Order Completed' for user 'u1'" in output
        assert "'revenue': 30.0" in output and "'items': 2" in output
        assert "traits={'plan': 'pro'}" in output

    def test_names_invalid_records(self, pytester: pytest.Pytester) -> None:
        """A record dropped as invalid during the test is named, with its reason and logger."""
        output = failure_of(pytester, CHECKOUT)
        assert "1 invalid record(s) dropped" in output
        assert "analytics: a track needs user_id or anonymous_id" in output
        assert "Cart Viewed" in output

    def test_traceback_stops_at_the_tests_line(self, pytester: pytest.Pytester) -> None:
        """No frame of logbridge's own code is shown; the test's line is the last one."""
        output = failure_of(pytester, CHECKOUT)
        assert "logbridge/testing.py" not in output
        assert "test_app.py:8: AssertionError" in output

    def test_hints_at_the_ini_option(self, pytester: pytest.Pytester) -> None:
        """Events on a logger outside logbridge_capture_loggers: the failure names the option."""
        output = failure_of(pytester, """
            import logging

            def test_signup(analytics_events):
                log = logging.getLogger("events.signup")
                log.setLevel(logging.INFO)
                log.info("Signed Up", extra={"user_id": "u1"})
                analytics_events.assert_tracked("Signed Up")
        """)
        assert "'events.signup'" in output
        assert "logbridge_capture_loggers" in output
        assert "['analytics']" in output

    def test_hint_names_the_configured_loggers(self, pytester: pytest.Pytester) -> None:
        """With the ini option set, the hint lists its loggers, not the default."""
        output = failure_of(pytester, """
            import logging

            def test_signup(analytics_events):
                logging.getLogger("analytics").setLevel(logging.INFO)
                logging.getLogger("analytics").info("Signed Up", extra={"user_id": "u1"})
                analytics_events.assert_tracked("Signed Up")
        """, ini="[pytest]\nlogbridge_capture_loggers =\n    events\n")
        assert "captured no events" in output
        assert "logbridge_capture_loggers (['events'])" in output
        assert "'analytics'" in output

    def test_assert_no_invalid_and_not_tracked(self, pytester: pytest.Pytester) -> None:
        """assert_no_invalid and assert_not_tracked fail at the test's line with the details."""
        pytester.makepyfile(test_app="""
            import logging

            def test_invalid(analytics_events):
                logging.getLogger("analytics").info("group", extra={"user_id": "u1"})
                analytics_events.assert_no_invalid()

            def test_not_tracked(analytics_events):
                logging.getLogger("analytics").info("Refunded", extra={"user_id": "u1", "n": 7})
                analytics_events.assert_not_tracked("Refunded")
        """)
        result = pytester.runpytest("-p", "no:cacheprovider")
        result.assert_outcomes(failed=2)
        output = result.stdout.str()
        assert "groupId is required" in output
        assert "properties={'n': 7}" in output
        assert "logbridge/testing.py" not in output
