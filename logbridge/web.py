"""Per-request identity for web apps, framework-neutral: the policy the middlewares apply.

:class:`IdentityPolicy` says how a visitor's anonymous id is kept (the cookie and its
attributes), adopted from a cross-domain link (the query parameter), validated, and how
the client's address is found. :meth:`IdentityPolicy.decide` reads a :class:`WebRequest`
and returns an :class:`Identity`: the anonymous id, whether to set the cookie, and the
``context`` to bind (``ip``, ``userAgent``, ``page``). No I/O and no framework imports:
``logbridge.wsgi``, ``logbridge.asgi`` and ``logbridge.django`` do the plumbing.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import uuid
from collections.abc import Mapping, Sequence
from http.cookies import Morsel
from typing import Any, Final, Literal, TypedDict
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

from .errors import ConfigurationError

__all__ = [
    "COOKIELESS_ID",
    "DEFAULT_COOKIE_NAME",
    "DEFAULT_QUERY_PARAM",
    "ONE_YEAR",
    "SAFE_ID_PATTERN",
    "UUID_PATTERN",
    "Identity",
    "IdentityPolicy",
    "PolicyOptions",
    "WebRequest",
    "cross_domain_url",
    "parse_cookie_header",
    "quote_path",
    "request_from_environ",
    "strip_query_param",
]

ONE_YEAR: Final = 365 * 24 * 60 * 60
DEFAULT_COOKIE_NAME: Final = "lb_anonymous_id"
DEFAULT_QUERY_PARAM: Final = "lb_anon_id"
#: The static anonymous id of cookieless (company-level) tracking.
COOKIELESS_ID: Final = "cookieless"
#: The default id format: a UUID in its canonical hyphenated form, any case.
UUID_PATTERN: Final = (
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
#: A looser format for ids made elsewhere: 8 to 64 letters, digits, ``.``, ``_`` or ``-``.
SAFE_ID_PATTERN: Final = r"[A-Za-z0-9][A-Za-z0-9._-]{7,63}"

#: What any accepted id must also be, whatever ``id_pattern`` says: RFC 6265 cookie
#: octets (no space, quote, comma, semicolon or backslash), at most 128 of them.
_COOKIE_SAFE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]{1,128}")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_DOMAIN = re.compile(r"\.?(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)*[A-Za-z0-9-]+")
_HOST = re.compile(r"[A-Za-z0-9.:\[\]-]{1,255}")
_SAMESITE = {"lax": "Lax", "strict": "Strict", "none": "None"}
#: Characters left as they are in a percent-encoded path (RFC 3986 pchar and "/").
_PATH_SAFE = "/:@!$&'()*+,;=~"
_QUERY_SAFE = _PATH_SAFE + "%?[]"
_SAFE_METHODS = frozenset({"GET", "HEAD"})
_FLAGS = (
    "secure", "httponly", "use_forwarded_for", "page_context", "redirect_clean_url", "cookieless"
)

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclasses.dataclass(frozen=True)
class WebRequest:
    """What the identity policy reads from a request; the middlewares build one."""

    method: str = "GET"
    scheme: str = "http"
    host: str | None = None
    path: str = "/"
    """The path as it appears in a URL: percent-encoded (see :func:`quote_path`)."""
    query_string: str = ""
    """The raw query string, without ``?``, as received."""
    cookies: Mapping[str, str] = dataclasses.field(default_factory=dict)
    peer: str | None = None
    """The address of the connection's other end (``REMOTE_ADDR``)."""
    user_agent: str | None = None
    forwarded_for: str | None = None
    """The ``X-Forwarded-For`` header, all its values joined with commas."""
    referrer: str | None = None


@dataclasses.dataclass(frozen=True)
class Identity:
    """The policy's decision for one request."""

    anonymous_id: str
    source: Literal["cookie", "query", "new", "cookieless"]
    """Where the id came from: the cookie, the cross-domain parameter, made now, or static."""
    set_cookie: bool
    """True when the response must set the cookie (new, adopted, or replacing a bad one)."""
    context: Mapping[str, Any]
    """``ip``, ``userAgent`` and ``page`` as known; the cross-domain parameter stripped."""
    redirect_to: str | None = None
    """A relative URL without the cross-domain parameter, when the policy redirects."""

    def bindings(self) -> dict[str, Any]:
        """The keyword arguments for :func:`logbridge.bind`."""
        context = {k: dict(v) if isinstance(v, Mapping) else v for k, v in self.context.items()}
        return {"anonymous_id": self.anonymous_id, "context": context}


@dataclasses.dataclass(frozen=True)
class IdentityPolicy:
    """How the middlewares keep, adopt and validate a visitor's anonymous id.

    The defaults follow the reference SDKs' documentation: a one-year cookie with
    ``Path=/; Secure; HttpOnly; SameSite=Lax``, no ``Domain`` (set a parent domain such as
    ``"example.com"`` to share the id across subdomains), ids adopted from the
    ``lb_anon_id`` query parameter only when there is no valid cookie, ids accepted only
    as UUIDs, and ``X-Forwarded-For`` ignored unless ``use_forwarded_for`` is set.
    """

    cookie_name: str = DEFAULT_COOKIE_NAME
    query_param: str | None = DEFAULT_QUERY_PARAM
    """The cross-domain parameter; ``None`` turns adoption (and stripping) off."""
    max_age: int = ONE_YEAR
    secure: bool = True
    httponly: bool = True
    samesite: str | None = "Lax"
    domain: str | None = None
    path: str = "/"
    id_pattern: str = UUID_PATTERN
    """A regular expression an id (cookie or parameter) must match in full to be used."""
    use_forwarded_for: bool = False
    trusted_proxies: Sequence[str] = ()
    """Proxy addresses or networks whose ``X-Forwarded-For`` is believed (see client_ip).

    Given as a list or a single string too; kept as a tuple."""
    page_context: bool = True
    """Bind ``context.page`` (``path``, ``url``, ``search``, ``referrer``) too."""
    redirect_clean_url: bool = False
    """Answer a GET or HEAD carrying the parameter with a redirect to the URL without it."""
    cookieless: bool = False
    """Company-level tracking: no cookie; every request's anonymous id is ``"cookieless"``."""
    _id_regex: re.Pattern[str] = dataclasses.field(init=False, repr=False, compare=False)
    _networks: tuple[_Network, ...] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check(
            isinstance(self.cookie_name, str) and _TOKEN.fullmatch(self.cookie_name),
            f"cookie_name must be a cookie name (letters, digits, -_.), got {self.cookie_name!r}",
        )
        _check(
            self.query_param is None
            or (isinstance(self.query_param, str) and _TOKEN.fullmatch(self.query_param)),
            f"query_param must be a parameter name or None, got {self.query_param!r}",
        )
        _check(
            type(self.max_age) is int and self.max_age > 0,
            f"max_age must be a positive int (seconds), got {self.max_age!r}",
        )
        for name in _FLAGS:
            value = getattr(self, name)
            _check(isinstance(value, bool), f"{name} must be True or False, got {value!r}")
        if self.samesite is not None:
            samesite = _SAMESITE.get(str(self.samesite).lower())
            _check(
                samesite is not None,
                f"samesite must be 'Lax', 'Strict', 'None' or None, got {self.samesite!r}",
            )
            object.__setattr__(self, "samesite", samesite)
        _check(self.samesite != "None" or self.secure, "samesite='None' requires secure=True")
        _check(
            self.domain is None
            or (isinstance(self.domain, str) and _DOMAIN.fullmatch(self.domain)),
            f"domain must be a domain name such as 'example.com', got {self.domain!r}",
        )
        _check(
            isinstance(self.path, str)
            and self.path.startswith("/")
            and _COOKIE_SAFE.fullmatch(self.path) is not None,
            f"path must be a URL path starting with '/', got {self.path!r}",
        )
        try:
            regex = re.compile(self.id_pattern)
        except (re.error, TypeError) as exc:
            raise ConfigurationError(f"id_pattern is not a regular expression: {exc}") from None
        object.__setattr__(self, "_id_regex", regex)
        given: Any = self.trusted_proxies  # a str or a list (from settings) is taken too
        proxies = (given,) if isinstance(given, str) else tuple(given)
        object.__setattr__(self, "trusted_proxies", proxies)
        _check(
            not proxies or self.use_forwarded_for,
            "trusted_proxies has no effect unless use_forwarded_for=True",
        )
        try:
            networks = tuple(ipaddress.ip_network(proxy, strict=False) for proxy in proxies)
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(f"trusted_proxies: {exc}") from None
        object.__setattr__(self, "_networks", networks)

    @classmethod
    def from_options(
        cls, policy: IdentityPolicy | None = None, options: Mapping[str, object] | None = None
    ) -> IdentityPolicy:
        """``policy``, or a policy built from ``options``; unknown option names are refused."""
        options = dict(options or {})
        if policy is not None:
            if options:
                raise ConfigurationError("give either a policy or options, not both")
            return policy
        known = [f.name for f in dataclasses.fields(cls) if f.init]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise ConfigurationError(
                f"unknown web option(s) {unknown}; the options are {sorted(known)}"
            )
        kwargs: dict[str, Any] = options
        return cls(**kwargs)

    def is_valid_id(self, value: object) -> bool:
        """Whether ``value`` may be used as an anonymous id (and so written into the cookie)."""
        return (
            isinstance(value, str)
            and _COOKIE_SAFE.fullmatch(value) is not None
            and self._id_regex.fullmatch(value) is not None
        )

    def cookie_header(self, anonymous_id: str) -> str:
        """The ``Set-Cookie`` header value that stores ``anonymous_id``."""
        if not self.is_valid_id(anonymous_id):
            raise ValueError(f"not a valid anonymous id: {anonymous_id!r}")
        morsel: Morsel[str] = Morsel()
        morsel.set(self.cookie_name, anonymous_id, anonymous_id)
        morsel["path"] = self.path
        morsel["max-age"] = str(self.max_age)
        morsel["expires"] = self.max_age
        if self.domain:
            morsel["domain"] = self.domain
        morsel["secure"] = self.secure
        morsel["httponly"] = self.httponly
        if self.samesite:
            morsel["samesite"] = self.samesite
        return morsel.OutputString()

    def client_ip(self, peer: str | None, forwarded_for: str | None = None) -> str | None:
        """The client's address, or None when no valid address is known.

        By default the connection's peer. With ``use_forwarded_for`` the
        ``X-Forwarded-For`` chain is read from the right: with no ``trusted_proxies`` the
        peer is taken to be your one proxy and the address it reports is used; with
        ``trusted_proxies``, the chain is used only if the peer is one of them, and the
        first address (from the right) that is not a trusted proxy is the client.
        """
        peer_address = _address(peer)
        if peer_address is None or not self.use_forwarded_for or not forwarded_for:
            return None if peer_address is None else str(peer_address)
        hops = [_address(part) for part in forwarded_for.split(",")]
        if not self._networks:
            last = hops[-1]
            return str(last if last is not None else peer_address)
        nearest = peer_address
        if not self._trusted(nearest):
            return str(nearest)
        for hop in reversed(hops):
            if hop is None:
                break
            nearest = hop
            if not self._trusted(hop):
                break
        return str(nearest)

    def decide(self, request: WebRequest) -> Identity:
        """Decide the request's anonymous id, cookie, context and redirect."""
        query, offered = strip_query_param(request.query_string, self.query_param)
        anonymous_id: str
        source: Literal["cookie", "query", "new", "cookieless"]
        if self.cookieless:
            anonymous_id, source = COOKIELESS_ID, "cookieless"
        else:
            from_cookie = request.cookies.get(self.cookie_name)
            adopted = next((value for value in offered if self.is_valid_id(value)), None)
            if from_cookie is not None and self.is_valid_id(from_cookie):
                anonymous_id, source = from_cookie, "cookie"
            elif adopted is not None:
                anonymous_id, source = adopted, "query"
            else:
                anonymous_id, source = str(uuid.uuid4()), "new"
        redirect_to = None
        if offered and self.redirect_clean_url and request.method.upper() in _SAFE_METHODS:
            redirect_to = _relative_url(request.path, query)
        return Identity(
            anonymous_id=anonymous_id,
            source=source,
            set_cookie=source in ("query", "new"),
            context=self._context(request, query),
            redirect_to=redirect_to,
        )

    def _context(self, request: WebRequest, query: str) -> dict[str, Any]:
        context: dict[str, Any] = {}
        ip = self.client_ip(request.peer, request.forwarded_for)
        if ip is not None:
            context["ip"] = ip
        if request.user_agent:
            context["userAgent"] = request.user_agent
        if self.page_context:
            page: dict[str, str] = {"path": request.path}
            search = "?" + query if query else ""
            if search:
                page["search"] = search
            if request.host and _HOST.fullmatch(request.host):
                page["url"] = f"{request.scheme}://{request.host}{request.path}{search}"
            if request.referrer:
                page["referrer"] = _strip_url(request.referrer, self.query_param)
            context["page"] = page
        return context

    def _trusted(self, address: _Address) -> bool:
        return any(address in network for network in self._networks)


class PolicyOptions(TypedDict, total=False):
    """The options of :class:`IdentityPolicy` as middleware keyword arguments (for typing)."""

    cookie_name: str
    query_param: str | None
    max_age: int
    secure: bool
    httponly: bool
    samesite: str | None
    domain: str | None
    path: str
    id_pattern: str
    use_forwarded_for: bool
    trusted_proxies: Sequence[str]
    page_context: bool
    redirect_clean_url: bool
    cookieless: bool


def _check(condition: object, message: str) -> None:
    if not condition:
        raise ConfigurationError(message)


def _address(text: str | None) -> _Address | None:
    """An IP address from a peer or ``X-Forwarded-For`` entry (ports and brackets allowed)."""
    if not text:
        return None
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _relative_url(path: str, query: str) -> str:
    """``path?query`` as a same-site relative URL, safe to send as a Location header.

    Anything not already URL-safe is percent-encoded (no control characters or spaces),
    and leading slashes collapse to one: ``//host`` would leave the site.
    """
    path = "/" + quote(path, safe=_PATH_SAFE + "%").lstrip("/")
    query = quote(query, safe=_QUERY_SAFE)
    return f"{path}?{query}" if query else path


def _strip_url(url: str, name: str | None) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    query, offered = strip_query_param(parts.query, name)
    return urlunsplit(parts._replace(query=query)) if offered else url


def strip_query_param(query: str, name: str | None) -> tuple[str, list[str]]:
    """``query`` without parameter ``name``, and that parameter's decoded values.

    The other parameters keep their raw form and order. ``name=None`` strips nothing.
    """
    if not name or not query:
        return query, []
    kept: list[str] = []
    values: list[str] = []
    for part in query.split("&"):
        key, _, value = part.partition("=")
        if part and unquote_plus(key) == name:
            values.append(unquote_plus(value))
        elif part:
            kept.append(part)
    return "&".join(kept), values


def cross_domain_url(url: str, anonymous_id: str, *, param: str = DEFAULT_QUERY_PARAM) -> str:
    """``url`` carrying ``anonymous_id`` in ``param``: a link to your site on another domain.

    The target site, running this middleware with the same ``query_param``, adopts the
    id when the visitor has no cookie there yet.
    """
    parts = urlsplit(url)
    query, _ = strip_query_param(parts.query, param)
    pair = f"{quote(param, safe='')}={quote(anonymous_id, safe='')}"
    return urlunsplit(parts._replace(query=f"{query}&{pair}" if query else pair))


def parse_cookie_header(header: str | None) -> dict[str, str]:
    """The cookies of a ``Cookie`` header; the first of a repeated name wins."""
    cookies: dict[str, str] = {}
    for chunk in (header or "").split(";"):
        name, sep, value = chunk.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name:
            continue
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        cookies.setdefault(name, value)
    return cookies


def quote_path(path: str | bytes) -> str:
    """A path (decoded text, or raw bytes) percent-encoded as in a URL."""
    return quote(path, safe=_PATH_SAFE + ("%" if isinstance(path, bytes) else ""))


def _wsgi_bytes(text: str) -> bytes:
    """A WSGI "bytes as latin-1" string back to its bytes (tolerating a non-compliant one)."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")


def request_from_environ(environ: Mapping[str, Any]) -> WebRequest:
    """A :class:`WebRequest` from a WSGI environ (or Django's ``request.META``)."""
    scheme = str(environ.get("wsgi.url_scheme") or "http")
    host = environ.get("HTTP_HOST")
    if not host and environ.get("SERVER_NAME"):
        port = str(environ.get("SERVER_PORT") or "")
        default = {"http": "80", "https": "443"}.get(scheme)
        host = environ["SERVER_NAME"] + (f":{port}" if port and port != default else "")
    raw_path = str(environ.get("SCRIPT_NAME") or "") + str(environ.get("PATH_INFO") or "")
    return WebRequest(
        method=str(environ.get("REQUEST_METHOD") or "GET"),
        scheme=scheme,
        host=str(host) if host else None,
        path=quote_path(_wsgi_bytes(raw_path or "/")),
        query_string=str(environ.get("QUERY_STRING") or ""),
        cookies=parse_cookie_header(environ.get("HTTP_COOKIE")),
        peer=environ.get("REMOTE_ADDR"),
        user_agent=environ.get("HTTP_USER_AGENT"),
        forwarded_for=environ.get("HTTP_X_FORWARDED_FOR"),
        referrer=environ.get("HTTP_REFERER"),
    )

