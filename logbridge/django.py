"""Django middleware: every request gets an anonymous id, and its events carry it.

Add it to ``MIDDLEWARE`` and configure it in settings (the keys are the options of
:class:`logbridge.web.IdentityPolicy`)::

    MIDDLEWARE = ["logbridge.django.AnalyticsMiddleware", ...]
    LOGBRIDGE_WEB = {"domain": "example.com"}

Views find the id in ``request.anonymous_id``. The middleware works in both of
Django's modes: under WSGI and under ASGI with async views.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings  # type: ignore[import-untyped,unused-ignore]
from django.core.exceptions import (  # type: ignore[import-untyped,unused-ignore]
    ImproperlyConfigured,
)
from django.http import HttpResponseRedirect  # type: ignore[import-untyped,unused-ignore]

from .context import bind
from .errors import ConfigurationError
from .web import Identity, IdentityPolicy, quote_path, request_from_environ

__all__ = ["SETTING", "AnalyticsMiddleware", "policy_from_settings"]

#: The settings name holding the middleware's options (a dict, or an IdentityPolicy).
SETTING = "LOGBRIDGE_WEB"


def policy_from_settings() -> IdentityPolicy:
    """The :class:`~logbridge.web.IdentityPolicy` that ``settings.LOGBRIDGE_WEB`` describes."""
    configured = getattr(settings, SETTING, None)
    try:
        if isinstance(configured, IdentityPolicy):
            return configured
        if configured is not None and not isinstance(configured, Mapping):
            raise ConfigurationError(f"must be a dict, got {type(configured).__name__}")
        return IdentityPolicy.from_options(options=configured)
    except ConfigurationError as exc:
        raise ImproperlyConfigured(f"settings.{SETTING}: {exc}") from exc


class AnalyticsMiddleware:
    """Reads or sets the anonymous-id cookie and binds identity for each request."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self.policy = policy_from_settings()
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        """Handle one request (returning a coroutine in async mode)."""
        if self.is_async:
            return self._acall(request)
        identity = self._identify(request)
        if identity.redirect_to is not None:
            return self._finish(identity, HttpResponseRedirect(identity.redirect_to))
        with bind(**identity.bindings()):
            response = self.get_response(request)
        return self._finish(identity, response)

    async def _acall(self, request: Any) -> Any:
        identity = self._identify(request)
        if identity.redirect_to is not None:
            return self._finish(identity, HttpResponseRedirect(identity.redirect_to))
        get_response: Callable[[Any], Awaitable[Any]] = self.get_response
        with bind(**identity.bindings()):
            response = await get_response(request)
        return self._finish(identity, response)

    def _identify(self, request: Any) -> Identity:
        web_request = dataclasses.replace(
            request_from_environ(request.META),
            method=request.method or "GET",
            scheme=request.scheme,
            path=quote_path(request.path),
            cookies=request.COOKIES,
        )
        identity = self.policy.decide(web_request)
        request.anonymous_id = identity.anonymous_id
        return identity

    def _finish(self, identity: Identity, response: Any) -> Any:
        if identity.set_cookie:
            policy = self.policy
            response.set_cookie(
                policy.cookie_name,
                identity.anonymous_id,
                max_age=policy.max_age,
                path=policy.path,
                domain=policy.domain,
                secure=policy.secure,
                httponly=policy.httponly,
                samesite=policy.samesite,
            )
        return response
