"""Nothing is lost when the process ends: logging.shutdown(), atexit, close()."""

from __future__ import annotations

from typing import Any

from logbridge.collector import Collector, Faults
from tests.support import run_python


class TestExit:
    """A process that exits normally delivers every event it logged."""

    def test_thousand_events_then_exit(self, collector: Collector) -> None:
        """1,000 events logged just before a normal exit all arrive."""
        code = f"""
        import logging, logbridge
        handler = logbridge.AnalyticsHandler(endpoint={collector.endpoint!r}, write_key="k",
                                             flush_interval=60)
        log = logging.getLogger("analytics")
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        for i in range(1000):
            log.info("Exit Test", extra={{"user_id": "u1", "i": i}})
        """
        result = run_python(code)
        assert result.returncode == 0, result.stderr
        assert collector.wait_for(1000)
        assert collector.stats()["duplicates"] == 0
        assert sorted(m["properties"]["i"] for m in collector.messages) == list(range(1000))

    def test_first_event_from_an_atexit_callback(self, collector: Collector) -> None:
        """An event first logged in an atexit callback (no thread may start on 3.12) arrives."""
        code = f"""
        import atexit, logging, logbridge
        handler = logbridge.AnalyticsHandler(endpoint={collector.endpoint!r}, write_key="k")
        log = logging.getLogger("analytics")
        log.addHandler(handler)
        log.setLevel(logging.INFO)

        @atexit.register
        def goodbye():
            log.info("Process Exited", extra={{"user_id": "u1"}})
            log.info("Process Exited Twice", extra={{"user_id": "u1"}})
        """
        result = run_python(code)
        assert result.returncode == 0, result.stderr
        assert collector.wait_for(2)
        assert [m["event"] for m in collector.messages] == [
            "Process Exited",
            "Process Exited Twice",
        ]

    def test_shutdown_is_bounded_when_the_endpoint_is_down(self, collector_factory: Any) -> None:
        """With the endpoint refusing, exit waits no longer than about shutdown_timeout."""
        collector: Collector = collector_factory()
        endpoint = collector.endpoint
        collector.stop()
        code = f"""
        import logging, time, logbridge
        handler = logbridge.AnalyticsHandler(endpoint={endpoint!r}, write_key="k",
                                             shutdown_timeout=1.0)
        log = logging.getLogger("analytics")
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.info("Lost", extra={{"user_id": "u1"}})
        started = time.monotonic()
        logging.shutdown()
        print(round(time.monotonic() - started, 2), handler.stats()["dropped"]["shutdown_timeout"])
        """
        result = run_python(code)
        assert result.returncode == 0, result.stderr
        waited, dropped = result.stdout.split()
        assert float(waited) < 4.0
        assert int(dropped) == 1


class TestFlush:
    """flush() returns once what came before it is delivered."""

    def test_flush_delivers_before_returning(self, collector: Collector) -> None:
        """After flush() returns True, the collector already holds the events."""
        code = f"""
        import logging, logbridge
        handler = logbridge.AnalyticsHandler(endpoint={collector.endpoint!r}, write_key="k",
                                             flush_interval=60)
        log = logging.getLogger("analytics")
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        for i in range(10):
            log.info("Flushed", extra={{"user_id": "u1", "i": i}})
        print(handler.flush())
        import urllib.request, json
        print(json.load(urllib.request.urlopen({collector.url + "/stats"!r}))["received"])
        import os
        os._exit(0)  # skip logging.shutdown: only flush() delivered
        """
        result = run_python(code)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == ["True", "10"]


class TestOneDeadline:
    """One ``shutdown_timeout`` bounds the whole exit, whatever the stdlib calls in turn."""

    def test_exit_against_a_collector_that_never_answers(self, collector_factory: Any) -> None:
        """logging.shutdown() (flush, then close) takes about one deadline, not two."""
        collector: Collector = collector_factory(faults=Faults(latency=60.0))
        code = f"""
        import atexit, logging, time, logbridge
        handler = logbridge.AnalyticsHandler(endpoint={collector.endpoint!r}, write_key="k",
                                             shutdown_timeout=2.0, flush_interval=0.05)
        log = logging.getLogger("analytics")
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        for i in range(3):
            log.info("Slow", extra={{"user_id": "u1"}})
        started = time.monotonic()

        def report():
            print(round(time.monotonic() - started, 2), flush=True)
        logging.shutdown()  # as at exit: flush() then close() of every handler
        report()
        """
        result = run_python(code)
        assert result.returncode == 0, result.stderr
        assert float(result.stdout.split()[0]) < 3.5  # two deadlines would be >= 4 s

    def test_natural_exit_to_a_closed_port(self, collector_factory: Any) -> None:
        """A process exiting with events for a dead endpoint ends within one deadline."""
        collector: Collector = collector_factory()
        endpoint = collector.endpoint
        collector.stop()
        code = f"""
        import logging, time, logbridge
        handler = logbridge.AnalyticsHandler(endpoint={endpoint!r}, write_key="k",
                                             shutdown_timeout=2.0)
        log = logging.getLogger("analytics")
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        for i in range(3):
            log.info("Lost", extra={{"user_id": "u1"}})
        print(time.time(), flush=True)
        """
        import time

        result = run_python(code)
        ended = time.time()
        assert result.returncode == 0, result.stderr
        assert ended - float(result.stdout.split()[0]) < 3.5


class TestReconfiguration:
    """Events logged before dictConfig replaces the handler are delivered, even at exit."""

    def test_reconfigure_twice_then_exit_at_once(self, collector: Collector) -> None:
        """Two configurations, then one without handlers, then exit: both events arrive."""
        code = f"""
        import logging, logging.config
        config = {{
            "version": 1,
            "handlers": {{"analytics": {{"()": "logbridge.AnalyticsHandler",
                                         "endpoint": {collector.endpoint!r}, "write_key": "k"}}}},
            "loggers": {{"analytics": {{"handlers": ["analytics"], "level": "INFO"}}}},
        }}
        log = logging.getLogger("analytics")
        logging.config.dictConfig(config)
        log.info("First Config", extra={{"user_id": "u1"}})
        logging.config.dictConfig(config)
        log.info("Second Config", extra={{"user_id": "u1"}})
        logging.config.dictConfig({{"version": 1, "disable_existing_loggers": False}})
        """
        result = run_python(code)
        assert result.returncode == 0, result.stderr
        assert collector.wait_for(2, timeout=10)
        assert sorted(m["event"] for m in collector.messages) == ["First Config", "Second Config"]

    def test_closed_handlers_threads_end_once_delivered(self, collector: Collector) -> None:
        """After a reconfiguration, the old handler's threads end once their events are sent."""
        code = f"""
        import logging, logging.config, threading, time
        config = {{
            "version": 1,
            "handlers": {{"analytics": {{"()": "logbridge.AnalyticsHandler",
                                         "endpoint": {collector.endpoint!r}, "write_key": "k"}}}},
            "loggers": {{"analytics": {{"handlers": ["analytics"], "level": "INFO"}}}},
        }}
        logging.config.dictConfig(config)
        logging.getLogger("analytics").info("Before", extra={{"user_id": "u1"}})
        logging.config.dictConfig({{"version": 1, "disable_existing_loggers": False}})
        deadline = time.monotonic() + 10
        def ours():
            return [t for t in threading.enumerate() if t.name.startswith("logbridge-")]
        for thread in ours():  # each ends once delivered, or the deadline passes
            thread.join(max(0.0, deadline - time.monotonic()))
        print(len(ours()))
        """
        result = run_python(code)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == ["0"]
        assert collector.wait_for(1)
