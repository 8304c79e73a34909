"""Batches cross the network: one keep-alive session, gzip, Basic auth; one attempt a call.

Retrying, backing off and giving up are the sender's decisions (``sender.py``); the
transport only says what one attempt gave: delivered, or an error that is or is not
worth retrying, with the server's ``Retry-After``.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import gzip as gzip_module
import platform
import socket
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

from ._version import __version__
from .batch import encode_body
from .errors import DeliveryError
from .message import format_timestamp
from .options import is_loopback
from .report import logger
from .retry import RETRYABLE_STATUSES, UNAVAILABLE_STATUSES, parse_retry_after

__all__ = ["Attempt", "Transport"]

USER_AGENT = (
    f"logbridge/{__version__} python-requests/{requests.__version__} "
    f"{platform.python_implementation()}/{platform.python_version()}"
)


@dataclasses.dataclass(frozen=True)
class Attempt:
    """What one POST gave: ``error`` is None when the batch was accepted.

    ``unavailable`` is true when the failure says nothing about the batch: no answer
    at all (refused, reset, timed out) or a 429/502/503/504.
    """

    error: DeliveryError | None = None
    retry_after: float | None = None
    wire_bytes: int = 0
    unavailable: bool = False


class Transport:
    """Posts batch bodies to one endpoint on one keep-alive ``requests.Session``."""

    def __init__(
        self,
        endpoint: str,
        write_key: str | None,
        *,
        gzip: bool = True,
        timeout: float = 10.0,
        session: requests.Session | None = None,
        verify: bool | str = True,
        proxies: Mapping[str, str] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.gzip = gzip
        self.timeout = timeout
        self._own_session = session is None
        self._session: Any = session or requests.Session()
        self._request_options: dict[str, Any] = {"verify": verify}
        if proxies:
            self._request_options["proxies"] = dict(proxies)
        if self._own_session:
            self._read_environment_once()
        self._headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        if gzip:
            self._headers["Content-Encoding"] = "gzip"
        if write_key:
            token = base64.b64encode(f"{write_key}:".encode()).decode("ascii")
            self._headers["Authorization"] = f"Basic {token}"
        if urlsplit(endpoint).scheme == "http" and not is_loopback(endpoint):
            logger.warning(
                "logbridge: sending to %s over plain http: the write key and events travel "
                "unencrypted; use https",
                endpoint,
            )

    def _read_environment_once(self) -> None:
        """Resolve the environment's proxies and CA bundle now, not on every request.

        requests reads ``HTTPS_PROXY``/``NO_PROXY``, ``REQUESTS_CA_BUNDLE`` and ``~/.netrc``
        for each request when the session trusts the environment; for a sender posting
        many batches to one URL that is a large share of the work. They are resolved once
        for the endpoint, and explicit ``proxies``/``verify`` still win. (No netrc: the
        write key is the authorisation.)
        """
        settings = self._session.merge_environment_settings(
            self.endpoint,
            self._request_options.get("proxies", {}),
            None,
            self._request_options["verify"],
            None,
        )
        self._session.trust_env = False
        self._request_options = {
            "verify": settings["verify"],
            "proxies": settings["proxies"],
            "cert": settings["cert"],
        }

    def __repr__(self) -> str:
        return f"Transport(endpoint={self.endpoint!r}, gzip={self.gzip})"

    def close(self) -> None:
        """Close the connections of a session this transport made itself."""
        if self._own_session:
            self._session.close()

    def reset_after_fork(self) -> None:
        """Start a new session: connections inherited from the parent are not ours."""
        if self._own_session:
            self._session = requests.Session()
            self._session.trust_env = False

    def warm_up(self) -> None:
        """Resolve the endpoint's host once, early, on the sending thread.

        Under gevent, name resolution runs on a native thread pool, started on first use;
        Python 3.12+ starts no thread at interpreter exit, when the last batch may leave.
        """
        parts = urlsplit(self.endpoint)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        with contextlib.suppress(Exception):
            socket.getaddrinfo(parts.hostname or "", port, type=socket.SOCK_STREAM)

    def post(self, items: list[bytes], *, timeout: float | None = None) -> Attempt:
        """Send ``items`` as one batch, once."""
        body = encode_body(items, format_timestamp(time.time()))
        if self.gzip:
            body = gzip_module.compress(body, compresslevel=6, mtime=0)
        try:
            response = self._session.post(
                self.endpoint,
                data=body,
                headers=self._headers,
                timeout=self.timeout if timeout is None else timeout,
                **self._request_options,
            )
        except requests.RequestException as exc:
            # The exception text names the URL only; the write key lives in a header.
            error = DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True)
            # A TLS failure (a bad certificate) will not pass by waiting: the batch pays.
            unavailable = not isinstance(exc, requests.exceptions.SSLError)
            return Attempt(error, wire_bytes=len(body), unavailable=unavailable)
        except Exception as exc:  # anything else from the HTTP stack: a failed attempt
            error = DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True)
            return Attempt(error, wire_bytes=len(body))
        status = response.status_code
        try:
            if 200 <= status < 300:
                return Attempt(wire_bytes=len(body))
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            detail = "batch too large" if status == 413 else response.text[:200].strip()
        finally:
            response.close()
        error = DeliveryError(
            detail or "request failed", status=status, retryable=status in RETRYABLE_STATUSES
        )
        return Attempt(error, retry_after, len(body), status in UNAVAILABLE_STATUSES)
