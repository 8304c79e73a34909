"""Django + logbridge in one file: per-request anonymous id, ip and user agent; login.

    python examples/django_app.py           # self-check: requests through Django's test Client
    python examples/django_app.py serve     # runserver on http://127.0.0.1:8000

Events go to a local collector started here, or to ``LOGBRIDGE_ENDPOINT`` if set; what
was sent is printed. The self-check plays a visitor who arrives through a cross-domain
link, browses, logs in and follows a link to the partner site, then checks the result.
In a real project the settings below go in ``settings.py`` (CSRF protection and real
authentication are left out of this demo).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

import django
from _webdemo import Sent, check_visit, destination, handler_config, run_example
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path

import logbridge
from logbridge.web import cross_domain_url

log = logging.getLogger("analytics")

#: The demo's user database: email -> user id.
USERS = {"ada@example.com": "user-1"}


def configure(endpoint: str, write_key: str, sent: Sent) -> None:
    """The project's settings: the middleware, its options, and logging to logbridge."""
    settings.configure(
        SECRET_KEY="dev-only-secret",
        ALLOWED_HOSTS=["127.0.0.1", "localhost", "testserver"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[],
        DATABASES={},
        SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "logbridge.django.AnalyticsMiddleware",
            f"{__name__}.bind_user",
        ],
        # The options of logbridge.web.IdentityPolicy; these are the defaults, spelled out.
        LOGBRIDGE_WEB={
            "cookie_name": "lb_anonymous_id",
            "query_param": "lb_anon_id",
            "secure": True,
            "samesite": "Lax",
            # "domain": "example.com",  # share the id across subdomains
        },
        LOGGING={
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {"analytics": handler_config(endpoint, write_key, sent)},
            "loggers": {
                "analytics": {"handlers": ["analytics"], "level": "INFO", "propagate": False}
            },
        },
    )
    django.setup()


def bind_user(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable[..., Any]:
    """Middleware: bind the logged-in user for the rest of the request."""

    def middleware(request: HttpRequest) -> HttpResponse:
        user_id = request.session.get("user_id")
        if not user_id:
            return get_response(request)
        with logbridge.bind(user_id=user_id):
            return get_response(request)

    return middleware


def home(request: HttpRequest) -> HttpResponse:
    log.info("page", extra={"page_name": "Home"})
    return HttpResponse("home")


def pricing(request: HttpRequest) -> HttpResponse:
    log.info("Pricing Viewed", extra={"plan": request.GET.get("plan", "pro")})
    return HttpResponse("pricing")


def login(request: HttpRequest) -> HttpResponse:
    email = request.POST.get("email", "")
    user_id = USERS.get(email)
    if request.method != "POST" or user_id is None:
        return HttpResponse("unknown user", status=401)
    anonymous_id = request.anonymous_id
    # Link the anonymous visitor to the user, then describe the user (reference docs).
    log.info("alias", extra={"user_id": user_id, "previous_id": anonymous_id})
    log.info("identify", extra={"user_id": user_id, "traits": {"email": email}})
    request.session["user_id"] = user_id
    return HttpResponse("welcome")


def dashboard(request: HttpRequest) -> HttpResponse:
    log.info("Dashboard Viewed")  # carries the bound user_id and anonymous_id
    return HttpResponse("dashboard")


def go_to_partner(request: HttpRequest) -> HttpResponse:
    anonymous_id = request.anonymous_id
    return HttpResponseRedirect(cross_domain_url("https://partner.example/landing", anonymous_id))


urlpatterns = [
    path("", home),
    path("pricing", pricing),
    path("login", login),
    path("dashboard", dashboard),
    path("go-to-partner", go_to_partner),
]


def self_check() -> int:
    """Drive a visitor's journey through the test Client; print and check what was sent."""
    from django.test import Client

    linked_id = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"  # set by the partner site's link
    browser = {"User-Agent": "Mozilla/5.0 (example)"}
    sent = Sent()
    with destination() as (endpoint, write_key):
        configure(endpoint, write_key, sent)
        client = Client(headers=browser, REMOTE_ADDR="203.0.113.9")
        first = client.get(f"/pricing?plan=pro&lb_anon_id={linked_id}")
        client.get("/")
        client.post("/login", {"email": "ada@example.com"})
        client.get("/dashboard")
        outbound = client.get("/go-to-partner")
        delivered = logbridge.flush(10) and sent.wait_for(5)
        logging.shutdown()

    cookie = first.cookies.get("lb_anonymous_id")
    cookie_ok = cookie is not None and (
        cookie.value,
        cookie["max-age"],
        cookie["path"],
        cookie["secure"],
        cookie["httponly"],
        cookie["samesite"],
    ) == (linked_id, 31536000, "/", True, True, "Lax")
    return check_visit(
        sent,
        delivered=delivered,
        cookie_ok=cookie_ok,
        location=outbound.headers.get("Location"),
        linked_id=linked_id,
        user_agent=browser["User-Agent"],
    )


def serve(port: int) -> int:
    """Run Django's development server; each delivered message is printed as it arrives."""
    from django.core.management import execute_from_command_line

    sent = Sent()
    with destination(echo=True) as (endpoint, write_key):
        configure(endpoint, write_key, sent)
        print(f"try: curl -i 'http://127.0.0.1:{port}/pricing?lb_anon_id=<a UUID>'")
        execute_from_command_line([sys.argv[0], "runserver", "--noreload", f"127.0.0.1:{port}"])
        logging.shutdown()
    return 0


def main(argv: list[str] | None = None) -> int:
    """``serve`` runs the server; anything else (the default) runs the self-check."""
    return run_example(__doc__, self_check, serve, argv, port=8000)

if __name__ == "__main__":
    sys.exit(main())
