"""logbridge's own warnings: heard on stderr when nobody routed them, rate-limited per problem."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest

from logbridge.collector import Collector
from logbridge.report import Reporter
from tests.support import run_python

#: The README's first snippet, as a new user pastes it (the endpoint comes from the env).
README_SNIPPET = """
import logging
import logbridge

handler = logbridge.AnalyticsHandler(write_key="YOUR_WRITE_KEY")  # destination="segment"
log = logging.getLogger("analytics")
log.addHandler(handler)
log.setLevel(logging.INFO)

log.info("Order Completed", extra={"user_id": "u1", "order_id": "o1", "revenue": 99.99})
log.info("identify", extra={"user_id": "u1", "traits": {"email": "a@example.com"}})
"""

#: The README's quickstart, five lines of Python against ``logbridge collect``.
QUICKSTART = """
import logging, logbridge
log = logging.getLogger("analytics")
log.setLevel(logging.INFO)
log.addHandler(logbridge.AnalyticsHandler(endpoint="http://127.0.0.1:8765"))
log.info("Signed Up", extra={"user_id": "u1", "plan": "pro"})
"""

#: Four records, each invalid for a different reason.
FOUR_INVALID = """
import logging
import logbridge

log = logging.getLogger("analytics")
log.addHandler(logbridge.AnalyticsHandler(write_key="k"))
log.setLevel(logging.INFO)
log.info("Signed Up")                                      # no user
log.info("group", extra={"user_id": "u1"})                 # no group_id
log.info("alias", extra={"user_id": "u1"})                 # no previous_id
log.info("Paid", extra={"user_id": "u1", "timestamp": "yesterday"})
"""


def _lines(text: str, needle: str) -> list[str]:
    return [line for line in text.splitlines() if needle in line]


@pytest.fixture
def keyed(collector_factory: Callable[..., Collector]) -> Collector:
    """A collector that requires a write key other than the README's."""
    return collector_factory(write_key="the-right-key")


def _env(collector: Collector | str) -> dict[str, str]:
    endpoint = collector if isinstance(collector, str) else collector.endpoint
    return {"LOGBRIDGE_ENDPOINT": endpoint}


class TestHeardWhenNobodyRoutedThem:
    """With no handler for ``logbridge`` or root, problems that lose events reach stderr."""

    def test_rejected_key_prints_the_401(self, keyed: Collector) -> None:
        """The README's first snippet with a wrong key exits 0 and says 401 on stderr."""
        done = run_python(README_SNIPPET, env=_env(keyed))
        assert done.returncode == 0, done.stderr
        rejected = _lines(done.stderr, "rejected")
        assert len(rejected) == 1, done.stderr
        assert "401" in rejected[0]
        assert "YOUR_WRITE_KEY" not in done.stderr
        assert keyed.messages == []

    def test_quickstart_against_a_collector_wanting_a_key(self, keyed: Collector) -> None:
        """The quickstart's five lines, sent without the key a collector asks for: 401 heard."""
        code = QUICKSTART.replace("http://127.0.0.1:8765", keyed.url)
        assert code != QUICKSTART
        done = run_python(code)
        assert done.returncode == 0, done.stderr
        rejected = _lines(done.stderr, "rejected")
        assert len(rejected) == 1 and "401" in rejected[0], done.stderr

    def test_two_handlers_rejected_at_exit_are_both_heard(self, keyed: Collector) -> None:
        """Two handlers whose batches leave only at exit each report their 401."""
        code = """
        import logging, logbridge
        for name in ("shop", "billing"):
            log = logging.getLogger(name)
            log.addHandler(logbridge.AnalyticsHandler(write_key="wrong", flush_interval=30))
            log.setLevel(logging.INFO)
            log.info("Paid", extra={"user_id": "u1"})
        """
        done = run_python(code, env=_env(keyed))
        assert done.returncode == 0, done.stderr
        assert len(_lines(done.stderr, "rejected")) == 2, done.stderr

    def test_four_invalid_events_are_four_lines(self, collector: Collector) -> None:
        """Four records invalid for four reasons are four lines, each naming its reason."""
        done = run_python(FOUR_INVALID, env=_env(collector))
        assert done.returncode == 0, done.stderr
        invalid = _lines(done.stderr, "invalid")
        assert len(invalid) == 4, done.stderr
        for reason in ("user_id or anonymous_id", "groupId", "previousId", "yesterday"):
            assert any(reason in line for line in invalid), (reason, done.stderr)

    def test_endpoint_down_at_exit_is_heard(self) -> None:
        """Events still held when shutdown_timeout runs out against a dead port are reported."""
        code = README_SNIPPET.replace(
            'write_key="YOUR_WRITE_KEY"', 'write_key="k", shutdown_timeout=0.5'
        )
        done = run_python(code, env=_env("http://127.0.0.1:9/v1/batch"))
        assert done.returncode == 0, done.stderr
        lost = _lines(done.stderr, "shutdown_timeout")
        assert lost, done.stderr
        assert "2 messages not delivered" in lost[0]


    def test_flush_that_runs_out_is_heard(self) -> None:
        """A ``logbridge.flushing`` block that could not deliver says so on stderr."""
        code = """
        import logging
        import logbridge

        log = logging.getLogger("analytics")
        log.addHandler(logbridge.AnalyticsHandler(write_key="k", shutdown_timeout=0.2))
        log.setLevel(logging.INFO)
        with logbridge.flushing(timeout=0.2):
            log.info("Order Completed", extra={"user_id": "u1"})
        """
        done = run_python(code, env=_env("http://127.0.0.1:9/v1/batch"))
        assert done.returncode == 0, done.stderr
        assert _lines(done.stderr, "not all delivered"), done.stderr


    def test_any_warning_on_logbridge_is_heard(self) -> None:
        """Not only the reporter's lines: the plain-http warning of a destination too."""
        code = """
        import logbridge
        # TEST-NET address: never contacted, nothing is logged through the handler.
        logbridge.AnalyticsHandler(endpoint="http://192.0.2.1/v1/batch", write_key="k")
        """
        done = run_python(code)
        assert done.returncode == 0, done.stderr
        assert _lines(done.stderr, "over plain http"), done.stderr


class TestRoutedByTheApplication:
    """Once the application says where logbridge's warnings go, they go there, once."""

    def test_dictconfig_disabling_existing_loggers_does_not_silence_them(
        self, keyed: Collector
    ) -> None:
        """dictConfig's default disable_existing_loggers is no choice about logbridge: heard."""
        code = """
        import logging.config
        logging.config.dictConfig({
            "version": 1,
            "formatters": {"plain": {"format": "app: %(name)s %(message)s"}},
            "handlers": {
                "console": {"class": "logging.StreamHandler", "formatter": "plain"},
                "analytics": {"()": "logbridge.AnalyticsHandler", "write_key": "wrong"},
            },
            "root": {"handlers": ["console"], "level": "WARNING"},
            "loggers": {"analytics": {"handlers": ["analytics"], "level": "INFO"}},
        })
        assert logging.getLogger("logbridge").disabled  # the stdlib did disable it
        logging.getLogger("analytics").info("Paid", extra={"user_id": "u1"})
        """
        done = run_python(code, env=_env(keyed))
        assert done.returncode == 0, done.stderr
        rejected = _lines(done.stderr, "rejected")
        assert len(rejected) == 1, done.stderr
        assert rejected[0].startswith("app: logbridge logbridge: rejected:")

    def test_basic_config_takes_them_once(self, keyed: Collector) -> None:
        """With ``logging.basicConfig()`` the 401 is one line, in basicConfig's format."""
        code = "import logging\nlogging.basicConfig()\n" + README_SNIPPET
        done = run_python(code, env=_env(keyed))
        rejected = _lines(done.stderr, "rejected")
        assert len(rejected) == 1, done.stderr
        assert rejected[0].startswith("WARNING:logbridge:logbridge: rejected:")

    def test_handler_on_logbridge_takes_them(self, keyed: Collector) -> None:
        """A handler on the ``logbridge`` logger gets the 401; stderr stays silent."""
        code = (
            "import logging, sys\n"
            "logging.getLogger('logbridge').addHandler(logging.StreamHandler(sys.stdout))\n"
            + README_SNIPPET
        )
        done = run_python(code, env=_env(keyed))
        assert len(_lines(done.stdout, "rejected")) == 1, done.stdout
        assert done.stderr == ""

    @pytest.mark.parametrize(
        "silence",
        [
            "logging.getLogger('logbridge').propagate = False",
            "logging.getLogger('logbridge').setLevel(logging.ERROR)",
            "logging.lastResort = None",
        ],
        ids=["propagate", "level", "no-last-resort"],
    )
    def test_silenced_stays_quiet(self, keyed: Collector, silence: str) -> None:
        """An application that turned logbridge's warnings off hears nothing."""
        code = "import logging\n" + silence + "\n" + README_SNIPPET
        done = run_python(code, env=_env(keyed))
        assert done.returncode == 0
        assert done.stderr == ""


@pytest.fixture
def warnings_seen() -> Iterator[list[str]]:
    """The messages logbridge writes to its logger during the test."""
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    handler = Keep()
    logger = logging.getLogger("logbridge")
    logger.addHandler(handler)
    try:
        yield seen
    finally:
        logger.removeHandler(handler)


class TestRateLimit:
    """The rate limit holds back repeats of one problem, never a different problem."""

    def test_distinct_reasons_each_reported(self, warnings_seen: list[str]) -> None:
        """Different reasons of one kind each get their line; a repeat does not."""
        reporter = Reporter(interval=60)
        reporter.problem("invalid", "record from app:10 dropped: a track needs user_id")
        reporter.problem("invalid", "record from app:11 dropped: groupId is required")
        reporter.problem("invalid", "record from app:12 dropped: a track needs user_id")
        assert len(warnings_seen) == 2
        assert "groupId" in warnings_seen[1]

    def test_ids_and_counts_do_not_make_a_problem_distinct(
        self, warnings_seen: list[str]
    ) -> None:
        """Details that differ only in numbers, quoted values or message ids are one problem."""
        reporter = Reporter(interval=60)
        reporter.problem("rejected", "3 messages not delivered after 1 attempt(s): HTTP 401")
        reporter.problem("rejected", "7 messages not delivered after 1 attempt(s): HTTP 401")
        reporter.problem(
            "oversize", "track message 0b5e8f0e-3c1d-4e0a-9d2a-0c1f2e3d4a5b is 40000 bytes"
        )
        reporter.problem(
            "oversize", "track message 9d2a0c1f-2e3d-4a5b-8f0e-3c1d4e0a0b5e is 41000 bytes"
        )
        reporter.problem("after_close", "record 'Signed Up' emitted after the handler was closed")
        reporter.problem("after_close", "record 'Paid' emitted after the handler was closed")
        assert len(warnings_seen) == 3

    def test_summary_reports_what_was_held_back(self, warnings_seen: list[str]) -> None:
        """``summary()`` says how many reports of each kind the rate limit held back."""
        reporter = Reporter(interval=60)
        for count in range(5):
            reporter.problem("rejected", f"{count} messages not delivered: HTTP 401")
        reporter.problem("invalid", "record from app:1 dropped: groupId is required")
        assert len(warnings_seen) == 2
        reporter.summary()
        assert len(warnings_seen) == 3
        assert "rejected" in warnings_seen[2]
        assert "4 more" in warnings_seen[2]
        reporter.summary()  # nothing new held back: no line
        assert len(warnings_seen) == 3

    def test_held_count_at_exit_in_a_real_process(self, keyed: Collector) -> None:
        """Repeated 401s print once, then the held-back count when the handler stops."""
        code = README_SNIPPET.replace(
            'write_key="YOUR_WRITE_KEY"', 'write_key="YOUR_WRITE_KEY", flush_at=1'
        )
        # A request each: two records logged at once may share one batch.
        code = code.replace('"revenue": 99.99})\n', '"revenue": 99.99})\nhandler.flush()\n')
        assert code.count("handler.flush()") == 1
        done = run_python(code, env=_env(keyed))
        rejected = _lines(done.stderr, "rejected")
        assert len(rejected) == 2, done.stderr
        assert "1 more" in rejected[1]

    def test_many_distinct_details_stay_bounded(self, warnings_seen: list[str]) -> None:
        """Past the bound on distinct problems, new details fall back to one per kind."""
        reporter = Reporter(interval=60)
        words = [f"reason{chr(97 + i % 26)}{chr(97 + i // 26)}" for i in range(500)]
        for word in words:
            reporter.problem("callback", f"hook raised {word}")
        assert 100 <= len(warnings_seen) <= 101

