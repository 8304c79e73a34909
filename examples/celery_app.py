"""Celery: configure logbridge in each worker process, flush after every task.

Celery's prefork pool children end with ``os._exit()``: no ``atexit``, so no exit-time
drain. The recipe:

- ``worker_process_init`` (each prefork pool process; the solo pool sends it too) and
  ``worker_init`` (the main worker process, for the threads pool): attach the
  AnalyticsHandler;
- ``task_postrun``: ``logbridge.flush()``, so each task's events are delivered before
  the process takes the next task (or is recycled, or killed).

The producer (the web app calling ``.delay()``) configures logging its own way; in
eager mode (``task_always_eager``) the task and ``task_postrun`` run in it.

Run it with ``python examples/celery_app.py``: it starts a local collector and a real
worker (in a thread, in-memory broker), sends two tasks and prints what arrived. A
worker of your own: ``celery -A examples.celery_app worker`` with ``LOGBRIDGE_WRITE_KEY``
(and ``CELERY_BROKER_URL``) set.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from celery import Celery, signals

import logbridge

app = Celery("logbridge_example", broker=os.environ.get("CELERY_BROKER_URL", "memory://"))
analytics = logbridge.Analytics("analytics")

#: Options for the AnalyticsHandler; the ``LOGBRIDGE_*`` environment supplies the rest.
HANDLER_OPTIONS: dict[str, Any] = {}
FLUSH_TIMEOUT = 5.0


def configure_logging() -> None:
    """Attach an AnalyticsHandler to the ``analytics`` logger (once per process)."""
    log = logging.getLogger("analytics")
    if any(isinstance(h, logbridge.AnalyticsHandler) for h in log.handlers):
        return  # a forked pool process inherits the parent's handler (reset at fork)
    log.addHandler(logbridge.AnalyticsHandler(**HANDLER_OPTIONS))
    log.setLevel(logging.INFO)
    log.propagate = False


@signals.worker_process_init.connect
def _configure_pool_process(**_: Any) -> None:
    configure_logging()


@signals.worker_init.connect
def _configure_worker(**_: Any) -> None:
    configure_logging()


@signals.task_postrun.connect
def _flush_after_task(**_: Any) -> None:
    logbridge.flush(timeout=FLUSH_TIMEOUT)


@app.task(name="shop.complete_order")
def complete_order(order_id: str, user_id: str, revenue: float) -> str:
    """A task that tracks an event for the user it works for."""
    with logbridge.bind(user_id=user_id, context={"task": "shop.complete_order"}):
        analytics.track("Order Completed", properties={"order_id": order_id, "revenue": revenue})
    return order_id


def main() -> int:
    """A worker in a thread (solo pool, in-memory broker) runs two tasks; print what arrived."""
    from celery.contrib.testing.worker import start_worker

    from logbridge.collector import Collector

    with Collector() as collector:
        os.environ["LOGBRIDGE_ENDPOINT"] = collector.endpoint
        app.conf.update(result_backend="cache+memory://", broker_url="memory://")
        with start_worker(app, pool="solo", perform_ping_check=False, loglevel="WARNING"):
            configure_logging()  # this process is the producer too (idempotent)
            for number, (order, user) in enumerate([("o1", "u1"), ("o2", "u2")], start=1):
                result = complete_order.delay(order, user, 9.99 * number).get(timeout=30)
                # task_postrun flushed right after the task; its event is there or arriving.
                arrived = collector.wait_for(number)
                print(f"task {number} returned {result!r}; its event arrived: {arrived}")
        for message in collector.messages:
            print(f"  {message['type']} {message['userId']} {message['event']} "
                  f"{message['properties']} task={message['context'].get('task')}")
        ok = len(collector.messages) == 2 and not collector.invalid
    print("\nOK: both tasks' events were delivered" if ok else "\nFAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
