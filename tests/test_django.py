"""The Django middleware, through Django's test clients (sync and async), to the collector.

Django's settings can be configured once per process: the fixture configures a minimal
set if nobody has, and every test overrides what it relies on (URLconf, middleware,
``LOGBRIDGE_WEB``) with ``override_settings``, so it does not depend on, or leak into,
whatever else the process configured.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import django
import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.test import AsyncClient, Client, override_settings
from django.urls import path

import logbridge
from logbridge.collector import Collector
from logbridge.web import IdentityPolicy
from tests.support import analytics_logger
from tests.web_support import KNOWN, UA, Rendezvous, delivered

MIDDLEWARE = "logbridge.django.AnalyticsMiddleware"


class Views:
    """What the views use: the test's analytics logger, and a rendezvous for async views."""

    log = logging.getLogger("analytics.django.unused")
    rendezvous = Rendezvous(2)


def viewed(request: HttpRequest) -> HttpResponse:
    user_id = request.headers.get("X-User")
    if user_id:
        logbridge.bind(user_id=user_id)  # ends with the request
    Views.log.info("Product Viewed", extra={"product_id": "p1"})
    return HttpResponse(request.anonymous_id)


def own_cookie(request: HttpRequest) -> HttpResponse:
    response = HttpResponse("ok")
    response.set_cookie("theme", "dark")
    return response


def explicit(request: HttpRequest) -> HttpResponse:
    Views.log.info("Order Completed", extra={"user_id": "u9", "context": {"ip": "198.51.100.1"}})
    return HttpResponse("ok")


def login(request: HttpRequest) -> JsonResponse:
    user_id, email = "u1", request.POST["email"]
    Views.log.info("alias", extra={"user_id": user_id, "previous_id": request.anonymous_id})
    Views.log.info("identify", extra={"user_id": user_id, "traits": {"email": email}})
    return JsonResponse({"user_id": user_id})


async def async_viewed(request: HttpRequest) -> HttpResponse:
    await Views.rendezvous.wait()
    Views.log.info("Report Opened")
    return HttpResponse(request.anonymous_id)


urlpatterns = [
    path("viewed", viewed),
    path("explicit", explicit),
    path("own-cookie", own_cookie),
    path("login", login),
    path("async", async_viewed),
]


@pytest.fixture(scope="module", autouse=True)
def django_settings() -> None:
    """Configure Django once for the process if nobody has (tests override what they use)."""
    if not settings.configured:
        settings.configure(
            SECRET_KEY="logbridge-tests",
            ALLOWED_HOSTS=["testserver"],
            ROOT_URLCONF=__name__,
            MIDDLEWARE=[MIDDLEWARE],
            INSTALLED_APPS=[],
            DATABASES={},
            USE_TZ=True,
        )
        django.setup()


@contextmanager
def site(collector: Collector, **web: Any) -> Iterator[logbridge.AnalyticsHandler]:
    """This module's views behind the middleware configured with ``LOGBRIDGE_WEB = web``."""
    with analytics_logger(collector.endpoint) as (log, handler), override_settings(
        ROOT_URLCONF=__name__,
        MIDDLEWARE=[MIDDLEWARE],
        ALLOWED_HOSTS=["testserver"],
        LOGBRIDGE_WEB=web,
    ):
        Views.log = log
        yield handler


class TestRequestIdentity:
    """Events logged by views carry the visitor's id and the request's context."""

    def test_event_carries_anonymous_id_ip_user_agent_and_page(self, collector: Collector) -> None:
        """A first visit gets the cookie; its id, ip, userAgent and page reach the collector."""
        with site(collector) as handler:
            response = Client().get(
                "/viewed?ref=mail", REMOTE_ADDR="203.0.113.9", headers={"User-Agent": UA}
            )
            (message,) = delivered(collector, handler, 1)
        anonymous_id = response.cookies["lb_anonymous_id"].value
        assert response.content.decode() == anonymous_id == message["anonymousId"]
        assert message["context"]["ip"] == "203.0.113.9"
        assert message["context"]["userAgent"] == UA
        assert message["context"]["page"] == {
            "path": "/viewed",
            "search": "?ref=mail",
            "url": "http://testserver/viewed?ref=mail",
        }

    def test_a_returning_visitor_keeps_the_id(self, collector: Collector) -> None:
        """The cookie's id is used and not set again."""
        with site(collector) as handler:
            client = Client()
            client.cookies["lb_anonymous_id"] = KNOWN
            response = client.get("/viewed")
            (message,) = delivered(collector, handler, 1)
        assert "lb_anonymous_id" not in response.cookies
        assert message["anonymousId"] == KNOWN

    def test_explicit_fields_on_a_call_win(self, collector: Collector) -> None:
        """user_id and context.ip given on the call win; the bound rest is merged."""
        with site(collector) as handler:
            client = Client()
            client.cookies["lb_anonymous_id"] = KNOWN
            client.get("/explicit", headers={"User-Agent": UA})
            (message,) = delivered(collector, handler, 1)
        assert (message["userId"], message["anonymousId"]) == ("u9", KNOWN)
        assert (message["context"]["ip"], message["context"]["userAgent"]) == ("198.51.100.1", UA)

    def test_view_bindings_end_with_the_request(self, collector: Collector) -> None:
        """A user bound in one request is not on the next one, nor left in the caller."""
        with site(collector) as handler:
            client = Client()
            client.get("/viewed", headers={"X-User": "u7"})
            client.get("/viewed")
            assert logbridge.bound() == {}
            first, second = delivered(collector, handler, 2)
        assert first["userId"] == "u7"
        assert "userId" not in second


class TestSettings:
    """The middleware is configured through settings.LOGBRIDGE_WEB."""

    def test_default_cookie_attributes(self, collector: Collector) -> None:
        """One year, Path=/, Secure, HttpOnly, SameSite=Lax, no Domain."""
        with site(collector):
            response = Client().get("/viewed")
        cookie = response.cookies["lb_anonymous_id"]
        assert (cookie["max-age"], cookie["path"], cookie["samesite"]) == (31536000, "/", "Lax")
        assert cookie["secure"] is True
        assert cookie["httponly"] is True
        assert cookie["domain"] == ""

    def test_names_and_domain_from_settings(self, collector: Collector) -> None:
        """cookie_name, query_param and domain come from LOGBRIDGE_WEB."""
        options = {"cookie_name": "site_anon", "query_param": "via", "domain": "example.com"}
        with site(collector, **options) as handler:
            response = Client().get(f"/viewed?via={KNOWN}")
            (message,) = delivered(collector, handler, 1)
        cookie = response.cookies["site_anon"]
        assert (cookie.value, cookie["domain"]) == (KNOWN, "example.com")
        assert message["anonymousId"] == KNOWN
        assert message["context"]["page"]["url"] == "http://testserver/viewed"

    def test_a_policy_object_as_the_setting(self, collector: Collector) -> None:
        """LOGBRIDGE_WEB may be an IdentityPolicy; the view's own cookie is kept too."""
        policy = IdentityPolicy(cookie_name="shop_anon", samesite="Strict")
        with site(collector), override_settings(LOGBRIDGE_WEB=policy):
            response = Client().get("/own-cookie")
        assert response.cookies["shop_anon"]["samesite"] == "Strict"
        assert response.cookies["theme"].value == "dark"

    def test_misconfiguration_is_reported_when_middleware_loads(
        self, collector: Collector
    ) -> None:
        """An unknown option raises ImproperlyConfigured naming the setting."""
        with site(collector, cookie_nam="x"), pytest.raises(
            ImproperlyConfigured, match=r"LOGBRIDGE_WEB.*cookie_nam"
        ):
            Client().get("/viewed")


class TestCrossDomain:
    """The cross-domain parameter: adopted, validated, stripped, optionally redirected."""

    def test_a_linked_id_is_adopted_and_stripped(self, collector: Collector) -> None:
        """The link's id becomes the cookie and the event's id; the page URL loses it."""
        with site(collector) as handler:
            response = Client().get(f"/viewed?x=1&lb_anon_id={KNOWN}")
            (message,) = delivered(collector, handler, 1)
        assert response.cookies["lb_anonymous_id"].value == KNOWN
        assert message["anonymousId"] == KNOWN
        assert message["context"]["page"]["url"] == "http://testserver/viewed?x=1"

    def test_an_invalid_linked_id_is_rejected(self, collector: Collector) -> None:
        """An unsafe value never reaches the cookie or the event."""
        with site(collector) as handler:
            response = Client().get("/viewed?lb_anon_id=x%3B%20Domain%3Devil.example")
            (message,) = delivered(collector, handler, 1)
        value = response.cookies["lb_anonymous_id"].value
        assert "evil" not in response.cookies.output()
        assert message["anonymousId"] == value
        assert "evil" not in str(message)

    def test_redirect_to_the_clean_url(self, collector: Collector) -> None:
        """With redirect_clean_url the view is not run; the redirect sets the cookie."""
        with site(collector, redirect_clean_url=True) as handler:
            client = Client()
            response = client.get(f"/viewed?a=1&lb_anon_id={KNOWN}")
            assert response.status_code == 302
            assert response.headers["Location"] == "/viewed?a=1"
            assert client.get(response.headers["Location"]).content.decode() == KNOWN
            (message,) = delivered(collector, handler, 1)
        assert message["anonymousId"] == KNOWN


class TestLogin:
    """The login view links the anonymous visitor to the user: alias, then identify."""

    def test_alias_then_identify(self, collector: Collector) -> None:
        """alias(previousId=request.anonymous_id) is sent before identify."""
        with site(collector) as handler:
            client = Client()
            client.cookies["lb_anonymous_id"] = KNOWN
            response = client.post("/login", {"email": "a@example.com"})
            assert response.json() == {"user_id": "u1"}
            alias, identify = delivered(collector, handler, 2)
        assert (alias["type"], alias["userId"], alias["previousId"]) == ("alias", "u1", KNOWN)
        assert (identify["type"], identify["userId"], identify["anonymousId"]) == (
            "identify",
            "u1",
            KNOWN,
        )
        assert identify["traits"] == {"email": "a@example.com"}


class TestAsync:
    """Under Django's async handler (AsyncClient) the middleware runs in async mode."""

    def test_concurrent_async_requests_keep_their_own_identity(
        self, collector: Collector
    ) -> None:
        """Two requests in flight on one loop each log with their own id and user agent."""
        Views.rendezvous = Rendezvous(2)

        async def main() -> list[Any]:
            client = AsyncClient()
            return list(
                await asyncio.gather(
                    client.get("/async", headers={"User-Agent": "first"}),
                    client.get("/async", headers={"User-Agent": "second"}),
                )
            )

        with site(collector) as handler:
            first, second = asyncio.run(main())
            messages = delivered(collector, handler, 2)
        issued = {
            "first": first.cookies["lb_anonymous_id"].value,
            "second": second.cookies["lb_anonymous_id"].value,
        }
        assert issued["first"] != issued["second"]
        assert first.content.decode() == issued["first"]
        logged = {m["context"]["userAgent"]: m["anonymousId"] for m in messages}
        assert logged == issued

    def test_sync_views_under_the_async_handler_are_bound(self, collector: Collector) -> None:
        """A sync view run by the async handler (in a thread) still logs with the bindings."""

        async def main() -> Any:
            client = AsyncClient()
            client.cookies["lb_anonymous_id"] = KNOWN
            return await client.get("/viewed", headers={"User-Agent": UA})

        with site(collector) as handler:
            response = asyncio.run(main())
            (message,) = delivered(collector, handler, 1)
        assert response.content.decode() == KNOWN
        assert (message["anonymousId"], message["context"]["userAgent"]) == (KNOWN, UA)
