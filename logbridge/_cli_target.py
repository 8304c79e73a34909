"""One request to a destination, and what its answer means in plain words.

``send``, ``check --send-test`` and ``replay`` reach the far end the way the handler
does (its options, validated by the same code), but one request at a time, on the
command's own thread, so the command can say exactly what the server answered.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ._cli_common import CommandError, flag_words
from .destinations.base import Destination, Outcome
from .destinations.oauth import TokenError
from .destinations.registry import build_destination
from .encoding import Encoder
from .errors import ConfigurationError, DeliveryError, InvalidEvent
from .options import OPTION_NAMES, Options, plain, unknown_options_message

__all__ = ["Answer", "Target", "check_option_names", "describe"]


@dataclasses.dataclass(frozen=True)
class Answer:
    """What one request gave: the destination's :class:`Outcome`, read for a person."""

    outcome: Outcome

    @property
    def error(self) -> DeliveryError | None:
        """The request's error (None: accepted, but see :attr:`refused`)."""
        return self.outcome.error

    @property
    def ok(self) -> bool:
        """Whether every item was accepted."""
        return self.outcome.error is None and not self.outcome.refused

    @property
    def status(self) -> int | None:
        """The HTTP status of a refusal; None when delivered or when nothing answered."""
        return self.error.status if self.error is not None else None

    @property
    def retry_after(self) -> float | None:
        """Seconds the service asked to wait, if it did."""
        return self.outcome.retry_after

    @property
    def refused(self) -> Mapping[int, str]:
        """Items the service refused, by index, with its reason."""
        return self.outcome.refused

    @property
    def deferred(self) -> Mapping[int, float]:
        """Items the service held back, by index, with the seconds to wait."""
        return self.outcome.deferred


def check_option_names(names: Iterable[str]) -> None:
    """Raise CommandError for unknown option names, each with the closest real one."""
    unknown = sorted(set(names) - OPTION_NAMES)
    if unknown:
        raise CommandError(unknown_options_message(unknown))


class Target:
    """The destination the handler options ``kwargs`` name, ready for single requests.

    Raises :class:`CommandError` (in the command line's words) for bad options.
    """

    def __init__(self, kwargs: Mapping[str, Any], *, environ: Mapping[str, str] | None = None):
        check_option_names(kwargs)  # names given with --option or in --config
        try:
            self.options = Options.from_kwargs(**plain(dict(kwargs)), environ=environ)
            self.destination: Destination = build_destination(self.options)
        except ConfigurationError as exc:
            raise CommandError(flag_words(str(exc))) from None
        self.name = self.destination.name
        #: Where messages go, for the messages: a URL, or the local sink's name.
        self.url: str = self.options.endpoint or f"the {self.name} destination"
        self._encoder = Encoder()

    def __repr__(self) -> str:
        return f"Target({self.name}, {self.url!r})"

    @property
    def timeout(self) -> float:
        """Seconds one request may take (the ``timeout`` option)."""
        return self.options.timeout

    @property
    def limits(self) -> Any:
        """The destination's :class:`~logbridge.destinations.base.Limits`."""
        return self.destination.limits

    def items(self, message: Mapping[str, Any]) -> list[bytes]:
        """A spec message as the serialised items the service takes; InvalidEvent if none.

        A message already in the service's own shape (an Amplitude event read back from
        its dead letter) is sent as it is.
        """
        if self.destination.wire_format != "segment" and "type" not in message:
            parts: Sequence[Mapping[str, Any]] = [message]
        else:
            parts = self.destination.map_message(message)
        items = [self._encoder.encode(part) for part in parts]
        limit = self.destination.limits.max_message_bytes
        for item in items:
            if len(item) > limit:
                raise InvalidEvent(
                    f"{len(item)} bytes serialised, over the {limit}-byte limit of {self.name}"
                )
        return items

    def send(self, items: Sequence[bytes], *, timeout: float | None = None) -> Answer:
        """One request of ``items``; never raises."""
        return Answer(self.destination.send(list(items), timeout=timeout or self.timeout))

    def close(self) -> None:
        """Close the connections (and files of a local sink)."""
        self.destination.close()


def describe(answer: Answer, url: str) -> str:
    """The outcome in plain words: ``delivered``, ``401: the write key was rejected``..."""
    error = answer.error
    if error is None:
        refused = answer.outcome.refused
        if refused:
            return "refused: " + "; ".join(sorted(set(refused.values())))
        return "delivered"
    status = error.status
    if isinstance(error, TokenError):  # OAuth: the token endpoint, not the service, said no
        return f"no OAuth token: {error.reason}" + (f" (HTTP {status})" if status else "")
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
