"""The HTTP base of the network destinations: keep-alive sessions, gzip, auth.

One :meth:`HttpDestination.send` is one POST. Several may run at once, on different
threads (the sender keeps ``max_in_flight`` requests going): each thread gets its own
``requests.Session`` (one keep-alive connection each), since a session is not meant to be
shared by concurrent requests. A ``session`` given by the user is the only one used, so
its requests go one at a time (:attr:`HttpDestination.thread_safe` is False).

Retrying, backing off and giving up are the sender's decisions
(:mod:`logbridge.delivery.sender`); a destination only says what one request gave, as an
:class:`~logbridge.destinations.base.Outcome`.
"""

from __future__ import annotations

import abc
import base64
import contextlib
import dataclasses
import gzip as gzip_module
import platform
import socket
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import requests

from .._version import __version__
from ..errors import DeliveryError
from ..report import logger
from ..urls import is_loopback
from .base import Limits, Outcome

if TYPE_CHECKING:
    from ..options import Options

__all__ = ["Auth", "BasicAuth", "HttpDestination", "HttpSettings", "http_settings"]

USER_AGENT = (
    f"logbridge/{__version__} python-requests/{requests.__version__} "
    f"{platform.python_implementation()}/{platform.python_version()}"
)

#: Statuses worth another try: timeout, rate limit and server errors.
RETRYABLE_STATUSES = frozenset({408, 429}) | frozenset(range(500, 600))
#: The gzip level of request bodies: chosen by measurement on full request bodies of
#: typical events (``python -m benchmarks.gzip_levels``): levels 1-3 cost ~1.8 µs an event,
#: 6 (the usual default) 4.6 µs for 15% fewer bytes; 2 was as fast as 1 and smaller.
GZIP_LEVEL = 2
#: Answers that say the endpoint as a whole is unavailable (rate limited, its gateway
#: cannot reach it), not that a batch is bad: they cost the batch none of its retries.
UNAVAILABLE_STATUSES = frozenset({429, 502, 503, 504})


@dataclasses.dataclass(frozen=True)
class HttpSettings:
    """How requests are made, whatever the service: the requests-level options."""

    gzip: bool = True
    timeout: float = 10.0
    verify: bool | str = True
    proxies: Mapping[str, str] | None = None
    session: Any = None


def http_settings(options: Options) -> HttpSettings:
    """The request options of ``options``."""
    return HttpSettings(
        gzip=options.gzip, timeout=options.timeout, verify=options.verify,
        proxies=options.proxies, session=options.session,
    )


class Auth(Protocol):
    """Credentials for a request: headers, and what to do when the server refuses them."""

    def headers(self) -> Mapping[str, str]:
        """Headers to add to the next request (may fetch a token; may raise DeliveryError)."""
        ...

    def refused(self, status: int) -> bool:
        """The server answered ``status`` (400/401/403): True if fresh credentials may help."""
        ...


class BasicAuth:
    """HTTP Basic with the write key as user name and no password (Segment's form)."""

    __slots__ = ("_headers",)
    thread_safe = True  # fixed headers: any number of requests may use them at once

    def __init__(self, write_key: str) -> None:
        token = base64.b64encode(f"{write_key}:".encode()).decode("ascii")
        self._headers = {"Authorization": f"Basic {token}"}

    def __repr__(self) -> str:
        return "BasicAuth('***')"

    def headers(self) -> Mapping[str, str]:
        return self._headers

    def refused(self, status: int) -> bool:
        return False


class HttpDestination(abc.ABC):
    """POSTs request bodies to one URL on one keep-alive ``requests.Session``.

    Subclasses say how items become a body (:meth:`body`) and what an answer means
    (:meth:`read`); the default reading is by status alone.
    """

    name = "http"
    wire_format = "segment"
    #: A subclass whose send() and read() keep nothing of one request on the destination
    #: sets this, so that several requests may be out at once (``max_in_flight``).
    concurrent_sends = False
    limits = Limits(32 * 1024, 500_000, 2_500)
    content_type = "application/json"

    def __init__(self, url: str, settings: HttpSettings, auth: Auth | None = None) -> None:
        self.url = url
        self.settings = settings
        self.timeout = settings.timeout
        self.auth = auth
        self._own_session = settings.session is None
        self._session: Any = settings.session or requests.Session()
        #: Whether :meth:`send` may run on several threads at once: the class says so
        #: (:attr:`concurrent_sends`), the sessions are ours, the credentials can be used
        #: concurrently.
        self.thread_safe = self.concurrent_sends and self._own_session and (
            auth is None or bool(getattr(auth, "thread_safe", False))
        )
        self._local = threading.local()  # each sending thread's session
        self._sessions: list[Any] = []  # every session made for a thread, to close them
        self._sessions_lock = threading.Lock()
        self._request_options = request_options(settings)
        if self._own_session:
            self._read_environment_once()
        self._headers = {"Content-Type": self.content_type, "User-Agent": USER_AGENT}
        if settings.gzip:
            self._headers["Content-Encoding"] = "gzip"
        if urlsplit(url).scheme == "http" and not is_loopback(url):
            logger.warning(
                "logbridge: sending to %s over plain http: the key and events travel "
                "unencrypted; use https",
                url,
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self.url!r}, gzip={self.settings.gzip})"

    # What a subclass says ------------------------------------------------------------

    def map_message(self, message: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
        """A spec message is sent as it is."""
        return (message,)

    @abc.abstractmethod
    def body(self, items: Sequence[bytes]) -> bytes:
        """The request body for ``items``."""

    def read(self, status: int, headers: Mapping[str, str], text: str, count: int) -> Outcome:
        """What an answer with ``status`` means for the ``count`` items sent."""
        return outcome_for_status(status, headers, text)

    # The request ---------------------------------------------------------------------

    def send(self, items: Sequence[bytes], *, timeout: float) -> Outcome:
        """POST ``items`` once; never raises."""
        body = self.body(items)
        if self.settings.gzip:
            body = gzip_module.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
        try:
            headers = self._request_headers()
        except DeliveryError as exc:  # e.g. the OAuth token endpoint failed
            return Outcome(exc, retry_after=exc.retry_after, unavailable=True)
        outcome = self._post(body, headers, timeout, len(items))
        error = outcome.error
        if (
            error is not None and error.status in (400, 401, 403)
            and self.auth is not None and self.auth.refused(error.status)
        ):
            try:
                headers = self._request_headers()
            except DeliveryError as exc:
                return Outcome(exc, retry_after=exc.retry_after, unavailable=True)
            outcome = self._post(body, headers, timeout, len(items))
        return outcome

    def _request_headers(self) -> Mapping[str, str]:
        if self.auth is None:
            return self._headers
        return {**self._headers, **self.auth.headers()}

    def _post(
        self, body: bytes, headers: Mapping[str, str], timeout: float, count: int
    ) -> Outcome:
        try:
            response = self._thread_session().post(
                self.url, data=body, headers=headers, timeout=timeout, **self._request_options
            )
        except requests.RequestException as exc:
            # The exception text names the URL only; keys live in headers or the body.
            error = DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True)
            # A TLS failure (a bad certificate) will not pass by waiting: the batch pays.
            unavailable = not isinstance(exc, requests.exceptions.SSLError)
            return Outcome(error, wire_bytes=len(body), unavailable=unavailable)
        except Exception as exc:  # anything else from the HTTP stack: a failed attempt
            error = DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True)
            return Outcome(error, wire_bytes=len(body))
        try:
            status = response.status_code
            text = "" if 200 <= status < 300 and not self.reads_success_body else response.text
            outcome = self.read(status, response.headers, text, count)
        finally:
            response.close()
        return dataclasses.replace(outcome, wire_bytes=len(body))

    #: Whether :meth:`read` needs the body of a 2xx answer (Segment's doesn't).
    reads_success_body = False

    def _thread_session(self) -> Any:
        """This thread's session: the user's, or one of ours per sending thread."""
        if not self._own_session:
            return self._session
        session = getattr(self._local, "session", None)
        if session is None:
            with self._sessions_lock:
                # The first sending thread takes the session made (and configured) at
                # construction; the others get their own.
                if self._session not in self._sessions:
                    session = self._session
                else:
                    session = requests.Session()
                    session.trust_env = False  # the environment was read once, at start
                self._sessions.append(session)
            self._local.session = session
        return session

    # Lifecycle -----------------------------------------------------------------------

    def _read_environment_once(self) -> None:
        """Resolve the environment's proxies and CA bundle now, not on every request.

        requests reads ``HTTPS_PROXY``/``NO_PROXY``, ``REQUESTS_CA_BUNDLE`` and ``~/.netrc``
        for each request when the session trusts the environment; for a sender posting
        many batches to one URL that is a large share of the work. They are resolved once
        for the URL, and explicit ``proxies``/``verify`` still win. (No netrc: the key is
        the authorisation.)
        """
        settings = self._session.merge_environment_settings(
            self.url, self._request_options.get("proxies", {}), None,
            self._request_options["verify"], None,
        )
        self._session.trust_env = False
        self._request_options = {
            "verify": settings["verify"],
            "proxies": settings["proxies"],
            "cert": settings["cert"],
        }

    def warm_up(self) -> None:
        """Resolve the host once, early, on the sending thread.

        Under gevent, name resolution runs on a native thread pool, started on first use;
        Python 3.12+ starts no thread at interpreter exit, when the last batch may leave.
        """
        parts = urlsplit(self.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        with contextlib.suppress(Exception):
            socket.getaddrinfo(parts.hostname or "", port, type=socket.SOCK_STREAM)

    def reset_after_fork(self) -> None:
        """Start new sessions: connections inherited from the parent are not ours."""
        if self._own_session:
            self._session = requests.Session()
            self._session.trust_env = False
            self._local = threading.local()
            self._sessions = []
            self._sessions_lock = threading.Lock()
        reset_auth = getattr(self.auth, "reset_after_fork", None)  # OAuth's token session
        if reset_auth is not None:
            reset_auth()

    def close(self) -> None:
        """Close the connections of the sessions this destination made itself."""
        if self._own_session:
            with self._sessions_lock:
                sessions, self._sessions = [self._session, *self._sessions], []
            for session in {id(s): s for s in sessions}.values():
                session.close()
        close_auth = getattr(self.auth, "close", None)
        if close_auth is not None:
            close_auth()


def request_options(settings: HttpSettings) -> dict[str, Any]:
    """The keyword arguments of ``session.post`` that ``settings`` ask for (TLS, proxies)."""
    options: dict[str, Any] = {"verify": settings.verify}
    if settings.proxies:
        options["proxies"] = dict(settings.proxies)
    return options


def outcome_for_status(status: int, headers: Mapping[str, str], text: str) -> Outcome:
    """The generic reading of an answer: 2xx delivered; otherwise by status."""
    from ..delivery.retry import parse_retry_after

    if 200 <= status < 300:
        return Outcome()
    retry_after = parse_retry_after(headers.get("Retry-After"))
    detail = "request too large" if status == 413 else text[:200].strip()
    error = DeliveryError(
        detail or "request failed", status=status, retryable=status in RETRYABLE_STATUSES
    )
    return Outcome(error, retry_after=retry_after, unavailable=status in UNAVAILABLE_STATUSES)
