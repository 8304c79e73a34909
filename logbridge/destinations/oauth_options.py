"""The OAuth options checked at start-up: the ids, the private key, the token server.

Every mistake is a :class:`~logbridge.errors.ConfigurationError` naming the option, raised
when the handler is made, never on a logging call; the key itself never appears in one.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

from ..errors import ConfigurationError
from ..report import logger
from ..urls import is_loopback

__all__ = [
    "DEFAULT_AUTH_SERVER",
    "DEFAULT_SCOPE",
    "EU_AUTH_SERVER",
    "OAuthOptions",
    "OAuthSettings",
    "load_private_key",
    "read_oauth_options",
]

DEFAULT_AUTH_SERVER = "https://oauth2.segment.io"
EU_AUTH_SERVER = "https://oauth2.eu1.segmentapis.com"
DEFAULT_SCOPE = "tracking_api:write"
INSTALL_HINT = "pip install 'logbridge[oauth]'"


class OAuthOptions(Protocol):
    """The options the OAuth settings are read from (a :class:`~logbridge.options.Options`)."""

    @property
    def oauth_client_id(self) -> str | None: ...
    @property
    def oauth_client_key(self) -> str | None: ...
    @property
    def oauth_key_id(self) -> str | None: ...
    @property
    def oauth_auth_server(self) -> str | None: ...
    @property
    def oauth_scope(self) -> str | None: ...
    @property
    def timeout(self) -> float: ...
    @property
    def verify(self) -> bool | str: ...
    @property
    def proxies(self) -> Mapping[str, str] | None: ...
    @property
    def session(self) -> Any: ...


@dataclasses.dataclass(frozen=True)
class OAuthSettings:
    """Checked OAuth settings, the private key loaded."""

    client_id: str
    private_key: Any = dataclasses.field(repr=False)
    key_id: str
    auth_server: str = DEFAULT_AUTH_SERVER
    scope: str = DEFAULT_SCOPE


def read_oauth_options(options: OAuthOptions) -> OAuthSettings | None:
    """The OAuth settings of ``options``; None when no ``oauth_*`` identity is set.

    With any of client id, key and key id given, all three are required.
    """
    client_id = _text("oauth_client_id", options.oauth_client_id)
    key_text = _text("oauth_client_key", options.oauth_client_key)
    key_id = _text("oauth_key_id", options.oauth_key_id)
    if client_id is None and key_text is None and key_id is None:
        return None
    if client_id is None or key_text is None or key_id is None:
        missing = [
            name
            for name, value in (
                ("oauth_client_id", client_id),
                ("oauth_client_key", key_text),
                ("oauth_key_id", key_id),
            )
            if value is None
        ]
        raise ConfigurationError(
            "OAuth needs oauth_client_id, oauth_client_key and oauth_key_id: "
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing"
        )
    return OAuthSettings(
        client_id,
        load_private_key(key_text),
        key_id,
        auth_server=_auth_server(options.oauth_auth_server),
        scope=_text("oauth_scope", options.oauth_scope) or DEFAULT_SCOPE,
    )


def load_private_key(text: str) -> Any:
    """The RSA private key in ``text``: a PEM string, or the path of a PEM file.

    Raises :class:`~logbridge.errors.ConfigurationError` naming ``oauth_client_key`` (never
    showing the key) when it cannot be read, and naming the extra when it is not installed.
    """
    try:
        import jwt  # noqa: F401  (signs the assertions)
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
    except ImportError:
        raise ConfigurationError(
            f"OAuth (oauth_client_id) needs PyJWT with cryptography: {INSTALL_HINT}"
        ) from None
    if "-----BEGIN" in text:
        pem = text.encode("utf-8")
    else:
        # Only a short one-line value is shown: anything else may be key material.
        shown = repr(text) if len(text) < 256 and "\n" not in text else "(the value given)"
        try:
            with open(os.path.expanduser(text), "rb") as file:
                pem = file.read()
        except OSError as exc:
            raise ConfigurationError(
                f"oauth_client_key is neither a PEM private key nor a readable file: "
                f"{shown}: {exc.strerror or type(exc).__name__}"
            ) from None
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except Exception as exc:  # unsupported, encrypted or damaged: say which, not the key
        raise ConfigurationError(
            f"oauth_client_key is not an unencrypted PEM private key ({type(exc).__name__})"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigurationError("oauth_client_key must be an RSA private key (RS256)")
    return key


def _text(name: str, value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigurationError(f"{name} must be a string, got {type(value).__name__}")
    return value.strip() or None


def _auth_server(value: object) -> str:
    server = _text("oauth_auth_server", value) or DEFAULT_AUTH_SERVER
    parts = urlsplit(server)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"oauth_auth_server must be an http(s) URL, such as {DEFAULT_AUTH_SERVER}; "
            f"got {server!r}"
        )
    if parts.scheme == "http" and not is_loopback(server):
        logger.warning(
            "logbridge: oauth_auth_server %s is plain http: tokens travel unencrypted; "
            "use https", server,
        )
    return server.rstrip("/")
