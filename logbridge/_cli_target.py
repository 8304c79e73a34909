"""One request to a destination, and what its answer means in plain words.

``send``, ``check --send-test`` and ``replay`` reach the far end the way the handler
does (its options, validated by the same code), but one request at a time, on the
command's own thread, so the command can say exactly what the server answered.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ._cli_common import CommandError, flag_words
from .convert import encoded_message
from .errors import ConfigurationError, DeliveryError
from .handler import check_option_names
from .options import Options, plain
from .transport import Transport

__all__ = ["Answer", "Target", "describe"]


@dataclasses.dataclass(frozen=True)
class Answer:
    """What one request gave: delivered, or an error with the status (None: no answer)."""

    error: DeliveryError | None = None
    retry_after: float | None = None
    unavailable: bool = False

    @property
    def ok(self) -> bool:
        """Whether the request was accepted."""
        return self.error is None

    @property
    def status(self) -> int | None:
        """The HTTP status of a refusal; None when delivered or when nothing answered."""
        return self.error.status if self.error is not None else None


class Target:
    """The destination the handler options ``kwargs`` name, ready for single requests.

    Raises :class:`CommandError` (in the command line's words) for bad options.
    """

    def __init__(self, kwargs: Mapping[str, Any], *, environ: Mapping[str, str] | None = None):
        try:
            check_option_names(kwargs)
        except ConfigurationError as exc:  # names given with --option or in --config
            raise CommandError(str(exc)) from None
        try:
            self.options = Options.from_kwargs(**plain(dict(kwargs)), environ=environ)
        except ConfigurationError as exc:
            raise CommandError(flag_words(str(exc))) from None
        assert self.options.endpoint is not None
        self.url: str = self.options.endpoint
        self.name = "segment"
        self._transport = Transport(
            self.url, self.options.write_key, gzip=self.options.gzip,
            timeout=self.options.timeout, verify=self.options.verify,
            proxies=self.options.proxies, session=self.options.session,
        )

    def __repr__(self) -> str:
        return f"Target({self.name}, {self.url!r})"

    @property
    def timeout(self) -> float:
        """Seconds one request may take (the ``timeout`` option)."""
        return self.options.timeout

    def items(self, message: Mapping[str, Any]) -> list[bytes]:
        """``message`` (a spec message) as the serialised items the service takes."""
        return [encoded_message(message)]

    def send(self, items: Sequence[bytes], *, timeout: float | None = None) -> Answer:
        """One request of ``items``; never raises."""
        attempt = self._transport.post(list(items), timeout=timeout)
        return Answer(attempt.error, attempt.retry_after, attempt.unavailable)

    def close(self) -> None:
        """Close the connections."""
        self._transport.close()


def describe(answer: Answer, url: str) -> str:
    """The outcome in plain words: ``delivered``, ``401: the write key was rejected``..."""
    error = answer.error
    if error is None:
        return "delivered"
    status = error.status
    if status is None:
        return f"could not connect to {url}: {_connection_problem(error.reason)}"
    if status == 401:
        return "401: the write key was rejected"
    if status == 403:
        return f"403: the write key may not send here ({error.reason})"
    return f"{status}: {error.reason}"


def _connection_problem(reason: str) -> str:
    """The useful end of a requests exception text: ``connection refused``, ``timed out``."""
    errno = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", reason)
    if errno:
        return errno.group(1).strip().rstrip(".").lower()
    if "Timeout" in reason.split(":", 1)[0]:
        return "no answer in time (timed out)"
    if reason.startswith("SSLError"):
        return "the TLS handshake failed (" + reason.split(":", 1)[-1].strip()[:160] + ")"
    return reason[:200]
