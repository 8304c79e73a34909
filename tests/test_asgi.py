"""The ASGI middleware, through Starlette's and FastAPI's test clients, to the collector."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Header, Request
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

import logbridge
from logbridge.asgi import AnalyticsMiddleware
from logbridge.collector import Collector
from logbridge.web import IdentityPolicy
from tests.support import analytics_logger
from tests.web_support import KNOWN, UA, Rendezvous, attributes, delivered

with warnings.catch_warnings():
    # Starlette 1.x asks for the httpx2 package; httpx still works and is what is installed.
    warnings.filterwarnings("ignore", message=".*install `httpx2` instead")
    from starlette.testclient import TestClient

PEER = ("203.0.113.9", 50123)


def starlette_app(log: logging.Logger, **options: Any) -> Starlette:
    """A Starlette app with async and sync endpoints, a websocket and a lifespan state."""

    async def viewed(request: Request) -> PlainTextResponse:
        log.info("Product Viewed", extra={"product_id": "p1"})
        return PlainTextResponse(request.state.anonymous_id)

    def sync_viewed(request: Request) -> PlainTextResponse:  # runs in the thread pool
        log.info("Sync Viewed")
        return PlainTextResponse(request.state.anonymous_id)

    async def own_cookie(request: Request) -> PlainTextResponse:
        response = PlainTextResponse("ok")
        response.set_cookie("theme", "dark")
        return response

    async def state(request: Request) -> JSONResponse:
        return JSONResponse({"db": request.state.db, "anonymous_id": request.state.anonymous_id})

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        text = await websocket.receive_text()
        unbound = "anonymous_id" not in websocket.scope.get("state", {}) and not logbridge.bound()
        await websocket.send_text(f"{text} unbound={unbound}")
        await websocket.close()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, str]]:
        yield {"db": "connected"}

    app = Starlette(
        routes=[
            Route("/viewed", viewed),
            Route("/sync", sync_viewed),
            Route("/state", state),
            Route("/own-cookie", own_cookie),
            WebSocketRoute("/ws", echo),
        ],
        lifespan=lifespan,
    )
    app.add_middleware(AnalyticsMiddleware, **options)
    return app


class Login(BaseModel):
    """The login form of the FastAPI app."""

    email: str


def fastapi_app(log: logging.Logger, rendezvous: Rendezvous | None = None) -> FastAPI:
    """A FastAPI app: a login (alias + identify), a user dependency, a rendezvous."""
    app = FastAPI()

    async def current_user(authorization: str | None = Header(default=None)) -> str | None:
        user_id = authorization.removeprefix("Bearer ") if authorization else None
        if user_id:
            logbridge.bind(user_id=user_id)  # ends with the request
        return user_id

    @app.get("/viewed")
    async def viewed(request: Request, user: str | None = Depends(current_user)) -> str:
        log.info("Product Viewed")
        return str(request.state.anonymous_id)

    @app.get("/sync")
    def sync_viewed(request: Request) -> str:
        log.info("Sync Viewed")
        return str(request.state.anonymous_id)

    @app.post("/login")
    async def login(form: Login, request: Request) -> dict[str, str]:
        user_id = "u1"
        log.info("alias", extra={"user_id": user_id, "previous_id": request.state.anonymous_id})
        log.info("identify", extra={"user_id": user_id, "traits": {"email": form.email}})
        return {"user_id": user_id}

    @app.get("/rendezvous")
    async def meet() -> str:
        assert rendezvous is not None
        await rendezvous.wait()
        log.info("Report Opened")
        return "ok"

    app.add_middleware(AnalyticsMiddleware)
    return app


@contextmanager
def logger(collector: Collector) -> Iterator[tuple[logging.Logger, logbridge.AnalyticsHandler]]:
    """A fresh analytics logger sending to ``collector``."""
    with analytics_logger(collector.endpoint) as (log, handler):
        yield log, handler


class TestStarlette:
    """Starlette apps through Starlette's TestClient."""

    def test_event_carries_anonymous_id_ip_user_agent_and_page(self, collector: Collector) -> None:
        """A first visit gets the cookie; its id and the request's context reach the collector."""
        with logger(collector) as (log, handler):
            client = TestClient(starlette_app(log), client=PEER, headers={"User-Agent": UA})
            response = client.get("/viewed?ref=mail")
            (message,) = delivered(collector, handler, 1)
        cookie = attributes(response.headers["set-cookie"])
        assert response.text == cookie["value"] == message["anonymousId"]
        assert message["context"]["ip"] == "203.0.113.9"
        assert message["context"]["userAgent"] == UA
        assert message["context"]["page"] == {
            "path": "/viewed",
            "search": "?ref=mail",
            "url": "http://testserver/viewed?ref=mail",
        }

    def test_cookie_attributes(self, collector: Collector) -> None:
        """One year, Path=/, Secure, HttpOnly, SameSite=Lax, and the configured Domain."""
        with logger(collector) as (log, _):
            response = TestClient(starlette_app(log, domain="example.com")).get("/viewed")
        cookie = attributes(response.headers["set-cookie"])
        assert cookie["name"] == "lb_anonymous_id"
        assert (cookie["max-age"], cookie["path"], cookie["samesite"]) == ("31536000", "/", "Lax")
        assert cookie["domain"] == "example.com"
        assert {"secure", "httponly"} <= set(cookie)

    def test_the_secure_cookie_comes_back_over_https_only(self, collector: Collector) -> None:
        """The client's jar returns the Secure cookie to https URLs: the id persists there."""
        with logger(collector) as (log, _):
            app = starlette_app(log)
            secure = TestClient(app, base_url="https://testserver")
            plain = TestClient(app, base_url="http://testserver")
            assert secure.get("/viewed").text == secure.get("/viewed").text
            assert plain.get("/viewed").text != plain.get("/viewed").text

    def test_the_apps_own_cookies_are_kept(self, collector: Collector) -> None:
        """A cookie the endpoint sets is sent alongside the anonymous-id cookie."""
        with logger(collector) as (log, _):
            response = TestClient(starlette_app(log)).get("/own-cookie")
        names = sorted(attributes(h)["name"] for h in response.headers.get_list("set-cookie"))
        assert names == ["lb_anonymous_id", "theme"]

    def test_a_policy_object_configures_it(self, collector: Collector) -> None:
        """policy=IdentityPolicy(...) is used as given."""
        with logger(collector) as (log, _):
            app = starlette_app(log, policy=IdentityPolicy(cookie_name="shop_anon"))
            response = TestClient(app).get("/viewed")
        assert attributes(response.headers["set-cookie"])["name"] == "shop_anon"

    def test_sync_endpoints_in_the_thread_pool_are_bound(self, collector: Collector) -> None:
        """A plain def endpoint runs in a worker thread and still logs with the bindings."""
        with logger(collector) as (log, handler):
            client = TestClient(starlette_app(log))
            client.cookies.set("lb_anonymous_id", KNOWN)
            assert client.get("/sync").text == KNOWN
            (message,) = delivered(collector, handler, 1)
        assert (message["event"], message["anonymousId"]) == ("Sync Viewed", KNOWN)

    def test_a_linked_id_is_adopted_and_stripped(self, collector: Collector) -> None:
        """The query parameter's id is stored and logged; the page fields lose it."""
        with logger(collector) as (log, handler):
            response = TestClient(starlette_app(log)).get(f"/viewed?x=1&lb_anon_id={KNOWN}")
            (message,) = delivered(collector, handler, 1)
        assert attributes(response.headers["set-cookie"])["value"] == KNOWN
        assert message["anonymousId"] == KNOWN
        assert message["context"]["page"]["url"] == "http://testserver/viewed?x=1"

    def test_an_invalid_linked_id_is_rejected(self, collector: Collector) -> None:
        """An unsafe value in the parameter never reaches the cookie or the event."""
        with logger(collector) as (log, handler):
            response = TestClient(starlette_app(log)).get(
                "/viewed?lb_anon_id=x%3B%20Domain%3Devil.example"
            )
            (message,) = delivered(collector, handler, 1)
        header = response.headers["set-cookie"]
        assert "evil" not in header
        assert message["anonymousId"] == attributes(header)["value"]
        assert "evil" not in str(message)

    def test_redirect_to_the_clean_url_keeps_the_adopted_id(self, collector: Collector) -> None:
        """With redirect_clean_url the client is sent on without the parameter, cookie set."""
        with logger(collector) as (log, handler):
            client = TestClient(
                starlette_app(log, redirect_clean_url=True), base_url="https://testserver"
            )
            response = client.get(f"/viewed?a=1&lb_anon_id={KNOWN}")
            (message,) = delivered(collector, handler, 1)
        assert [r.status_code for r in response.history] == [302]
        assert response.history[0].headers["location"] == "/viewed?a=1"
        assert response.text == KNOWN
        assert message["anonymousId"] == KNOWN
        assert message["context"]["page"]["url"] == "https://testserver/viewed?a=1"

    def test_lifespan_and_its_state_pass_through(self, collector: Collector) -> None:
        """The lifespan runs through the middleware; request.state keeps its state too."""
        with logger(collector) as (log, _), TestClient(starlette_app(log)) as client:
            client.cookies.set("lb_anonymous_id", KNOWN)
            assert client.get("/state").json() == {"db": "connected", "anonymous_id": KNOWN}

    def test_websockets_pass_through_unbound(self, collector: Collector) -> None:
        """A websocket connection is not touched: no id in its state, nothing bound."""
        with logger(collector) as (log, _):
            client = TestClient(starlette_app(log))
            with client.websocket_connect("/ws") as websocket:
                websocket.send_text("hello")
                assert websocket.receive_text() == "hello unbound=True"

    def test_forwarded_for_only_from_a_trusted_proxy(self, collector: Collector) -> None:
        """X-Forwarded-For is ignored by default and used behind a configured proxy."""
        header = {"X-Forwarded-For": "198.51.100.7"}
        with logger(collector) as (log, handler):
            TestClient(starlette_app(log), client=PEER).get("/viewed", headers=header)
            proxied = starlette_app(log, use_forwarded_for=True, trusted_proxies=["10.0.0.0/8"])
            TestClient(proxied, client=("10.0.0.2", 1)).get("/viewed", headers=header)
            direct, behind_proxy = delivered(collector, handler, 2)
        assert direct["context"]["ip"] == "203.0.113.9"
        assert behind_proxy["context"]["ip"] == "198.51.100.7"


class TestFastAPI:
    """FastAPI apps through FastAPI's TestClient and httpx's ASGI transport."""

    def test_event_carries_the_bound_identity(self, collector: Collector) -> None:
        """Async and sync endpoints log with the cookie's id, the ip and the user agent."""
        with logger(collector) as (log, handler):
            client = TestClient(fastapi_app(log), client=PEER, headers={"User-Agent": UA})
            client.cookies.set("lb_anonymous_id", KNOWN)
            assert client.get("/viewed").json() == KNOWN
            assert client.get("/sync").json() == KNOWN
            messages = delivered(collector, handler, 2)
        assert "set-cookie" not in client.get("/viewed").headers
        for message in messages:
            assert message["anonymousId"] == KNOWN
            assert (message["context"]["ip"], message["context"]["userAgent"]) == (PEER[0], UA)

    def test_a_client_name_that_is_no_address_gives_no_ip(self, collector: Collector) -> None:
        """TestClient's default peer 'testclient' is not an address: context.ip is left out."""
        with logger(collector) as (log, handler):
            TestClient(fastapi_app(log)).get("/viewed")
            (message,) = delivered(collector, handler, 1)
        assert "ip" not in message["context"]

    def test_login_sends_alias_then_identify(self, collector: Collector) -> None:
        """alias(previousId=anonymous id) comes before identify, both for the user."""
        with logger(collector) as (log, handler):
            client = TestClient(fastapi_app(log))
            client.cookies.set("lb_anonymous_id", KNOWN)
            assert client.post("/login", json={"email": "a@example.com"}).json() == {
                "user_id": "u1"
            }
            alias, identify = delivered(collector, handler, 2)
        assert (alias["type"], alias["userId"], alias["previousId"]) == ("alias", "u1", KNOWN)
        assert (identify["type"], identify["userId"], identify["anonymousId"]) == (
            "identify",
            "u1",
            KNOWN,
        )
        assert identify["traits"] == {"email": "a@example.com"}

    def test_concurrent_requests_do_not_leak_bindings(self, collector: Collector) -> None:
        """Two requests in flight on one event loop each log with their own identity."""
        rendezvous = Rendezvous(2)

        async def main(app: FastAPI) -> list[httpx.Response]:
            transport = httpx.ASGITransport(app=app, client=PEER)
            async with httpx.AsyncClient(transport=transport, base_url="https://t") as client:
                return list(
                    await asyncio.gather(
                        client.get("/rendezvous", headers={"User-Agent": "first"}),
                        client.get("/rendezvous", headers={"User-Agent": "second"}),
                    )
                )

        with logger(collector) as (log, handler):
            responses = asyncio.run(main(fastapi_app(log, rendezvous)))
            messages = delivered(collector, handler, 2)
        issued = {
            r.request.headers["user-agent"]: attributes(r.headers["set-cookie"])["value"]
            for r in responses
        }
        assert len(set(issued.values())) == 2
        logged = {m["context"]["userAgent"]: m["anonymousId"] for m in messages}
        assert logged == issued

    def test_bindings_are_reset_when_the_request_ends(self, collector: Collector) -> None:
        """In the caller's task nothing stays bound, and a user bound by one request is gone."""

        async def main(app: FastAPI) -> dict[str, Any]:
            transport = httpx.ASGITransport(app=app)  # runs the app in this very task
            async with httpx.AsyncClient(transport=transport, base_url="https://t") as client:
                await client.get("/viewed", headers={"Authorization": "Bearer u7"})
                after_first = dict(logbridge.bound())
                await client.get("/viewed")
            return after_first

        with logger(collector) as (log, handler):
            after_first = asyncio.run(main(fastapi_app(log)))
            first, second = delivered(collector, handler, 2)
        assert after_first == {}
        assert first["userId"] == "u7"
        assert "userId" not in second
        assert first["anonymousId"] == second["anonymousId"]


@pytest.mark.parametrize("scope_type", ["lifespan", "websocket"])
def test_other_scope_types_are_passed_through_untouched(scope_type: str) -> None:
    """Non-http scopes reach the app as the same object, with the same receive and send."""
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((scope, receive, send))

    async def receive() -> dict[str, Any]:
        return {}

    async def send(message: Any) -> None:
        return None

    scope = {"type": scope_type}
    asyncio.run(AnalyticsMiddleware(app)(scope, receive, send))
    assert seen == [(scope, receive, send)]
    assert seen[0][0] is scope
    assert scope == {"type": scope_type}
