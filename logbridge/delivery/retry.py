"""When to retry a request and how long to wait: a small value object."""

from __future__ import annotations

import dataclasses
import email.utils
import random
import time

__all__ = ["RETRYABLE_STATUSES", "UNAVAILABLE_STATUSES", "RetryPolicy", "parse_retry_after"]

#: Statuses worth another try: timeout, rate limit and server errors.
RETRYABLE_STATUSES = frozenset({408, 429}) | frozenset(range(500, 600))
#: Answers that say the endpoint as a whole is unavailable (rate limited, its gateway
#: cannot reach it), not that a batch is bad: they cost the batch none of its retries.
UNAVAILABLE_STATUSES = frozenset({429, 502, 503, 504})

DEFAULT_BACKOFF_FACTOR = 0.5
DEFAULT_BACKOFF_MAX = 30.0


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, capped, honouring ``Retry-After``.

    Attempt ``n`` (0-based) waits a random time in ``[0, min(backoff_max,
    backoff_factor * 2**n)]``; a ``Retry-After`` from the server is a floor, clamped to
    ``backoff_max`` so a hostile header cannot park the sender.
    """

    max_retries: int = 10
    backoff_factor: float = DEFAULT_BACKOFF_FACTOR
    backoff_max: float = DEFAULT_BACKOFF_MAX
    budget: float = 600.0
    """Seconds after a batch's first failure past which it is not retried again."""

    def gives_up(self, attempts: int, first_attempt: float, now: float) -> bool:
        """Whether a batch that failed ``attempts`` times since ``first_attempt`` is given up.

        ``attempts`` counts the failures charged to the batch: the first try and its
        retries, so a batch gets ``max_retries`` retries after its first failure.
        """
        return attempts > self.max_retries or now - first_attempt > self.budget

    def delay(
        self, attempt: int, retry_after: float | None = None, *, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait before retry number ``attempt + 1``."""
        ceiling = min(self.backoff_max, self.backoff_factor * (2 ** min(attempt, 32)))
        wait = (rng or random).uniform(0.0, ceiling)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.backoff_max))
        return wait


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))
