"""WSGI middleware: every request gets an anonymous id, and its events carry it.

Works with any WSGI application, Flask included::

    from logbridge.wsgi import AnalyticsMiddleware

    app.wsgi_app = AnalyticsMiddleware(app.wsgi_app, domain="example.com")

Each request runs in its own copy of the context, so what is bound during it (by the
middleware, or by the application with ``logbridge.bind``) ends with it, even if the
server never closes the response. The body is iterated in that context too, so events
logged while a streamed response is produced carry the bindings as well.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from .context import bind
from .web import IdentityPolicy, request_from_environ

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from typing_extensions import Unpack

    from .context import _Binding
    from .web import PolicyOptions

__all__ = ["ANONYMOUS_ID_KEY", "AnalyticsMiddleware"]

#: The environ key under which the application finds the request's anonymous id.
ANONYMOUS_ID_KEY = "logbridge.anonymous_id"


class AnalyticsMiddleware:
    """Reads or sets the anonymous-id cookie and binds identity for each request.

    ``options`` are those of :class:`logbridge.web.IdentityPolicy` (or pass ``policy``).
    The application finds the id in ``environ["logbridge.anonymous_id"]``; events logged
    during the request carry ``anonymous_id`` and ``context.ip``/``userAgent``/``page``.
    """

    def __init__(
        self,
        app: WSGIApplication,
        policy: IdentityPolicy | None = None,
        **options: Unpack[PolicyOptions],
    ) -> None:
        self.app = app
        self.policy = IdentityPolicy.from_options(policy, options)

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        """Handle one request in a fresh copy of the current context."""
        context = contextvars.copy_context()
        return context.run(self._handle, context, environ, start_response)

    def _handle(
        self,
        context: contextvars.Context,
        environ: WSGIEnvironment,
        start_response: StartResponse,
    ) -> Iterable[bytes]:
        identity = self.policy.decide(request_from_environ(environ))
        environ[ANONYMOUS_ID_KEY] = identity.anonymous_id
        extra: list[tuple[str, str]] = []
        if identity.set_cookie:
            extra.append(("Set-Cookie", self.policy.cookie_header(identity.anonymous_id)))
        if identity.redirect_to is not None:
            start_response(
                "302 Found",
                [("Location", identity.redirect_to), ("Content-Length", "0"), *extra],
            )
            return []

        def start(
            status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None, /
        ) -> Callable[[bytes], object]:
            return start_response(status, [*headers, *extra], exc_info)

        binding = bind(**identity.bindings())
        try:
            body = self.app(environ, start)
        except BaseException:
            binding.reset()
            raise
        return _Body(body, context, binding)


class _Body:
    """The application's response body, iterated and closed in the request's context."""

    def __init__(
        self, body: Iterable[bytes], context: contextvars.Context, binding: _Binding
    ) -> None:
        self._body = body
        self._context = context
        self._binding: _Binding | None = binding
        self._iterator: Iterator[bytes] | None = None

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        return self._context.run(self._next)

    def close(self) -> None:
        """Close the application's body (as WSGI requires), then end the bindings."""
        self._context.run(self._close)

    def _next(self) -> bytes:
        if self._iterator is None:
            self._iterator = iter(self._body)
        return next(self._iterator)

    def _close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            binding, self._binding = self._binding, None
            if binding is not None:
                binding.reset()
