"""The collector's OAuth 2 token endpoint, as Segment's authorisation server answers it.

``POST /token`` takes a client-credentials grant with a JWT client assertion
(https://segment.com/docs/connections/oauth/), verifies the assertion's RS256 signature
against the public key the collector was given and checks its claims; then it issues an
opaque bearer token, which the batch paths accept until it expires.

The answers are RFC 6749's (``{"error": ..., "error_description": ...}``); an assertion
whose times are wrong gets Segment's own words ("Token is expired", "Token used before
issued"), which its libraries read. Faults: ``rate_limit_count`` token requests answered 429
with ``Retry-After``, and :meth:`TokenIssuer.revoke` to make the API refuse every token
issued so far (401), as an expired or revoked token would be.
"""

from __future__ import annotations

import hmac
import os
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final
from urllib.parse import parse_qs

__all__ = ["TOKEN_PATH", "TokenAnswer", "TokenIssuer", "bearer_token"]

TOKEN_PATH: Final = "/token"
GRANT_TYPE: Final = "client_credentials"
ASSERTION_TYPE: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: Segment: an assertion is "valid only for a short duration under a minute".
MAX_ASSERTION_LIFETIME: Final = 60
#: Clock difference forgiven on ``iat`` and ``exp``.
LEEWAY: Final = 5

#: One answer of the token endpoint: status, JSON payload, extra headers.
TokenAnswer = tuple[int, dict[str, Any], dict[str, str]]


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


class TokenIssuer:
    """Verifies client assertions against ``public_key`` and issues bearer tokens.

    ``public_key`` is a PEM text or the path of a PEM file (the public half of the client's
    key). With ``client_id`` or ``key_id`` set, assertions must carry them (``iss``/``sub``
    and the ``kid`` header); otherwise any client signing with the key is accepted.
    """

    def __init__(
        self,
        public_key: str | os.PathLike[str],
        *,
        client_id: str | None = None,
        key_id: str | None = None,
        scope: str = "tracking_api:write",
        token_lifetime: float = 3600.0,
        rate_limit_count: int = 0,
        retry_after: str = "1",
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Load the key; raise ValueError (naming it) if it cannot be used."""
        try:
            import jwt
            from cryptography.hazmat.primitives import serialization
        except ImportError:
            raise ValueError(
                "the token endpoint needs PyJWT with cryptography: "
                "pip install 'logbridge[oauth]'"
            ) from None
        self._jwt = jwt
        if not token_lifetime > 0:
            raise ValueError(f"token_lifetime must be > 0 seconds, got {token_lifetime!r}")
        if rate_limit_count < 0:
            raise ValueError(f"rate_limit_count must be >= 0, got {rate_limit_count!r}")
        text = os.fspath(public_key)
        try:
            if "-----BEGIN" in text:
                pem = text.encode("utf-8")
            else:
                with open(text, "rb") as file:
                    pem = file.read()
            self._key = serialization.load_pem_public_key(pem)
        except (OSError, ValueError) as exc:
            raise ValueError(f"public_key: not a readable PEM public key ({exc})") from None
        self.client_id = client_id
        self.key_id = key_id
        self.scope = scope
        self.token_lifetime = token_lifetime
        self.retry_after = retry_after
        self.clock = clock
        self._lock = threading.Lock()
        self._rate_limited_left = rate_limit_count
        self._tokens: dict[str, float] = {}  # token -> expiry (epoch seconds)
        self._seen_jti: dict[str, float] = {}  # jti -> when it stops mattering
        self.issued = 0

    def __repr__(self) -> str:
        return (
            f"<TokenIssuer client_id={self.client_id!r} key_id={self.key_id!r} "
            f"issued={self.issued}>"
        )

    # The token endpoint --------------------------------------------------------------

    def answer(self, body: bytes, content_type: str | None, audiences: list[str]) -> TokenAnswer:
        """The answer to a ``POST /token`` with ``body``; ``audiences`` are accepted ``aud``s."""
        with self._lock:
            if self._rate_limited_left:
                self._rate_limited_left -= 1
                return _error(429, "rate_limited", "too many token requests",
                              {"Retry-After": self.retry_after})
        if (content_type or "").split(";")[0].strip().lower() != (
            "application/x-www-form-urlencoded"
        ):
            return _error(415, "invalid_request", "use application/x-www-form-urlencoded")
        try:
            form = {k: v[0] for k, v in parse_qs(body.decode("utf-8"), strict_parsing=True).items()}
        except (UnicodeDecodeError, ValueError):
            return _error(400, "invalid_request", "the body is not a form")
        if form.get("grant_type") != GRANT_TYPE:
            return _error(400, "unsupported_grant_type", f"grant_type must be {GRANT_TYPE}")
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            return _error(400, "invalid_request", f"client_assertion_type must be {ASSERTION_TYPE}")
        if form.get("scope") != self.scope:
            return _error(400, "invalid_scope", f"scope must be {self.scope}")
        problem = self._check_assertion(form.get("client_assertion") or "", audiences)
        if problem is not None:
            return problem
        return 200, self._issue(), {"Cache-Control": "no-store"}

    def _check_assertion(self, assertion: str, audiences: list[str]) -> TokenAnswer | None:
        """None if the assertion is good, else the error answer."""
        jwt = self._jwt
        if not assertion:
            return _error(400, "invalid_request", "client_assertion is missing")
        try:
            header = jwt.get_unverified_header(assertion)
            # Times are checked below, on this endpoint's clock (tests set it apart).
            claims = jwt.decode(
                assertion, self._key, algorithms=["RS256"], audience=audiences,
                options={
                    "require": ["iss", "sub", "aud", "iat", "exp", "jti"],
                    "verify_exp": False, "verify_iat": False, "verify_nbf": False,
                },
            )
        except jwt.InvalidSignatureError:
            return _error(401, "invalid_client", "the assertion's signature does not verify")
        except jwt.InvalidAudienceError:
            return _error(401, "invalid_client", f"aud must be one of {audiences}")
        except jwt.MissingRequiredClaimError as exc:
            return _error(400, "invalid_request", f"the assertion has no {exc.claim} claim")
        except jwt.InvalidTokenError as exc:
            return _error(400, "invalid_request", f"not a usable RS256 JWT ({exc})")
        if self.key_id is not None and header.get("kid") != self.key_id:
            return _error(401, "invalid_client", "unknown kid")
        if claims["iss"] != claims["sub"]:
            return _error(401, "invalid_client", "iss and sub must both be the client id")
        if self.client_id is not None and claims["sub"] != self.client_id:
            return _error(401, "invalid_client", "unknown client")
        issued, expires, now = claims["iat"], claims["exp"], self.clock()
        if not all(isinstance(value, (int, float)) for value in (issued, expires)):
            return _error(400, "invalid_request", "iat and exp must be numbers")
        if expires <= now - LEEWAY:
            return _error(400, "invalid_request", "Token is expired")
        if issued > now + LEEWAY:
            return _error(400, "invalid_request", "Token used before issued")
        if expires - issued > MAX_ASSERTION_LIFETIME:
            return _error(400, "invalid_request", "the assertion must expire within a minute")
        try:
            uuid.UUID(str(claims["jti"]))
        except ValueError:
            return _error(400, "invalid_request", "jti must be a uuid")
        with self._lock:
            self._seen_jti = {j: t for j, t in self._seen_jti.items() if t > now}
            if claims["jti"] in self._seen_jti:
                return _error(400, "invalid_request", "this assertion was already used (jti)")
            self._seen_jti[claims["jti"]] = claims["exp"] + LEEWAY
        return None

    def _issue(self) -> dict[str, Any]:
        token = secrets.token_urlsafe(32)
        now = self.clock()
        with self._lock:
            self._tokens = {known: t for known, t in self._tokens.items() if t > now}
            self._tokens[token] = now + self.token_lifetime
            self.issued += 1
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "scope": self.scope,
        }

    # The batch paths -----------------------------------------------------------------

    def check(self, token: str) -> str | None:
        """None if ``token`` is one we issued and still valid, else why not."""
        now = self.clock()
        with self._lock:
            for known, expiry in self._tokens.items():
                if hmac.compare_digest(known, token):
                    return None if now < expiry else "the access token has expired"
        return "unknown access token"

    def revoke(self) -> None:
        """Forget every token issued: the API refuses them from now on (401)."""
        with self._lock:
            self._tokens.clear()


def _error(
    status: int, code: str, description: str, headers: Mapping[str, str] | None = None
) -> TokenAnswer:
    return status, {"error": code, "error_description": description}, dict(headers or {})
