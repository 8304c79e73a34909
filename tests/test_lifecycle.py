"""Short-lived processes: sync mode, flushing(), Lambda, cron and Celery, end to end."""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import logbridge
from logbridge.collector import Collector, Faults
from tests.support import ROOT, analytics_logger, run_python

#: A child that configures an AnalyticsHandler that would hold events for an hour.
CHILD_SETUP = """
    import logging, os, logbridge
    handler = logbridge.AnalyticsHandler(endpoint={endpoint!r}, write_key="k", {options})
    log = logging.getLogger("analytics")
    log.setLevel(logging.INFO)
    log.propagate = False
    log.addHandler(handler)
"""


def child(endpoint: str, body: str, options: str = "flush_interval=3600") -> str:
    """Python code for a child process: the handler setup, then ``body``."""
    setup = CHILD_SETUP.format(endpoint=endpoint, options=options)
    return inspect.cleandoc(setup) + "\n" + inspect.cleandoc(body)


class TestSyncMode:
    """sync=True: each record is delivered on the caller's thread before emit returns."""

    def test_delivered_before_the_call_returns(self, collector: Collector) -> None:
        """Right after log.info returns, the collector has the message; no flush, no wait."""
        with analytics_logger(collector.endpoint, sync=True) as (log, _):
            log.info("Synced", extra={"user_id": "u1"})
            assert [m["event"] for m in collector.messages] == ["Synced"]
            log.info("Synced Again", extra={"user_id": "u1"})
            assert len(collector.messages) == 2

    def test_retries_on_the_callers_thread(self, collector_factory: Any) -> None:
        """A 503 is retried within the call: it returns once the retry was accepted."""
        collector = collector_factory(faults=Faults(status=503, status_count=1, retry_after="0"))
        with analytics_logger(collector.endpoint, sync=True) as (log, handler):
            log.info("Retried", extra={"user_id": "u1"})
            assert [r.status for r in collector.requests] == [503, 200]
            assert [m["event"] for m in collector.messages] == ["Retried"]
            assert handler.stats()["retries"] == 1

    def test_no_background_thread(self, collector: Collector) -> None:
        """Sync mode starts neither the listener nor the sender thread."""
        with analytics_logger(collector.endpoint, sync=True) as (log, _):
            log.info("Threadless", extra={"user_id": "u1"})
            names = [t.name for t in threading.enumerate()]
        assert "logbridge-listener" not in names
        assert "logbridge-sender" not in names

    def test_os_exit_right_after_the_call(self, collector: Collector) -> None:
        """A process that ends with os._exit right after logging has delivered its event."""
        result = run_python(child(collector.endpoint, """
            log.info("Before Exit", extra={"user_id": "u1"})
            os._exit(0)
        """, options="sync=True"))
        assert result.returncode == 0, result.stderr
        assert [m["event"] for m in collector.messages] == ["Before Exit"]


class TestFlushing:
    """logbridge.flushing(): a decorator and context manager that delivers at the end."""

    @pytest.mark.parametrize("decorated", [True, False], ids=["decorated", "control"])
    def test_os_exit_right_after_the_decorated_call(
        self, collector: Collector, decorated: bool
    ) -> None:
        """Events of a decorated call have arrived when os._exit follows; without it, none."""
        decorator = "@logbridge.flushing(timeout=10)" if decorated else ""
        result = run_python(child(collector.endpoint, f"""
            {decorator}
            def invocation(count):
                for i in range(count):
                    log.info("Invoked", extra={{"user_id": "u1", "i": i}})
                return "done"
            print(invocation(3), flush=True)
            os._exit(0)
        """))
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "done"
        assert len(collector.messages) == (3 if decorated else 0)

    def test_context_manager(self, collector: Collector) -> None:
        """On leaving the block everything is delivered, and .delivered says so."""
        with analytics_logger(collector.endpoint, flush_interval=3600) as (log, _):
            with logbridge.flushing(timeout=10) as flushed:
                assert flushed.delivered is None
                log.info("In Block", extra={"user_id": "u1"})
            assert flushed.delivered is True
            assert [m["event"] for m in collector.messages] == ["In Block"]

    def test_flushes_when_the_call_raises(self, collector: Collector) -> None:
        """The exception propagates and the events logged before it are delivered."""
        with analytics_logger(collector.endpoint, flush_interval=3600) as (log, _):

            @logbridge.flushing
            def failing() -> None:
                log.info("Before Failure", extra={"user_id": "u1"})
                raise ValueError("boom")

            with pytest.raises(ValueError, match="boom"):
                failing()
            assert [m["event"] for m in collector.messages] == ["Before Failure"]

    def test_coroutine_function(self, collector: Collector) -> None:
        """A decorated coroutine function stays one, and flushes before its result is seen."""
        with analytics_logger(collector.endpoint, flush_interval=3600) as (log, _):

            @logbridge.flushing(timeout=10)
            async def handler(event: dict[str, str]) -> str:
                log.info("Async Invocation", extra={"user_id": event["user"]})
                return "ok"

            assert inspect.iscoroutinefunction(handler)
            assert asyncio.run(handler({"user": "u1"})) == "ok"
            assert [m["userId"] for m in collector.messages] == ["u1"]

    def test_timeout_is_reported(
        self, collector_factory: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A flush that runs out of time gives delivered=False and a warning, not an error."""
        collector = collector_factory(faults=Faults(latency=3.0))
        with (
            caplog.at_level(logging.WARNING, logger="logbridge"),
            analytics_logger(collector.endpoint, flush_interval=3600, shutdown_timeout=0.5) as (
                log, _
            ),
        ):
            with logbridge.flushing(timeout=0.2) as flushed:
                log.info("Slow", extra={"user_id": "u1"})
            assert flushed.delivered is False
        assert any("not all delivered" in r.getMessage() for r in caplog.records)

    def test_rejects_a_bad_timeout(self) -> None:
        """A negative timeout is refused when the decorator is made."""
        with pytest.raises(ValueError, match="timeout"):
            logbridge.flushing(timeout=-1)


class TestLambdaExample:
    """examples/lambda_handler.py: configured at import, flushed per invocation."""

    @pytest.mark.parametrize("entry", ["handler", "handler.__wrapped__"],
                             ids=["decorated", "control"])
    def test_invocation_then_freeze(self, collector: Collector, entry: str) -> None:
        """The process ends with os._exit after the handler returns: its events arrived."""
        result = run_python(f"""
            import os
            from examples import lambda_handler
            print(lambda_handler.{entry}({{"user_id": "u1", "report": "sales"}}, None)["body"],
                  flush=True)
            os._exit(0)
        """, env={"LOGBRIDGE_ENDPOINT": collector.endpoint})
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "report sales ready"
        expected = 1 if entry == "handler" else 0
        assert len(collector.messages) == expected
        if expected:
            message = collector.messages[0]
            assert (message["event"], message["userId"]) == ("Report Generated", "u1")
            assert message["context"]["requestId"] == "local"

    def test_example_main_runs(self) -> None:
        """python examples/lambda_handler.py exits 0 and says each invocation delivered."""
        result = subprocess.run([sys.executable, "examples/lambda_handler.py"], cwd=ROOT,
                                capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "OK: each invocation's events arrived before it returned" in result.stdout


class TestCronExample:
    """examples/cron_job.py: exit status 0 only when every event was delivered."""

    def test_delivers_and_exits_zero(self, collector: Collector) -> None:
        """Against a collector the job exits 0 and all three events arrived."""
        result = run_python("import runpy; runpy.run_path('examples/cron_job.py', "
                            "run_name='__main__')",
                            env={"LOGBRIDGE_ENDPOINT": collector.endpoint})
        assert result.returncode == 0, result.stdout + result.stderr
        assert "events delivered: True" in result.stdout
        assert [m["properties"]["invoice_id"] for m in collector.messages] == [
            "inv-1", "inv-2", "inv-3"
        ]

    def test_unreachable_endpoint_exits_non_zero(self, collector_factory: Any) -> None:
        """With the endpoint down the job still ends, and its exit status says it failed."""
        stopped = collector_factory()
        endpoint = stopped.endpoint
        stopped.stop()
        result = run_python("import runpy; runpy.run_path('examples/cron_job.py', "
                            "run_name='__main__')",
                            env={"LOGBRIDGE_ENDPOINT": endpoint}, timeout=60)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "events delivered: False" in result.stdout

    def test_example_main_runs(self) -> None:
        """Without configuration it runs against its own collector and exits 0."""
        result = run_python("import runpy; runpy.run_path('examples/cron_job.py', "
                            "run_name='__main__')")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "the local collector received 3 events" in result.stdout


CELERY_BROKER = """
    import sys
    import examples.celery_app as example
    example.app.conf.update(broker_url="filesystem://", broker_transport_options={{
        "data_folder_in": {queue!r}, "data_folder_out": {queue!r},
        "processed_folder": {processed!r}, "control_folder": {processed!r} + "-control",
        "polling_interval": 0.1}})
"""


class TestCelery:
    """examples/celery_app.py: configured per worker process, flushed after each task."""

    @pytest.mark.parametrize("postrun", [True, False], ids=["recipe", "control"])
    def test_eager_task_then_os_exit(self, collector: Collector, postrun: bool) -> None:
        """An eager task's event has arrived when the process ends with os._exit."""
        disconnect = "" if postrun else (
            "example.signals.task_postrun.disconnect(example._flush_after_task)"
        )
        result = run_python(f"""
            import os
            import examples.celery_app as example
            example.HANDLER_OPTIONS.update(flush_interval=3600)
            example.app.conf.task_always_eager = True
            example.configure_logging()
            {disconnect}
            print(example.complete_order.delay("o1", "u1", 9.99).get(), flush=True)
            os._exit(0)
        """, env={"LOGBRIDGE_ENDPOINT": collector.endpoint})
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "o1"
        assert len(collector.messages) == (1 if postrun else 0)
        if postrun:
            message = collector.messages[0]
            assert (message["userId"], message["properties"]) == (
                "u1", {"order_id": "o1", "revenue": 9.99}
            )

    @pytest.mark.parametrize("pool", ["prefork", "threads"])
    def test_real_worker(self, collector: Collector, tmp_path: Path, pool: str) -> None:
        """A real worker (prefork child, or threads pool) delivers each task's event after it."""
        queue, processed = tmp_path / "queue", tmp_path / "processed"
        queue.mkdir()
        processed.mkdir()
        broker = inspect.cleandoc(CELERY_BROKER.format(queue=str(queue),
                                                       processed=str(processed)))
        worker_code = broker + "\n" + inspect.cleandoc(f"""
            example.HANDLER_OPTIONS.update(flush_interval=3600)  # only the flush can deliver
            example.app.worker_main(["worker", "--pool={pool}", "--concurrency=1",
                                     "--loglevel=WARNING", "--without-heartbeat",
                                     "--without-mingle", "--without-gossip"])
        """)
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOGBRIDGE_")}
        env["LOGBRIDGE_ENDPOINT"] = collector.endpoint
        worker = subprocess.Popen(
            [sys.executable, "-c", worker_code], cwd=ROOT, env=env, start_new_session=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        try:
            sent = run_python(broker + "\n" + inspect.cleandoc("""
                example.complete_order.delay("o1", "u1", 9.99)
                example.complete_order.delay("o2", "u2", 19.98)
            """), env={"LOGBRIDGE_ENDPOINT": collector.endpoint})
            assert sent.returncode == 0, sent.stderr
            assert collector.wait_for(2, timeout=60), "the worker did not deliver the events"
            assert sorted(m["userId"] for m in collector.messages) == ["u1", "u2"]
            assert {m["context"]["task"] for m in collector.messages} == {"shop.complete_order"}
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                output, _ = worker.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                output, _ = worker.communicate()
        assert worker.returncode == 0, output
        assert collector.invalid == []

    def test_example_main_runs(self) -> None:
        """python examples/celery_app.py runs an embedded worker and exits 0."""
        result = subprocess.run([sys.executable, "examples/celery_app.py"], cwd=ROOT,
                                capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "OK: both tasks' events were delivered" in result.stdout
