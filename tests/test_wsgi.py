"""The WSGI middleware, through Flask's test client, the real handler and the collector."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import flask
import pytest
from flask.testing import FlaskClient
from werkzeug.test import Client

import logbridge
from logbridge.collector import Collector
from logbridge.web import IdentityPolicy
from logbridge.wsgi import ANONYMOUS_ID_KEY, AnalyticsMiddleware
from tests.support import analytics_logger
from tests.web_support import KNOWN, OTHER, UA, attributes, delivered


def make_app(log: logging.Logger, **options: Any) -> flask.Flask:
    """A small Flask shop whose views log events; wrapped in the middleware with ``options``."""
    app = flask.Flask(__name__)
    app.secret_key = "test-secret"

    @app.before_request
    def bind_user() -> None:
        if "user_id" in flask.session:
            logbridge.bind(user_id=flask.session["user_id"])  # ends with the request

    @app.get("/viewed")
    def viewed() -> str:
        log.info("Product Viewed", extra={"product_id": "p1"})
        return str(flask.request.environ[ANONYMOUS_ID_KEY])

    @app.get("/explicit")
    def explicit() -> str:
        log.info("Order Completed", extra={"user_id": "u9", "context": {"ip": "198.51.100.1"}})
        log.info("Imported", extra={"anonymous_id": OTHER})
        return "ok"

    @app.post("/login")
    def login() -> str:
        anonymous_id = flask.request.environ[ANONYMOUS_ID_KEY]
        user_id, email = "u1", flask.request.form["email"]
        log.info("alias", extra={"user_id": user_id, "previous_id": anonymous_id})
        log.info("identify", extra={"user_id": user_id, "traits": {"email": email}})
        flask.session["user_id"] = user_id
        return "ok"

    @app.get("/stream")
    def stream() -> flask.Response:
        def body() -> Iterator[str]:
            yield "first "
            log.info("Export Streamed")
            yield "last"

        return flask.Response(body())

    @app.get("/rendezvous")
    def rendezvous() -> str:
        app.config["BARRIER"].wait(timeout=10)  # both requests are bound before either logs
        log.info("Report Opened")
        return "ok"

    app.wsgi_app = AnalyticsMiddleware(app.wsgi_app, **options)  # type: ignore[method-assign]
    return app


@contextmanager
def shop(
    collector: Collector, **options: Any
) -> Iterator[tuple[flask.Flask, logbridge.AnalyticsHandler]]:
    """The Flask app with a fresh analytics logger sending to ``collector``."""
    with analytics_logger(collector.endpoint) as (log, handler):
        yield make_app(log, **options), handler


def visitor(app: flask.Flask, anonymous_id: str | None = None) -> FlaskClient:
    """A test client, holding the anonymous-id cookie when ``anonymous_id`` is given."""
    client = app.test_client()
    if anonymous_id is not None:
        client.set_cookie("lb_anonymous_id", anonymous_id)
    return client


class TestRequestIdentity:
    """Events logged during a request carry the visitor's id and the request's context."""

    def test_event_carries_anonymous_id_ip_user_agent_and_page(self, collector: Collector) -> None:
        """A first visit gets a cookie; its id, ip, userAgent and page reach the collector."""
        with shop(collector) as (app, handler):
            response = app.test_client().get(
                "/viewed?ref=mail",
                headers={"User-Agent": UA},
                environ_base={"REMOTE_ADDR": "203.0.113.9"},
            )
            (message,) = delivered(collector, handler, 1)
        cookie = attributes(response.headers["Set-Cookie"])
        assert response.text == cookie["value"]
        assert message["anonymousId"] == cookie["value"]
        assert message["event"] == "Product Viewed"
        assert message["properties"] == {"product_id": "p1"}
        context = message["context"]
        assert context["ip"] == "203.0.113.9"
        assert context["userAgent"] == UA
        assert context["page"] == {
            "path": "/viewed",
            "search": "?ref=mail",
            "url": "http://localhost/viewed?ref=mail",
        }

    def test_a_returning_visitor_keeps_the_id_and_gets_no_cookie(
        self, collector: Collector
    ) -> None:
        """The cookie's id is used and not set again."""
        with shop(collector) as (app, handler):
            response = visitor(app, KNOWN).get("/viewed")
            (message,) = delivered(collector, handler, 1)
        assert "Set-Cookie" not in response.headers
        assert message["anonymousId"] == KNOWN

    def test_explicit_fields_on_a_call_win_over_bound_ones(self, collector: Collector) -> None:
        """user_id, anonymous_id and context keys given on the call win; the rest merges."""
        with shop(collector) as (app, handler):
            visitor(app, KNOWN).get(
                "/explicit",
                headers={"User-Agent": UA},
                environ_base={"REMOTE_ADDR": "203.0.113.9"},
            )
            order, imported = delivered(collector, handler, 2)
        assert (order["userId"], order["anonymousId"]) == ("u9", KNOWN)
        assert order["context"]["ip"] == "198.51.100.1"
        assert order["context"]["userAgent"] == UA
        assert imported["anonymousId"] == OTHER
        assert imported["context"]["ip"] == "203.0.113.9"

    def test_events_in_a_streamed_body_are_bound(self, collector: Collector) -> None:
        """The response body is iterated in the request's context."""
        with shop(collector) as (app, handler):
            response = visitor(app, KNOWN).get("/stream")
            assert response.text == "first last"
            (message,) = delivered(collector, handler, 1)
        assert message["event"] == "Export Streamed"
        assert message["anonymousId"] == KNOWN

    def test_any_wsgi_app_works(self) -> None:
        """A bare WSGI callable gets the environ key and the Set-Cookie header."""
        seen: dict[str, Any] = {}

        def bare(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            seen["id"] = environ[ANONYMOUS_ID_KEY]
            seen["bound"] = logbridge.bound()
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"hello"]

        client = Client(AnalyticsMiddleware(bare, page_context=False))
        response = client.get("/", environ_base={"REMOTE_ADDR": "203.0.113.9"})
        assert response.get_data() == b"hello"
        assert attributes(response.headers["Set-Cookie"])["value"] == seen["id"]
        assert seen["bound"] == {"anonymous_id": seen["id"], "context": {"ip": "203.0.113.9"}}


class TestCookie:
    """The anonymous-id cookie the middleware sets."""

    def test_default_attributes(self, collector: Collector) -> None:
        """One year, Path=/, Secure, HttpOnly, SameSite=Lax, no Domain."""
        with shop(collector) as (app, _):
            response = app.test_client().get("/viewed")
        (header,) = response.headers.getlist("Set-Cookie")
        cookie = attributes(header)
        assert cookie["name"] == "lb_anonymous_id"
        assert cookie["max-age"] == "31536000"
        assert cookie["path"] == "/"
        assert cookie["samesite"] == "Lax"
        assert {"secure", "httponly"} <= set(cookie)
        assert "domain" not in cookie

    def test_name_and_parent_domain_are_configurable(self, collector: Collector) -> None:
        """A custom name and a parent domain appear on the cookie the app sends."""
        with shop(collector, cookie_name="shop_anon", domain="example.com") as (app, _):
            response = app.test_client().get("/viewed")
        cookie = attributes(response.headers["Set-Cookie"])
        assert (cookie["name"], cookie["domain"]) == ("shop_anon", "example.com")

    def test_the_app_keeps_its_own_cookies(self, collector: Collector) -> None:
        """The session cookie the app sets and ours are both sent."""
        with shop(collector) as (app, _):
            response = app.test_client().post("/login", data={"email": "a@example.com"})
        names = sorted(attributes(h)["name"] for h in response.headers.getlist("Set-Cookie"))
        assert names == ["lb_anonymous_id", "session"]


class TestCrossDomain:
    """The cross-domain query parameter: adopted, validated, stripped."""

    def test_a_linked_id_is_adopted_stored_and_stripped(self, collector: Collector) -> None:
        """The link's id becomes the cookie and the event's id; page fields lose the parameter."""
        with shop(collector) as (app, handler):
            response = app.test_client().get(f"/viewed?utm_source=x&lb_anon_id={KNOWN}")
            (message,) = delivered(collector, handler, 1)
        assert attributes(response.headers["Set-Cookie"])["value"] == KNOWN
        assert response.text == KNOWN
        assert message["anonymousId"] == KNOWN
        assert message["context"]["page"]["url"] == "http://localhost/viewed?utm_source=x"
        assert message["context"]["page"]["search"] == "?utm_source=x"

    def test_an_invalid_linked_id_is_rejected(self, collector: Collector) -> None:
        """A link cannot put arbitrary text in the cookie: a fresh UUID is used instead."""
        injected = "x%3B%20Domain%3Devil.example"
        with shop(collector) as (app, handler):
            response = app.test_client().get(f"/viewed?lb_anon_id={injected}")
            (message,) = delivered(collector, handler, 1)
        (header,) = response.headers.getlist("Set-Cookie")
        assert "evil" not in header
        assert message["anonymousId"] == attributes(header)["value"]
        assert "evil" not in str(message)

    def test_a_known_visitor_keeps_their_id(self, collector: Collector) -> None:
        """With a cookie already set, a link's different id is not adopted."""
        with shop(collector) as (app, handler):
            response = visitor(app, KNOWN).get(f"/viewed?lb_anon_id={OTHER}")
            (message,) = delivered(collector, handler, 1)
        assert "Set-Cookie" not in response.headers
        assert message["anonymousId"] == KNOWN
        assert OTHER not in str(message)

    def test_redirect_to_the_clean_url(self, collector: Collector) -> None:
        """With redirect_clean_url a GET is redirected without the id, the cookie set first."""
        with shop(collector, redirect_clean_url=True) as (app, handler):
            client = app.test_client()
            response = client.get(f"/viewed?a=1&lb_anon_id={KNOWN}")
            assert response.status_code == 302
            assert response.headers["Location"] == "/viewed?a=1"
            assert attributes(response.headers["Set-Cookie"])["value"] == KNOWN
            followed = client.get(response.headers["Location"])
            (message,) = delivered(collector, handler, 1)
        assert followed.text == KNOWN
        assert message["anonymousId"] == KNOWN
        assert message["context"]["page"]["url"] == "http://localhost/viewed?a=1"


class TestCookieless:
    """cookieless=True: company-level tracking without a cookie."""

    def test_static_id_no_cookie_and_the_context_kept(self, collector: Collector) -> None:
        """Every request logs as 'cookieless' with ip and userAgent; no cookie is set."""
        with shop(collector, cookieless=True) as (app, handler):
            response = visitor(app, KNOWN).get(
                f"/viewed?lb_anon_id={OTHER}",
                headers={"User-Agent": UA},
                environ_base={"REMOTE_ADDR": "203.0.113.9"},
            )
            (message,) = delivered(collector, handler, 1)
        assert "Set-Cookie" not in response.headers
        assert message["anonymousId"] == "cookieless"
        assert (message["context"]["ip"], message["context"]["userAgent"]) == ("203.0.113.9", UA)
        assert message["context"]["page"]["url"] == "http://localhost/viewed"


class TestClientAddress:
    """context.ip: the peer by default, X-Forwarded-For only when configured."""

    def test_forwarded_for_is_ignored_by_default(self, collector: Collector) -> None:
        """A client cannot set its logged ip with a header."""
        with shop(collector) as (app, handler):
            app.test_client().get("/viewed", headers={"X-Forwarded-For": "198.51.100.7"})
            (message,) = delivered(collector, handler, 1)
        assert message["context"]["ip"] == "127.0.0.1"

    def test_forwarded_for_from_a_trusted_proxy(self, collector: Collector) -> None:
        """Behind a trusted proxy the address it reports is logged."""
        options = {"use_forwarded_for": True, "trusted_proxies": ["127.0.0.1"]}
        with shop(collector, **options) as (app, handler):
            app.test_client().get(
                "/viewed", headers={"X-Forwarded-For": "6.6.6.6, 198.51.100.7"}
            )
            (message,) = delivered(collector, handler, 1)
        assert message["context"]["ip"] == "198.51.100.7"


class TestIsolation:
    """Bindings belong to one request: never to another, never after it."""

    def test_interleaved_requests_keep_their_own_identity(self, collector: Collector) -> None:
        """Two requests in flight at once each log with their own id and user agent."""
        with shop(collector) as (app, handler):
            app.config["BARRIER"] = threading.Barrier(2)
            statuses: list[int] = []

            def visit(anonymous_id: str) -> None:
                client = visitor(app, anonymous_id)
                response = client.get("/rendezvous", headers={"User-Agent": anonymous_id})
                statuses.append(response.status_code)

            threads = [threading.Thread(target=visit, args=(i,)) for i in (KNOWN, OTHER)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(10)
            assert statuses == [200, 200]
            messages = delivered(collector, handler, 2)
        pairs = {(m["anonymousId"], m["context"]["userAgent"]) for m in messages}
        assert pairs == {(KNOWN, KNOWN), (OTHER, OTHER)}

    def test_nothing_stays_bound_after_a_request(self, collector: Collector) -> None:
        """The caller's context has no bindings once the response is read and closed."""
        with shop(collector) as (app, _):
            with app.test_client() as client:
                client.get("/stream").close()
                client.get("/viewed")
            assert logbridge.bound() == {}

    def test_app_bindings_end_with_the_request(self, collector: Collector) -> None:
        """A user bound by one request's hook is not on the next request of the same thread."""
        with shop(collector) as (app, handler):
            logged_in = app.test_client()
            logged_in.post("/login", data={"email": "a@example.com"})
            logged_in.get("/viewed")
            app.test_client().get("/viewed")
            messages = delivered(collector, handler, 4)
        assert [m.get("userId") for m in messages[2:]] == ["u1", None]


class TestLogin:
    """The login flow links the anonymous visitor to the user: alias, then identify."""

    def test_alias_then_identify(self, collector: Collector) -> None:
        """alias(previousId=anonymous id) is sent before identify, both for the user."""
        with shop(collector) as (app, handler):
            response = visitor(app, KNOWN).post("/login", data={"email": "a@example.com"})
            assert response.status_code == 200
            alias, identify = delivered(collector, handler, 2)
        assert (alias["type"], alias["userId"], alias["previousId"]) == ("alias", "u1", KNOWN)
        assert (identify["type"], identify["userId"]) == ("identify", "u1")
        assert identify["anonymousId"] == KNOWN
        assert identify["traits"] == {"email": "a@example.com"}


class TestConfiguration:
    """Options are checked when the middleware is built."""

    def test_unknown_options_and_policy_with_options_are_refused(self) -> None:
        """A misspelt option, or both a policy and options, raise ConfigurationError."""
        with pytest.raises(logbridge.ConfigurationError, match="cookie_nam"):
            AnalyticsMiddleware(make_app(logging.getLogger("unused")), cookie_nam="x")  # type: ignore[call-arg]
        with pytest.raises(logbridge.ConfigurationError, match="not both"):
            AnalyticsMiddleware(
                make_app(logging.getLogger("unused")), IdentityPolicy(), domain="example.com"
            )
