"""ASGI middleware: every HTTP request gets an anonymous id, and its events carry it.

Works with any ASGI 3 application, Starlette and FastAPI included::

    from logbridge.asgi import AnalyticsMiddleware

    app.add_middleware(AnalyticsMiddleware, domain="example.com")

Only ``http`` scopes are handled; ``lifespan`` and ``websocket`` pass straight through.
Bindings are made in the request's own task (context variables are per task), so
concurrent requests never see each other's, and they are reset when the request ends.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from .context import bind
from .web import IdentityPolicy, WebRequest, parse_cookie_header, quote_path

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .web import PolicyOptions

__all__ = ["AnalyticsMiddleware", "request_from_scope"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class AnalyticsMiddleware:
    """Reads or sets the anonymous-id cookie and binds identity for each HTTP request.

    ``options`` are those of :class:`logbridge.web.IdentityPolicy` (or pass ``policy``).
    The application finds the id in ``scope["state"]["anonymous_id"]`` (in Starlette and
    FastAPI: ``request.state.anonymous_id``).
    """

    def __init__(
        self,
        app: ASGIApp,
        policy: IdentityPolicy | None = None,
        **options: Unpack[PolicyOptions],
    ) -> None:
        self.app = app
        self.policy = IdentityPolicy.from_options(policy, options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one connection: identity for ``http``, pass-through for anything else."""
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        identity = self.policy.decide(request_from_scope(scope))
        scope = dict(scope)  # changes must not leak to the middleware around this one
        scope["state"] = {**(scope.get("state") or {}), "anonymous_id": identity.anonymous_id}
        cookie: list[tuple[bytes, bytes]] = []
        if identity.set_cookie:
            value = self.policy.cookie_header(identity.anonymous_id)
            cookie.append((b"set-cookie", value.encode("latin-1")))
        if identity.redirect_to is not None:
            location = identity.redirect_to.encode("latin-1", "replace")
            headers = [(b"location", location), (b"content-length", b"0"), *cookie]
            await send({"type": "http.response.start", "status": 302, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return

        async def send_with_cookie(message: Message) -> None:
            if cookie and message.get("type") == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *cookie]}
            await send(message)

        binding = bind(**identity.bindings())
        try:
            await self.app(scope, receive, send_with_cookie)
        finally:
            binding.reset()


def request_from_scope(scope: Scope) -> WebRequest:
    """A :class:`~logbridge.web.WebRequest` from an ASGI ``http`` scope."""
    headers: dict[str, list[str]] = {}
    for name, value in scope.get("headers", ()):
        headers.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))

    def header(name: str) -> str | None:
        """A single-valued header: the first, if repeated."""
        return headers[name][0] if name in headers else None

    def joined(name: str, separator: str) -> str | None:
        """A list-valued header: every value, in order."""
        return separator.join(headers[name]) if name in headers else None

    client = scope.get("client")
    server = scope.get("server")
    host = header("host")
    if not host and server:
        host = f"{server[0]}:{server[1]}" if server[1] is not None else str(server[0])
    raw_path = scope.get("raw_path")
    if isinstance(raw_path, bytes) and raw_path:
        path = quote_path(raw_path.split(b"?", 1)[0])
    else:
        path = quote_path(str(scope.get("path") or "/"))
    query = scope.get("query_string", b"")
    return WebRequest(
        method=str(scope.get("method") or "GET"),
        scheme=str(scope.get("scheme") or "http"),
        host=host,
        path=path,
        query_string=query.decode("latin-1") if isinstance(query, bytes) else str(query),
        cookies=parse_cookie_header(joined("cookie", "; ")),
        peer=str(client[0]) if client else None,
        user_agent=header("user-agent"),
        forwarded_for=joined("x-forwarded-for", ", "),
        referrer=header("referer"),
    )
