"""One measured client per process: ``python -m benchmarks.clients '<spec as JSON>'``.

The child builds the client, emits ``n`` events (on ``threads`` threads), and ends in one
of two ways (``finish``):

- ``flush``: it waits until the client says everything is delivered (flush/join), then
  prints one ``RESULT {json}`` line: its start time, caller cost (wall and CPU), CPU
  seconds (the whole process: caller and background threads) and peak RSS (``VmHWM``).
- ``exit``: it prints ``RESULT`` right after the emit loop (with the process CPU time at
  the first emit), then does what a short-lived job does before it returns (see
  :meth:`Adapter.at_exit`) and exits normally; whatever is still undelivered is up to the
  client's own exit handling. The harness reaps the process with ``wait4`` and takes its
  total CPU time and peak RSS from the kernel.

What arrived, and when, is measured by the receiver in its own process.

Every client sends the same event (see :mod:`benchmarks.workload`) with default settings
unless its name says otherwise. The SDKs' own loggers get a ``NullHandler``, as
logbridge's has, so a "queue is full" warning per dropped event costs a log record but
is not written to stderr.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import gzip
import json
import logging
import logging.handlers
import queue
import resource
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from benchmarks.workload import EVENT, WRITE_KEY, Pool, make_pool

Emit = Callable[[str, dict[str, Any]], object]

#: A bound on every wait of a child, so a stuck client cannot hang the run.
FLUSH_TIMEOUT = 300.0


@dataclasses.dataclass(frozen=True)
class Spec:
    """What one child runs."""

    client: str
    n: int
    url: str  # the receiver's base URL, http://127.0.0.1:PORT
    threads: int = 1
    finish: str = "flush"  # "flush": wait for delivery; "exit": end as a short-lived job does


class Adapter:
    """A client under test: ``emit`` one event, ``finish`` = deliver everything and stop.

    ``at_exit`` is what the client's documentation asks a short-lived job to do before it
    returns; by default the same as ``finish``.
    """

    delivers = True

    def __init__(self, spec: Spec) -> None:
        self.spec = spec

    def make_emit(self) -> Emit:
        raise NotImplementedError

    def finish(self) -> dict[str, Any]:
        return {}

    def at_exit(self) -> None:
        self.finish()


def _bench_logger(handler: logging.Handler) -> logging.Logger:
    log = logging.getLogger("bench")
    log.setLevel(logging.INFO)
    log.propagate = False
    log.addHandler(handler)
    return log


class Logbridge(Adapter):
    """``log.info(EVENT, extra={"user_id": ..., **props})`` into a default AnalyticsHandler."""

    def __init__(self, spec: Spec) -> None:
        super().__init__(spec)
        import logbridge

        self.handler = logbridge.AnalyticsHandler(
            endpoint=spec.url + "/v1/batch", write_key=WRITE_KEY
        )
        self.log = _bench_logger(self.handler)

    def make_emit(self) -> Emit:
        info = self.log.info

        def emit(user_id: str, properties: dict[str, Any]) -> None:
            info(EVENT, extra={"user_id": user_id, **properties})

        return emit

    def finish(self) -> dict[str, Any]:
        flushed = self.handler.flush(timeout=FLUSH_TIMEOUT)
        stats = self.handler.stats()
        logging.shutdown()
        return {
            "flushed": flushed,
            "client_dropped": stats.get("dropped_total"),
            "client_stats": stats,
            "max_queue_size": self.handler.options.max_queue_size,
        }

    def at_exit(self) -> None:
        """Nothing: ``logging.shutdown()`` at exit closes the handler, which delivers."""


class NullHandlerBaseline(Adapter):
    """Caller cost only: the same ``log.info`` call into ``logging.NullHandler``."""

    delivers = False

    def __init__(self, spec: Spec) -> None:
        super().__init__(spec)
        self.log = _bench_logger(logging.NullHandler())

    def make_emit(self) -> Emit:
        info = self.log.info

        def emit(user_id: str, properties: dict[str, Any]) -> None:
            info(EVENT, extra={"user_id": user_id, **properties})

        return emit


class QueueHandlerBaseline(NullHandlerBaseline):
    """Caller cost only: stdlib ``QueueHandler`` into a plain ``queue.Queue()``, no listener."""

    def __init__(self, spec: Spec) -> None:
        Adapter.__init__(self, spec)
        self.queue: queue.Queue[logging.LogRecord] = queue.Queue()
        self.log = _bench_logger(logging.handlers.QueueHandler(self.queue))

    def finish(self) -> dict[str, Any]:
        return {"queued": self.queue.qsize()}


class Segment(Adapter):
    """Segment's ``segment-analytics-python``: ``client.track(...)``; defaults, or a big queue."""

    def __init__(self, spec: Spec, *, big_queue: bool = False) -> None:
        super().__init__(spec)
        from segment.analytics.client import Client

        extra = {"max_queue_size": spec.n + 1_000} if big_queue else {}
        self.client = Client(WRITE_KEY, host=spec.url, **extra)

    def make_emit(self) -> Emit:
        track = self.client.track

        def emit(user_id: str, properties: dict[str, Any]) -> None:
            track(user_id=user_id, event=EVENT, properties=properties)

        return emit

    def finish(self) -> dict[str, Any]:
        self.client.flush()
        self.client.join()
        return {"max_queue_size": self.client.queue.maxsize}


class Rudder(Adapter):
    """RudderStack's ``rudder-sdk-python``: data plane URL = the receiver; gzip by default."""

    def __init__(self, spec: Spec) -> None:
        super().__init__(spec)
        from rudderstack.analytics.client import Client

        self.client = Client(WRITE_KEY, host=spec.url)

    def make_emit(self) -> Emit:
        track = self.client.track

        def emit(user_id: str, properties: dict[str, Any]) -> None:
            track(user_id=user_id, event=EVENT, properties=properties)

        return emit

    def finish(self) -> dict[str, Any]:
        self.client.flush()
        self.client.join()
        return {"max_queue_size": self.client.queue.maxsize, "gzip": self.client.gzip}


class PostHog(Adapter):
    """PostHog's ``posthog``: ``capture(...)``, posted to ``POST /batch/`` (ids: ``uuid``)."""

    def __init__(self, spec: Spec) -> None:
        super().__init__(spec)
        from posthog import Posthog

        self.client = Posthog(WRITE_KEY, host=spec.url)

    def make_emit(self) -> Emit:
        capture = self.client.capture

        def emit(user_id: str, properties: dict[str, Any]) -> None:
            capture(EVENT, distinct_id=user_id, properties=properties)

        return emit

    def finish(self) -> dict[str, Any]:
        self.client.flush(timeout_seconds=FLUSH_TIMEOUT)
        self.client.shutdown()
        return {}

    def at_exit(self) -> None:
        """``shutdown()``, as its docs ask for final process cleanup (no drain timeout)."""
        self.client.shutdown()


class OrjsonRequests(Adapter):
    """The throughput baseline: batches of 100, ``orjson.dumps``, gzip, one requests.Session.

    Synchronous, on the caller's thread: its caller cost is its whole sending cost.
    """

    BATCH = 100

    def __init__(self, spec: Spec) -> None:
        super().__init__(spec)
        if spec.threads != 1:
            raise ValueError("orjson_requests is single-threaded")
        import orjson
        import requests

        self.dumps = orjson.dumps
        self.session = requests.Session()
        self.endpoint = spec.url + "/v1/batch"
        token = base64.b64encode(f"{WRITE_KEY}:".encode()).decode("ascii")
        self.headers = {
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "Authorization": f"Basic {token}",
        }
        self.batch: list[dict[str, Any]] = []
        self.failed = 0

    def make_emit(self) -> Emit:
        batch = self.batch
        library = {"name": "bench-baseline", "version": "0"}
        utc = dt.timezone.utc
        now = dt.datetime.now
        uuid4 = uuid.uuid4
        limit = self.BATCH
        post = self._post

        def emit(user_id: str, properties: dict[str, Any]) -> None:
            batch.append(
                {
                    "type": "track",
                    "event": EVENT,
                    "userId": user_id,
                    "properties": properties,
                    "context": {"library": library},
                    "timestamp": now(utc),
                    "messageId": str(uuid4()),
                }
            )
            if len(batch) >= limit:
                post()

        return emit

    def _post(self) -> None:
        body = self.dumps({"batch": self.batch, "sentAt": dt.datetime.now(dt.timezone.utc)})
        data = gzip.compress(body, compresslevel=6, mtime=0)
        response = self.session.post(self.endpoint, data=data, headers=self.headers, timeout=30)
        if response.status_code != 200:
            self.failed += len(self.batch)
        response.close()
        self.batch.clear()

    def finish(self) -> dict[str, Any]:
        if self.batch:
            self._post()
        self.session.close()
        return {"failed": self.failed}


ADAPTERS: dict[str, Callable[[Spec], Adapter]] = {
    "logbridge": Logbridge,
    "segment": Segment,
    "segment_bigq": lambda spec: Segment(spec, big_queue=True),
    "rudderstack": Rudder,
    "posthog": PostHog,
    "null_handler": NullHandlerBaseline,
    "queue_handler": QueueHandlerBaseline,
    "orjson_requests": OrjsonRequests,
}
DELIVERING = frozenset(
    {"logbridge", "segment", "segment_bigq", "rudderstack", "posthog", "orjson_requests"}
)


def _emit_range(emit: Emit, pool: Pool, start: int, stop: int) -> None:
    users = len(pool)
    for index in range(start, stop):
        user_id, properties = pool[index % users]
        emit(user_id, properties)


def _run_threads(emit: Emit, pool: Pool, n: int, threads: int) -> tuple[float, float, float]:
    """Emit ``n`` events on ``threads`` threads; (start, end, summed caller CPU seconds)."""
    bounds = [n * k // threads for k in range(threads + 1)]
    cpu = [0.0] * threads
    barrier = threading.Barrier(threads + 1)

    def work(k: int) -> None:
        barrier.wait()
        started = time.thread_time()
        _emit_range(emit, pool, bounds[k], bounds[k + 1])
        cpu[k] = time.thread_time() - started

    workers = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for worker in workers:
        worker.start()
    barrier.wait()
    start = time.monotonic()
    for worker in workers:
        worker.join()
    return start, time.monotonic(), sum(cpu)


def peak_rss_kib() -> int:
    """``VmHWM`` of this process (peak resident set), in KiB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(spec: Spec, report: Callable[[dict[str, Any]], None]) -> None:
    """Build the client, emit, deliver (or exit); ``report`` gets the measurements."""
    for name in ("segment", "rudderstack", "posthog"):
        logging.getLogger(name).addHandler(logging.NullHandler())
    pool = make_pool()
    adapter = ADAPTERS[spec.client](spec)
    emit = adapter.make_emit()
    cpu_before = _cpu_seconds()
    if spec.threads == 1:
        start = time.monotonic()
        thread_cpu = time.thread_time()
        _emit_range(emit, pool, 0, spec.n)
        emitted = time.monotonic()
        caller_cpu = time.thread_time() - thread_cpu
    else:
        start, emitted, caller_cpu = _run_threads(emit, pool, spec.n, spec.threads)
    result: dict[str, Any] = {
        "spec": dataclasses.asdict(spec),
        "start": start,
        "emitted": emitted,
        "caller_us": (emitted - start) / spec.n * 1e6,
        "caller_cpu_us": caller_cpu / spec.n * 1e6,
        "cpu_before": cpu_before,
    }
    if spec.finish == "exit":
        # The rest (delivery at exit, CPU, RSS) is measured by the harness and the receiver.
        report({**result, "details": {}})
        adapter.at_exit()
        return
    details = adapter.finish()
    done = time.monotonic()
    cpu = _cpu_seconds() - cpu_before
    report(
        {
            **result,
            "done": done,
            "cpu_seconds": cpu,
            "cpu_seconds_total": _cpu_seconds(),
            "peak_rss_kib": peak_rss_kib(),
            "details": details,
        }
    )


def main(argv: list[str]) -> int:
    spec = Spec(**json.loads(argv[1]))

    def report(result: dict[str, Any]) -> None:
        print("RESULT " + json.dumps(result, default=str), flush=True)

    run(spec, report)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
