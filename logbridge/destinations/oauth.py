"""OAuth 2 for Segment's tracking API (and Dreamdata's): a signed assertion buys a bearer token.

The flow is Segment's (https://segment.com/docs/connections/oauth/), as its Node library
runs it (analytics-next ``packages/node/src/lib/token-manager.ts``):

1. a client assertion, a JWT signed RS256 with the private key whose public half was
   uploaded: header ``kid`` and ``typ`` JWT; claims ``iss`` = ``sub`` = the client (app) id,
   ``aud`` = the authorisation server, ``iat`` 5 s in the past, ``exp`` under a minute
   after, ``jti`` a fresh uuid4;
2. POSTed form-encoded to ``{auth_server}/token`` with ``grant_type=client_credentials``,
   ``client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`` and the
   scope (``tracking_api:write``);
3. the answer's ``access_token`` is sent as ``Authorization: Bearer`` until half of its
   ``expires_in`` has passed, then a new one is fetched. A 400/401/403 from the API clears it
   and the request is tried once more with a fresh token.

Tokens are fetched on the sender's thread, when a request needs one; the optional extra
``logbridge[oauth]`` (PyJWT with cryptography) signs the assertions.
"""

from __future__ import annotations

import email.utils
import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import requests

from ..errors import DeliveryError
from ..report import logger
from .http import USER_AGENT, HttpSettings, request_options
from .oauth_options import (
    DEFAULT_AUTH_SERVER,
    DEFAULT_SCOPE,
    EU_AUTH_SERVER,
    OAuthOptions,
    load_private_key,
    read_oauth_options,
)

__all__ = [
    "DEFAULT_AUTH_SERVER",
    "DEFAULT_SCOPE",
    "EU_AUTH_SERVER",
    "OAuth",
    "OAuthOptions",
    "TokenError",
    "load_private_key",
]

GRANT_TYPE = "client_credentials"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

#: ``iat`` is set this far in the past, for clocks a little ahead of the server's.
ISSUED_AT_BACKDATE = 5
#: ``exp`` - ``iat``: Segment expects an assertion "valid only for a short duration under a
#: minute" after it is issued; analytics-node signs ``iat`` = now - 5 s, ``exp`` = now + 55 s.
ASSERTION_LIFETIME = 60
#: A 429 from the token endpoint waits its Retry-After, clamped as analytics-node does.
MAX_RATE_LIMIT_WAIT = 300.0
#: After a failed early refresh (the token still works), how long before trying again.
REFRESH_RETRY = 30.0
#: Statuses of the tracking API that may mean "this token is no longer good".
REFUSED_STATUSES = frozenset({400, 401, 403})
#: Token-endpoint answers that say the credentials are wrong: waiting will not help.
CREDENTIALS_REFUSED = frozenset({400, 401, 403, 415})
#: What Segment's token server says when an assertion's iat/exp disagree with its clock.
CLOCK_OFF_DESCRIPTIONS = frozenset({"Token is expired", "Token used before issued"})


class TokenError(DeliveryError):
    """The token endpoint did not give a token; ``retry_after`` when it asked to wait.

    ``clock_off`` says the server found the assertion's times wrong (our clock is off).
    """

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        retryable: bool = True,
        retry_after: float | None = None,
        clock_off: bool = False,
    ) -> None:
        super().__init__(reason, status=status, retryable=retryable, retry_after=retry_after)
        self.clock_off = clock_off


class OAuth:
    """Bearer tokens from an OAuth 2 client-credentials grant with a signed JWT assertion.

    Implements the :class:`~logbridge.destinations.http.Auth` protocol. Build it with
    :meth:`from_options`, which checks the options and the key at start-up::

        auth = OAuth.from_options(options)   # None when no oauth_* option is set
    """

    __slots__ = (
        "_expires_at",
        "_key",
        "_lock",
        "_monotonic",
        "_own_session",
        "_refresh_at",
        "_request_options",
        "_session",
        "_skew",
        "_token",
        "auth_server",
        "client_id",
        "key_id",
        "scope",
        "timeout",
        "token_url",
    )

    def __init__(
        self,
        client_id: str,
        private_key: Any,
        key_id: str,
        *,
        auth_server: str = DEFAULT_AUTH_SERVER,
        scope: str = DEFAULT_SCOPE,
        settings: HttpSettings | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``private_key`` is a loaded RSA key (see :func:`.oauth_options.load_private_key`)."""
        settings = settings or HttpSettings()
        self.client_id = client_id
        self.key_id = key_id
        self.auth_server = auth_server.rstrip("/")
        self.token_url = f"{self.auth_server}/token"
        self.scope = scope
        self.timeout = settings.timeout
        self._key = private_key
        self._own_session = settings.session is None
        self._session: Any = settings.session or requests.Session()
        self._request_options = request_options(settings)
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0
        self._expires_at = 0.0
        self._skew = 0.0  # our clock minus the token server's, from its Date header

    def __repr__(self) -> str:
        return (
            f"OAuth(client_id={self.client_id!r}, key_id={self.key_id!r}, "
            f"auth_server={self.auth_server!r}, scope={self.scope!r}, key='***')"
        )

    @classmethod
    def from_options(
        cls, options: OAuthOptions, settings: HttpSettings | None = None
    ) -> OAuth | None:
        """The OAuth of ``options``, or None when no ``oauth_*`` identity is set.

        Raises :class:`~logbridge.errors.ConfigurationError`, naming the option, when the
        client id, key or key id is missing or unusable, or the ``oauth`` extra is absent.
        """
        oauth = read_oauth_options(options)
        if oauth is None:
            return None
        if settings is None:
            settings = HttpSettings(
                timeout=options.timeout, verify=options.verify,
                proxies=options.proxies, session=options.session,
            )
        return cls(
            oauth.client_id, oauth.private_key, oauth.key_id,
            auth_server=oauth.auth_server, scope=oauth.scope, settings=settings,
        )

    # The Auth protocol ---------------------------------------------------------------

    def headers(self) -> Mapping[str, str]:
        """``Authorization: Bearer <token>``, fetching a token first if needed.

        Raises :class:`TokenError` when no token can be had.
        """
        with self._lock:
            now = self._monotonic()
            if self._token is None or now >= self._expires_at:
                self._token = None
                self._fetch()
            elif now >= self._refresh_at:
                try:
                    self._fetch()
                except DeliveryError as exc:  # the current token still works for a while
                    self._refresh_at = now + min(REFRESH_RETRY, (self._expires_at - now) / 2)
                    logger.warning("logbridge: OAuth token refresh failed, will retry: %s", exc)
            assert self._token is not None
            return {"Authorization": f"Bearer {self._token}"}

    def refused(self, status: int) -> bool:
        """The API refused the request: forget the token; True if there was one to forget."""
        if status not in REFUSED_STATUSES:
            return False
        with self._lock:
            had_token, self._token = self._token is not None, None
        return had_token

    # Lifecycle -----------------------------------------------------------------------

    def reset_after_fork(self) -> None:
        """A new session in a forked child; the token is still good."""
        if self._own_session:
            self._session = requests.Session()
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the connections of a session this object made itself."""
        if self._own_session:
            self._session.close()

    # The token request ---------------------------------------------------------------

    def assertion(self) -> str:
        """A freshly signed client assertion (a JWT)."""
        import jwt

        now = int(time.time() - self._skew)
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.auth_server,
            "iat": now - ISSUED_AT_BACKDATE,
            "exp": now - ISSUED_AT_BACKDATE + ASSERTION_LIFETIME,
            "jti": str(uuid.uuid4()),
        }
        return jwt.encode(
            claims, self._key, algorithm="RS256", headers={"kid": self.key_id, "typ": "JWT"}
        )

    def _fetch(self) -> None:
        """Get a token (the lock is held); one more try if the server says our clock is off."""
        try:
            self._request_token()
        except TokenError as exc:
            if not exc.clock_off:
                raise
            self._request_token()

    def _request_token(self) -> None:
        form = {
            "grant_type": GRANT_TYPE,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self.assertion(),
            "scope": self.scope,
        }
        headers = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": USER_AGENT}
        try:
            response = self._session.post(
                self.token_url, data=form, headers=headers, timeout=self.timeout,
                **self._request_options,
            )
        except requests.RequestException as exc:
            raise TokenError(
                f"OAuth token request to {self.token_url} failed: {type(exc).__name__}: {exc}"
            ) from None
        try:
            self._read_clock(response.headers.get("Date"))
            status, text = response.status_code, response.text
            retry_after = response.headers.get("Retry-After")
        finally:
            response.close()
        if status == 200:
            self._take(text)
            return
        raise self._refusal(status, text, retry_after)

    def _take(self, text: str) -> None:
        """Keep the token of a 200 answer, with its refresh and expiry times."""
        try:
            answer = json.loads(text)
            token, expires_in = answer["access_token"], float(answer["expires_in"])
        except (ValueError, TypeError, KeyError):
            raise TokenError(
                f"the OAuth token endpoint {self.token_url} answered 200 without "
                "access_token and expires_in"
            ) from None
        if not isinstance(token, str) or not token or not expires_in > 0:
            raise TokenError(f"the OAuth token endpoint {self.token_url} gave an unusable token")
        now = self._monotonic()
        self._token = token
        self._refresh_at = now + expires_in / 2
        self._expires_at = now + expires_in

    def _refusal(self, status: int, text: str, retry_after: str | None) -> TokenError:
        from ..delivery.retry import parse_retry_after

        code, description = _server_words(text)
        words = ": ".join(part for part in (code, description) if part) or "no reason given"
        reason = f"OAuth token request to {self.token_url} refused: {words}"
        wait = None
        if status == 429:
            wait = min(MAX_RATE_LIMIT_WAIT, parse_retry_after(retry_after) or 5.0)
        # analytics-python retries at once when the server says the assertion's times are
        # off, with the clock skew just read from its Date header.
        clock_off = code == "invalid_request" and description in CLOCK_OFF_DESCRIPTIONS
        return TokenError(
            reason, status=status, retryable=status not in CREDENTIALS_REFUSED,
            retry_after=wait, clock_off=clock_off,
        )

    def _read_clock(self, date: str | None) -> None:
        if not date:
            return
        try:
            server_time = email.utils.parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError, IndexError):
            return
        self._skew = time.time() - server_time


def _server_words(text: str) -> tuple[str, str]:
    """The ``error`` and ``error_description`` of an OAuth error answer, else its text."""
    try:
        answer = json.loads(text)
    except ValueError:
        return "", text.strip()[:200]
    if not isinstance(answer, dict):
        return "", text.strip()[:200]
    code, description = answer.get("error"), answer.get("error_description")
    return (
        code if isinstance(code, str) else "",
        description[:200] if isinstance(description, str) else "",
    )

