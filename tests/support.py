"""Helpers shared by the tests: loggers wired to a handler, and Python subprocesses."""

from __future__ import annotations

import itertools
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import logbridge

ROOT = Path(__file__).resolve().parent.parent
_names = itertools.count()


@contextmanager
def analytics_logger(
    endpoint: str, **options: object
) -> Iterator[tuple[logging.Logger, logbridge.AnalyticsHandler]]:
    """A fresh, non-propagating logger at INFO feeding a new AnalyticsHandler; closed after."""
    options.setdefault("write_key", "test-key")
    handler = logbridge.AnalyticsHandler(endpoint=endpoint, **options)
    logger = logging.getLogger(f"analytics.test{next(_names)}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(handler)
    try:
        yield logger, handler
    finally:
        logger.removeHandler(handler)
        handler.close()


def run_python(
    code: str, *, env: Mapping[str, str] | None = None, timeout: float = 60, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (this one's executable); return the finished process."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("LOGBRIDGE_")}
    child_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env,
        cwd=str(cwd or ROOT),
        check=False,
    )


def wait_until(predicate: Callable[[], object], timeout: float = 10.0) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass; its last verdict."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            return bool(predicate())
        pause.wait(0.005)
    return True
