"""Fault injection for the collector: which batch requests fail, and how.

:class:`Faults` is the immutable policy (everything off by default); :class:`FaultInjector`
applies it to a stream of batch requests, thread-safely and, given a ``seed``,
deterministically.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Final, Literal

__all__ = ["FAULT_KINDS", "FaultInjector", "FaultKind", "Faults"]

#: What happened to a request hit by a fault: the fixed ``status`` answer, a random
#: ``error`` (500) or a connection ``reset`` without any response.
FaultKind = Literal["status", "error", "reset"]
FAULT_KINDS: Final[tuple[FaultKind, ...]] = ("status", "error", "reset")


@dataclass(frozen=True)
class Faults:
    """A fault-injection policy for batch requests; all faults are off by default."""

    #: Fraction of batch requests answered ``500``.
    fail_rate: float = 0.0
    #: Answer the first ``status_count`` batch requests with this status (e.g. 429, 503).
    status: int | None = None
    #: How many batch requests get ``status``.
    status_count: int = 1
    #: ``Retry-After`` header value sent with 429 and 503 answers.
    retry_after: str | None = None
    #: Seconds to wait before answering each batch request (the request still succeeds).
    latency: float = 0.0
    #: Fraction of batch requests whose connection is reset without a response.
    reset_rate: float = 0.0
    #: Seconds after ``start()`` during which connections are refused.
    down_for: float = 0.0
    #: Seed for the random choices, for reproducible runs.
    seed: int | None = None
    #: Amplitude: the first ``throttle_count`` requests holding events of these user or
    #: device ids are answered 429 with those ids in ``throttled_users``/``_devices``.
    throttle_ids: frozenset[str] = frozenset()
    throttle_count: int = 1
    #: Amplitude: user or device ids over the daily quota (429 ``exceeded_daily_quota_*``).
    over_quota_ids: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        """Reject values that make no sense, with a message naming the field."""
        for name in ("throttle_ids", "over_quota_ids"):  # any iterable of ids
            object.__setattr__(self, name, frozenset(getattr(self, name)))
        for name in ("fail_rate", "reset_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value!r}")
        if self.fail_rate + self.reset_rate > 1.0:
            raise ValueError("fail_rate + reset_rate must not exceed 1")
        for name in ("latency", "down_for"):
            value = getattr(self, name)
            if not value >= 0.0:  # also rejects NaN
                raise ValueError(f"{name} must be >= 0 seconds, got {value!r}")
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError(f"status must be an HTTP status code, got {self.status!r}")
        if self.status_count < 0 or self.throttle_count < 0:
            raise ValueError("status_count and throttle_count must be >= 0")
        if self.retry_after is not None and not _is_header_safe(self.retry_after):
            raise ValueError("retry_after must be a printable single-line header value")

    @property
    def active(self) -> bool:
        """Whether any fault is switched on."""
        return bool(
            self.fail_rate
            or self.reset_rate
            or self.latency
            or self.down_for
            or (self.status is not None and self.status_count)
            or (self.throttle_ids and self.throttle_count)
            or self.over_quota_ids
        )

    def describe(self) -> str:
        """A short human-readable summary of the active faults ("none" when off)."""
        parts: list[str] = []
        if self.status is not None and self.status_count:
            part = f"status {self.status} x{self.status_count}"
            parts.append(part + (f" (Retry-After: {self.retry_after})" if self.retry_after else ""))
        if self.fail_rate:
            parts.append(f"fail-rate {self.fail_rate:g}")
        if self.reset_rate:
            parts.append(f"reset-rate {self.reset_rate:g}")
        if self.latency:
            parts.append(f"latency {self.latency:g}s")
        if self.down_for:
            parts.append(f"down for {self.down_for:g}s")
        if self.throttle_ids and self.throttle_count:
            parts.append(f"throttle {len(self.throttle_ids)} id(s) x{self.throttle_count}")
        if self.over_quota_ids:
            parts.append(f"over daily quota: {len(self.over_quota_ids)} id(s)")
        if parts and self.seed is not None:
            parts.append(f"seed {self.seed}")
        return ", ".join(parts) or "none"


class FaultInjector:
    """Decides, request by request, which fault (if any) a batch request gets."""

    def __init__(self, faults: Faults) -> None:
        """Start applying ``faults`` from the first request on."""
        self.faults = faults
        self._lock = threading.Lock()
        self._random = random.Random(faults.seed)
        self._status_left = faults.status_count if faults.status is not None else 0
        self._throttles_left = faults.throttle_count if faults.throttle_ids else 0

    def decide(self) -> FaultKind | None:
        """The fault for the next batch request, or None to serve it normally."""
        faults = self.faults
        if not (self._status_left or faults.fail_rate or faults.reset_rate):
            return None
        with self._lock:
            if self._status_left:
                self._status_left -= 1
                return "status"
            # One draw per request, split into [reset | error | ok] bands, so a seeded run
            # gives the same sequence whatever the rates.
            draw = self._random.random()
        if draw < faults.reset_rate:
            return "reset"
        if draw < faults.reset_rate + faults.fail_rate:
            return "error"
        return None

    def take_throttle(self) -> bool:
        """Whether to throttle this request (Amplitude), counting it against ``throttle_count``."""
        with self._lock:
            if self._throttles_left <= 0:
                return False
            self._throttles_left -= 1
            return True

    def response_status(self, kind: FaultKind) -> int:
        """The HTTP status to answer a request hit by ``kind`` (not used for resets)."""
        if kind == "status" and self.faults.status is not None:
            return self.faults.status
        return 500

    def retry_after(self, status: int) -> str | None:
        """The ``Retry-After`` header value to send with ``status``, if any."""
        return self.faults.retry_after if status in (429, 503) else None


def _is_header_safe(value: str) -> bool:
    """Whether ``value`` can go into an HTTP header without breaking the response."""
    return bool(value) and value.isprintable() and value.isascii()
