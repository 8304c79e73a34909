"""Flask + logbridge: per-request anonymous id, ip and user agent; login with alias + identify.

    python examples/flask_app.py            # self-check: requests through Flask's test client
    python examples/flask_app.py serve      # a development server on http://127.0.0.1:5000

Events go to a local collector started here, or to ``LOGBRIDGE_ENDPOINT`` if set; what
was sent is printed. The self-check plays a visitor who arrives through a cross-domain
link, browses, logs in and follows a link to the partner site, then checks the result.
"""

from __future__ import annotations

import logging
import logging.config
import sys

import flask
from _webdemo import Sent, check_visit, cookie_header_ok, destination, handler_config, run_example
from flask.typing import ResponseReturnValue

import logbridge
from logbridge.web import cross_domain_url
from logbridge.wsgi import ANONYMOUS_ID_KEY, AnalyticsMiddleware

log = logging.getLogger("analytics")

#: The demo's user database: email -> user id.
USERS = {"ada@example.com": "user-1"}


def create_app() -> flask.Flask:
    """The application: the middleware wraps ``app.wsgi_app``; views just log."""
    app = flask.Flask(__name__)
    app.secret_key = "dev-only-secret"  # Flask's signed session cookie holds the user id
    # Cookie lb_anonymous_id (one year, Secure, HttpOnly, SameSite=Lax), links' lb_anon_id
    # adopted. Options: domain="example.com" to share it across subdomains, and more.
    app.wsgi_app = AnalyticsMiddleware(app.wsgi_app)  # type: ignore[method-assign]

    @app.before_request
    def bind_user() -> None:
        # Bound for this request only: the middleware gives each request its own context.
        if "user_id" in flask.session:
            logbridge.bind(user_id=flask.session["user_id"])

    @app.get("/")
    def home() -> str:
        log.info("page", extra={"page_name": "Home"})
        return "home"

    @app.get("/pricing")
    def pricing() -> str:
        log.info("Pricing Viewed", extra={"plan": flask.request.args.get("plan", "pro")})
        return "pricing"

    @app.post("/login")
    def login() -> tuple[str, int]:
        email = flask.request.form.get("email", "")
        user_id = USERS.get(email)
        if user_id is None:
            return "unknown user", 401
        anonymous_id = flask.request.environ[ANONYMOUS_ID_KEY]
        # Link the anonymous visitor to the user, then describe the user (reference docs).
        log.info("alias", extra={"user_id": user_id, "previous_id": anonymous_id})
        log.info("identify", extra={"user_id": user_id, "traits": {"email": email}})
        flask.session["user_id"] = user_id
        return "welcome", 200

    @app.get("/dashboard")
    def dashboard() -> str:
        log.info("Dashboard Viewed")  # carries the bound user_id and anonymous_id
        return "dashboard"

    @app.get("/go-to-partner")
    def go_to_partner() -> ResponseReturnValue:
        anonymous_id = flask.request.environ[ANONYMOUS_ID_KEY]
        return flask.redirect(cross_domain_url("https://partner.example/landing", anonymous_id))

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
    linked_id = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"  # set by the partner site's link
    browser = {"User-Agent": "Mozilla/5.0 (example)"}
    sent = Sent()
    with destination() as (endpoint, write_key):
        configure_logging(endpoint, write_key, sent)
        client = create_app().test_client()
        client.environ_base["REMOTE_ADDR"] = "203.0.113.9"
        first = client.get(f"/pricing?plan=pro&lb_anon_id={linked_id}", headers=browser)
        client.get("/", headers=browser)
        client.post("/login", data={"email": "ada@example.com"}, headers=browser)
        client.get("/dashboard", headers=browser)
        outbound = client.get("/go-to-partner", headers=browser)
        delivered = logbridge.flush(10) and sent.wait_for(5)
        logging.shutdown()

    return check_visit(
        sent,
        delivered=delivered,
        cookie_ok=cookie_header_ok(first.headers.get("Set-Cookie", ""), linked_id),
        location=outbound.headers.get("Location"),
        linked_id=linked_id,
        user_agent=browser["User-Agent"],
    )


def serve(port: int) -> int:
    """Run Flask's development server; each delivered message is printed as it arrives."""
    sent = Sent()
    with destination(echo=True) as (endpoint, write_key):
        configure_logging(endpoint, write_key, sent)
        print(f"try: curl -i 'http://127.0.0.1:{port}/pricing?lb_anon_id=<a UUID>'")
        create_app().run(host="127.0.0.1", port=port)
        logging.shutdown()
    return 0


def main(argv: list[str] | None = None) -> int:
    """``serve`` runs the server; anything else (the default) runs the self-check."""
    return run_example(__doc__, self_check, serve, argv, port=5000)

if __name__ == "__main__":
    sys.exit(main())
