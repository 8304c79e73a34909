"""FastAPI + logbridge: per-request anonymous id, ip and user agent; login with alias + identify.

    python examples/fastapi_app.py          # self-check: requests through FastAPI's TestClient
    python examples/fastapi_app.py serve    # a server on http://127.0.0.1:8000 (needs uvicorn)

Events go to a local collector started here, or to ``LOGBRIDGE_ENDPOINT`` if set; what
was sent is printed. The self-check plays a visitor who arrives through a cross-domain
link, browses, logs in and follows a link to the partner site, then checks the result.
"""

from __future__ import annotations

import logging
import logging.config
import sys
import warnings

from _webdemo import Sent, check_visit, cookie_header_ok, destination, handler_config, run_example
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel
from starlette.middleware.sessions import SessionMiddleware

import logbridge
from logbridge.asgi import AnalyticsMiddleware
from logbridge.web import cross_domain_url

log = logging.getLogger("analytics")

#: The demo's user database: email -> user id.
USERS = {"ada@example.com": "user-1"}


class Login(BaseModel):
    """The login form."""

    email: str


async def bind_user(request: Request) -> None:
    """Bind the logged-in user for this request (async: it runs in the request's task)."""
    user_id = request.session.get("user_id")
    if user_id:
        logbridge.bind(user_id=user_id)  # the middleware resets it when the request ends


def create_app() -> FastAPI:
    """The application: the middleware is added like any other; endpoints just log."""
    app = FastAPI(dependencies=[Depends(bind_user)])
    app.add_middleware(SessionMiddleware, secret_key="dev-only-secret")
    # Cookie lb_anonymous_id (one year, Secure, HttpOnly, SameSite=Lax), links' lb_anon_id
    # adopted. Options: domain="example.com" to share it across subdomains, and more.
    app.add_middleware(AnalyticsMiddleware)

    @app.get("/")
    async def home() -> str:
        log.info("page", extra={"page_name": "Home"})
        return "home"

    @app.get("/pricing")
    def pricing(plan: str = "pro") -> str:  # a sync endpoint runs in a thread: still bound
        log.info("Pricing Viewed", extra={"plan": plan})
        return "pricing"

    @app.post("/login")
    async def login(form: Login, request: Request) -> dict[str, str]:
        user_id = USERS.get(form.email)
        if user_id is None:
            raise HTTPException(status_code=401, detail="unknown user")
        anonymous_id = request.state.anonymous_id
        # Link the anonymous visitor to the user, then describe the user (reference docs).
        log.info("alias", extra={"user_id": user_id, "previous_id": anonymous_id})
        log.info("identify", extra={"user_id": user_id, "traits": {"email": form.email}})
        request.session["user_id"] = user_id
        return {"user_id": user_id}

    @app.get("/dashboard")
    async def dashboard() -> str:
        log.info("Dashboard Viewed")  # carries the bound user_id and anonymous_id
        return "dashboard"

    @app.get("/go-to-partner")
    async def go_to_partner(request: Request) -> RedirectResponse:
        anonymous_id = request.state.anonymous_id
        return RedirectResponse(cross_domain_url("https://partner.example/landing", anonymous_id))

    return app


def configure_logging(endpoint: str, write_key: str, sent: Sent) -> None:
    """The application's logging: the ``analytics`` logger feeds logbridge."""
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {"analytics": handler_config(endpoint, write_key, sent)},
            "loggers": {
                "analytics": {"handlers": ["analytics"], "level": "INFO", "propagate": False}
            },
        }
    )


def self_check() -> int:
    """Drive a visitor's journey through the test client; print and check what was sent."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*install `httpx2` instead")  # Starlette 1.x
        from fastapi.testclient import TestClient

    linked_id = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"  # set by the partner site's link
    browser = {"User-Agent": "Mozilla/5.0 (example)"}
    sent = Sent()
    with destination() as (endpoint, write_key):
        configure_logging(endpoint, write_key, sent)
        # https, so the client's cookie jar keeps and returns the Secure cookie.
        client = TestClient(
            create_app(),
            base_url="https://shop.example",
            client=("203.0.113.9", 50000),
            headers=browser,
        )
        first = client.get(f"/pricing?plan=pro&lb_anon_id={linked_id}")
        client.get("/")
        client.post("/login", json={"email": "ada@example.com"})
        client.get("/dashboard")
        outbound = client.get("/go-to-partner", follow_redirects=False)
        delivered = logbridge.flush(10) and sent.wait_for(5)
        logging.shutdown()

    return check_visit(
        sent,
        delivered=delivered,
        cookie_ok=cookie_header_ok(first.headers.get("set-cookie", ""), linked_id),
        location=outbound.headers.get("location"),
        linked_id=linked_id,
        user_agent=browser["User-Agent"],
    )


def serve(port: int) -> int:
    """Run the app under uvicorn; each delivered message is printed as it arrives."""
    try:
        import uvicorn  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        print("serve mode needs an ASGI server: pip install uvicorn", file=sys.stderr)
        return 2
    sent = Sent()
    with destination(echo=True) as (endpoint, write_key):
        configure_logging(endpoint, write_key, sent)
        print(f"try: curl -i 'http://127.0.0.1:{port}/pricing?lb_anon_id=<a UUID>'")
        uvicorn.run(create_app(), host="127.0.0.1", port=port, log_config=None)
        logging.shutdown()
    return 0


def main(argv: list[str] | None = None) -> int:
    """``serve`` runs the server; anything else (the default) runs the self-check."""
    return run_example(__doc__, self_check, serve, argv, port=8000)

if __name__ == "__main__":
    sys.exit(main())
