"""Batches cross the network: one keep-alive session, gzip, Basic auth and retries."""

from __future__ import annotations

import base64
import dataclasses
import gzip as gzip_module
import platform
import threading
import time
from collections.abc import Callable

import requests

from ._version import __version__
from .batch import encode_body
from .errors import DeliveryError
from .message import format_timestamp
from .retry import RETRYABLE_STATUSES, RetryPolicy, parse_retry_after
from .stats import DropReason

__all__ = ["Outcome", "Transport"]

USER_AGENT = (
    f"logbridge/{__version__} python-requests/{requests.__version__} "
    f"{platform.python_implementation()}/{platform.python_version()}"
)


@dataclasses.dataclass
class Outcome:
    """What became of some messages: delivered (``error`` is None) or not, and why."""

    items: list[bytes]
    error: DeliveryError | None = None
    reason: DropReason | None = None
    attempts: int = 1


class Transport:
    """Posts batches to one endpoint, retrying what is worth retrying.

    ``deadline`` returns the monotonic time after which no more attempts are made (set
    while the handler is closing), or None; ``interrupt`` wakes a backoff wait early so
    the deadline is seen at once.
    """

    def __init__(
        self,
        endpoint: str,
        write_key: str | None,
        *,
        gzip: bool = True,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
        deadline: Callable[[], float | None] = lambda: None,
        interrupt: threading.Event | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.gzip = gzip
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.retries = 0
        self._session = session or requests.Session()
        self._deadline = deadline
        self._interrupt = interrupt or threading.Event()
        self._headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        if gzip:
            self._headers["Content-Encoding"] = "gzip"
        if write_key:
            token = base64.b64encode(f"{write_key}:".encode()).decode("ascii")
            self._headers["Authorization"] = f"Basic {token}"

    def __repr__(self) -> str:
        return f"Transport(endpoint={self.endpoint!r}, gzip={self.gzip})"

    def close(self) -> None:
        """Close the HTTP session's connections."""
        self._session.close()

    def deliver(self, items: list[bytes]) -> list[Outcome]:
        """Send ``items`` as one batch (or, after a 413, as smaller ones)."""
        outcome = self._send_with_retries(items)
        if outcome.error is not None and outcome.error.status == 413 and len(items) > 1:
            half = len(items) // 2
            return self.deliver(items[:half]) + self.deliver(items[half:])
        if outcome.error is not None and outcome.error.status == 413:
            outcome.reason = DropReason.OVERSIZE
        return [outcome]

    def _send_with_retries(self, items: list[bytes]) -> Outcome:
        attempt = 0
        while True:
            error, retry_after = self._attempt(items)
            if error is None:
                return Outcome(items, attempts=attempt + 1)
            if not error.retryable:
                return Outcome(items, error, DropReason.REJECTED, attempt + 1)
            if attempt >= self.retry.max_retries:
                return Outcome(items, error, DropReason.RETRIES_EXHAUSTED, attempt + 1)
            if not self._wait(self.retry.delay(attempt, retry_after)):
                return Outcome(items, error, DropReason.SHUTDOWN_TIMEOUT, attempt + 1)
            attempt += 1
            self.retries += 1

    def _attempt(self, items: list[bytes]) -> tuple[DeliveryError | None, float | None]:
        body = encode_body(items, format_timestamp(time.time()))
        if self.gzip:
            body = gzip_module.compress(body, compresslevel=6, mtime=0)
        timeout = self.timeout
        limit = self._deadline()
        if limit is not None:
            timeout = min(timeout, max(0.05, limit - time.monotonic()))
        try:
            response = self._session.post(
                self.endpoint, data=body, headers=self._headers, timeout=timeout
            )
        except requests.RequestException as exc:
            # The exception text names the URL only; the write key lives in a header.
            return DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True), None
        status = response.status_code
        if 200 <= status < 300:
            response.close()
            return None, None
        retryable = status in RETRYABLE_STATUSES
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        detail = response.text[:200].strip() if status != 413 else "batch too large"
        response.close()
        return DeliveryError(detail or "request failed", status=status, retryable=retryable), (
            retry_after
        )

    def _wait(self, seconds: float) -> bool:
        """Back off for ``seconds``; False when the deadline will not allow it."""
        end = time.monotonic() + seconds
        while True:
            limit = self._deadline()
            if limit is not None and end > limit:
                return False
            remaining = end - time.monotonic()
            if remaining <= 0:
                return True
            if self._interrupt.is_set():
                time.sleep(remaining)  # the deadline is known now and leaves room
                return True
            self._interrupt.wait(remaining)
