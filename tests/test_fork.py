"""Forked processes deliver their own events, never the parent's, and never deadlock."""

from __future__ import annotations

import signal
import sys
from collections import Counter
from typing import Any

import pytest
import requests

from logbridge.collector import Collector
from tests.delivery_support import Background
from tests.support import run_python

_SETUP = """
import logging, os, sys, threading, logbridge
handler = logbridge.AnalyticsHandler(endpoint={endpoint!r}, write_key="k", flush_interval=60)
log = logging.getLogger("analytics")
log.addHandler(handler)
log.setLevel(logging.INFO)
"""


def events(collector: Collector) -> Counter[str]:
    """How many of each event name arrived."""
    return Counter(m["event"] for m in collector.messages)


class TestOsFork:
    """os.fork(): the child starts empty, the parent keeps what it had queued."""

    def test_parent_and_child_each_deliver_their_own(self, collector: Collector) -> None:
        """Queued-before-fork events arrive once (from the parent); the child's arrive too."""
        code = _SETUP.format(endpoint=collector.endpoint) + """
        log.info("Started", extra={"user_id": "parent"})
        assert handler.flush()  # the listener threads are running when we fork
        for i in range(3):
            log.info("Queued Before Fork", extra={"user_id": "parent", "i": i})
        pid = os.fork()
        if pid == 0:
            for i in range(2):
                log.info("From Child", extra={"user_id": "child", "pid": os.getpid()})
            sys.exit(0)  # a normal exit: atexit runs logging.shutdown()
        _, status = os.waitpid(pid, 0)
        log.info("From Parent", extra={"user_id": "parent"})
        print(os.waitstatus_to_exitcode(status))
        """
        result = run_python(code.replace("\n        ", "\n"))
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == ["0"]
        assert collector.wait_for(7)
        assert events(collector) == {
            "Started": 1, "Queued Before Fork": 3, "From Child": 2, "From Parent": 1
        }
        assert collector.stats()["duplicates"] == 0

    def test_forking_while_threads_log_does_not_deadlock(
        self, collector: Collector, tmp_path: Any
    ) -> None:
        """20 forks while 4 threads log through a spooled handler: every child exits, delivers."""
        spool = tmp_path / "spool.db"
        code = f"""
        import logging, os, sys, threading, warnings, logbridge
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads
        handler = logbridge.AnalyticsHandler(endpoint={collector.endpoint!r}, write_key="k",
                                             spool={str(spool)!r}, flush_at=7,
                                             flush_interval=0.01, max_queue_size=2000)
        log = logging.getLogger("analytics")
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        stop = threading.Event()

        def chatter(n):
            i = 0
            while not stop.is_set():
                log.info("Chatter", extra={{"user_id": f"t{{n}}", "i": i}})
                i += 1

        threads = [threading.Thread(target=chatter, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        codes = []
        for k in range(20):
            pid = os.fork()
            if pid == 0:
                log.info("Forked Child", extra={{"user_id": "child", "k": k}})
                sys.exit(0)
            codes.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
        stop.set()
        for t in threads:
            t.join()
        print(codes.count(0))
        """
        result = run_python(code, timeout=120)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == ["20"]
        assert collector.wait_for(20, timeout=30)
        children = [m for m in collector.messages if m["event"] == "Forked Child"]
        assert sorted(m["properties"]["k"] for m in children) == list(range(20))
        assert collector.stats()["duplicates"] == 0


class TestMultiprocessing:
    """multiprocessing with the fork start method: each worker's events arrive."""

    @pytest.mark.parametrize("style", ["process", "pool"])
    def test_fork_context_workers_deliver(self, collector: Collector, style: str) -> None:
        """Three fork-started workers log 10 events each; all 30 arrive, the parent's once."""
        code = _SETUP.format(endpoint=collector.endpoint) + f"""
import multiprocessing

def work(n):
    for i in range(10):
        log.info("Worker Event", extra={{"user_id": f"w{{n}}", "i": i, "pid": os.getpid()}})
    return n

if __name__ == "__main__":
    log.info("Queued Before Fork", extra={{"user_id": "parent"}})
    context = multiprocessing.get_context("fork")
    if {style!r} == "process":
        workers = [context.Process(target=work, args=(n,)) for n in range(3)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        print(sorted(w.exitcode for w in workers))
    else:
        pool = context.Pool(3)
        print(sorted(pool.map(work, range(3), chunksize=1)))
        pool.close()
        pool.join()
"""
        result = run_python(code)
        assert result.returncode == 0, result.stderr
        assert collector.wait_for(31)
        assert events(collector) == {"Queued Before Fork": 1, "Worker Event": 30}
        keys = {(m["userId"], m["properties"]["i"]) for m in collector.messages
                if m["event"] == "Worker Event"}
        assert len(keys) == 30
        assert collector.stats()["duplicates"] == 0


@pytest.mark.slow
class TestGunicornPreload:
    """gunicorn --preload -w 2: the master's queued event once, each worker's own events."""

    def test_preload_two_workers(self, collector: Collector) -> None:
        """20 requests over 2 forked workers: every event once, the preload event not doubled."""
        args = ["-m", "gunicorn", "--preload", "-w", "2", "-c", "tests/apps/gunicorn_conf.py",
                "tests.apps.analytics_app:app"]
        with Background("", args=args, env={"LOGBRIDGE_ENDPOINT": collector.endpoint}) as server:
            lines = [server.read_line(timeout=60) for _ in range(3)]
            (ready,) = [line for line in lines if line.startswith("READY")]
            workers = {line.split()[1] for line in lines if line.startswith("WORKER")}
            assert len(workers) == 2
            url = f"http://127.0.0.1:{ready.split()[1]}/"
            served_by = Counter(
                requests.get(url, params={"n": n}, timeout=30,
                             headers={"Connection": "close"}).text
                for n in range(20)
            )
            server.process.send_signal(signal.SIGTERM)
            code, stderr = server.finish(timeout=60)
        assert code == 0, stderr
        assert set(served_by) <= workers
        assert collector.wait_for(23)
        assert events(collector) == {"App Loaded": 1, "Worker Booted": 2, "Request Served": 20}
        served = [m for m in collector.messages if m["event"] == "Request Served"]
        assert sorted(m["properties"]["n"] for m in served) == list(range(20))
        booted = {str(m["properties"]["pid"]) for m in collector.messages
                  if m["event"] == "Worker Booted"}
        assert booted == workers
        assert collector.stats()["duplicates"] == 0
        assert sys.platform.startswith("linux")
