"""Under gevent's monkey-patching (gunicorn's gevent worker) every event is delivered."""

from __future__ import annotations

import signal
from typing import Any

import pytest
import requests

from logbridge.collector import Collector
from tests.delivery_support import Background
from tests.support import run_python


class TestPatchAll:
    """gevent.monkey.patch_all() first, then logbridge: threads are greenlets, queues too."""

    @pytest.mark.parametrize("block", [False, True])
    def test_greenlets_log_then_exit(self, collector: Collector, block: bool) -> None:
        """Five greenlets log 100 events each, the process exits: all 500 arrive once."""
        code = f"""
        from gevent import monkey
        monkey.patch_all()
        import logging, threading, gevent, logbridge
        assert threading.Thread.__module__.startswith("gevent")  # really patched
        handler = logbridge.AnalyticsHandler(endpoint={collector.endpoint!r}, write_key="k",
                                             flush_at=30, block={block!r})
        log = logging.getLogger("analytics")
        log.addHandler(handler)
        log.setLevel(logging.INFO)

        def work(n):
            for i in range(100):
                log.info("Green", extra={{"user_id": f"g{{n}}", "i": i}})
                gevent.sleep(0)

        gevent.joinall([gevent.spawn(work, n) for n in range(5)])
        """
        result = run_python(code)
        assert result.returncode == 0, result.stderr
        assert collector.wait_for(500)
        keys = {(m["userId"], m["properties"]["i"]) for m in collector.messages}
        assert len(keys) == 500
        assert collector.stats()["duplicates"] == 0

    def test_flush_and_outage_under_gevent(self, collector: Collector) -> None:
        """flush() works and a short outage is ridden out, all on the gevent hub."""
        collector.down(1.0)
        code = f"""
        from gevent import monkey
        monkey.patch_all()
        import logging, logbridge
        handler = logbridge.AnalyticsHandler(endpoint={collector.endpoint!r}, write_key="k",
                                             flush_at=10)
        log = logging.getLogger("analytics")
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        for i in range(50):
            log.info("Through Outage", extra={{"user_id": "u1", "i": i}})
        print(handler.flush(timeout=60), handler.stats()["retries"] > 0)
        """
        result = run_python(code, timeout=90)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == ["True", "True"]
        assert sorted(m["properties"]["i"] for m in collector.messages) == list(range(50))


@pytest.mark.slow
class TestGunicornGeventWorker:
    """gunicorn -k gevent: the worker patches, imports the app, and delivers its events."""

    def test_gevent_worker(self, collector: Collector) -> None:
        """10 requests to a gevent worker: the boot, load and request events arrive once."""
        args = ["-m", "gunicorn", "-k", "gevent", "-w", "1", "-c", "tests/apps/gunicorn_conf.py",
                "tests.apps.analytics_app:app"]
        env: Any = {"LOGBRIDGE_ENDPOINT": collector.endpoint}
        with Background("", args=args, env=env) as server:
            lines = [server.read_line(timeout=60) for _ in range(2)]
            (ready,) = [line for line in lines if line.startswith("READY")]
            url = f"http://127.0.0.1:{ready.split()[1]}/"
            for n in range(10):
                response = requests.get(url, params={"n": n}, timeout=30)
                assert response.status_code == 200
            server.process.send_signal(signal.SIGTERM)
            code, stderr = server.finish(timeout=60)
        assert code == 0, stderr
        assert collector.wait_for(12)
        served = [m for m in collector.messages if m["event"] == "Request Served"]
        assert sorted(m["properties"]["n"] for m in served) == list(range(10))
        assert collector.stats()["duplicates"] == 0
