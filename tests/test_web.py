"""The web identity policy, pure: cookie, id validation, adoption, stripping, client address."""

from __future__ import annotations

import dataclasses
import re
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logbridge.errors import ConfigurationError
from logbridge.web import (
    ONE_YEAR,
    SAFE_ID_PATTERN,
    IdentityPolicy,
    PolicyOptions,
    WebRequest,
    cross_domain_url,
    parse_cookie_header,
    request_from_environ,
    strip_query_param,
)
from tests.support import run_python
from tests.web_support import KNOWN, OTHER, attributes

WITH_PARAM = "a=1&lb_anon_id={}"


def request(**fields: Any) -> WebRequest:
    fields.setdefault("host", "www.example.com")
    fields.setdefault("peer", "203.0.113.9")
    return WebRequest(**fields)


class TestCookie:
    """The cookie the policy writes, and its attributes."""

    def test_defaults_are_the_documented_ones(self) -> None:
        """One year, Path=/, Secure, HttpOnly, SameSite=Lax and no Domain by default."""
        cookie = attributes(IdentityPolicy().cookie_header(KNOWN))
        assert (cookie["name"], cookie["value"]) == ("lb_anonymous_id", KNOWN)
        assert cookie["max-age"] == str(ONE_YEAR) == "31536000"
        assert cookie["path"] == "/"
        assert cookie["samesite"] == "Lax"
        assert "secure" in cookie
        assert "httponly" in cookie
        assert "expires" in cookie
        assert "domain" not in cookie

    def test_parent_domain_and_other_attributes_are_configurable(self) -> None:
        """A parent domain shares the cookie across subdomains; each attribute can change."""
        policy = IdentityPolicy(
            cookie_name="site_anon",
            domain=".example.com",
            max_age=3600,
            secure=False,
            httponly=False,
            samesite="strict",
        )
        cookie = attributes(policy.cookie_header(KNOWN))
        assert cookie["name"] == "site_anon"
        assert cookie["domain"] == ".example.com"
        assert cookie["max-age"] == "3600"
        assert cookie["samesite"] == "Strict"
        assert "secure" not in cookie
        assert "httponly" not in cookie

    def test_an_invalid_id_is_never_written(self) -> None:
        """cookie_header refuses a value that is not a valid id."""
        with pytest.raises(ValueError, match="not a valid anonymous id"):
            IdentityPolicy().cookie_header("x; Domain=evil.example")

    @pytest.mark.parametrize(
        ("options", "message"),
        [
            ({"cookie_name": "bad name"}, "cookie_name"),
            ({"query_param": "a=b"}, "query_param"),
            ({"max_age": 0}, "max_age"),
            ({"max_age": True}, "max_age"),
            ({"samesite": "sometimes"}, "samesite"),
            ({"samesite": "None", "secure": False}, "requires secure"),
            ({"domain": "example.com; Path=/x"}, "domain"),
            ({"path": "relative"}, "path"),
            ({"id_pattern": "("}, "id_pattern"),
            ({"secure": "yes"}, "secure"),
            ({"trusted_proxies": ("10.0.0.0/8",)}, "use_forwarded_for"),
            ({"use_forwarded_for": True, "trusted_proxies": ("not-an-ip",)}, "trusted_proxies"),
        ],
    )
    def test_bad_options_fail_at_configuration(self, options: dict[str, Any], message: str) -> None:
        """Every invalid option raises ConfigurationError naming it."""
        with pytest.raises(ConfigurationError, match=message):
            IdentityPolicy(**options)

    def test_the_typed_options_match_the_policy(self) -> None:
        """PolicyOptions (the middlewares' typed keywords) names every policy option."""
        fields = {f.name for f in dataclasses.fields(IdentityPolicy) if f.init}
        assert set(PolicyOptions.__annotations__) == fields

    def test_unknown_option_names_are_refused(self) -> None:
        """from_options lists the valid names when given an unknown one."""
        with pytest.raises(ConfigurationError, match="cookie_nam"):
            IdentityPolicy.from_options(options={"cookie_nam": "x"})


class TestIdValidation:
    """Which ids may be used: a UUID by default, never anything unsafe in a cookie."""

    @pytest.mark.parametrize("value", [KNOWN, KNOWN.upper(), str(uuid.uuid1())])
    def test_uuids_are_accepted(self, value: str) -> None:
        """A canonical UUID, any version and case, is a valid id."""
        assert IdentityPolicy().is_valid_id(value)

    @pytest.mark.parametrize(
        "value",
        [
            "",
            "cookieless",
            "not-a-uuid-at-all",
            KNOWN + "0",
            "{" + KNOWN + "}",
            KNOWN + "; Domain=evil.example",
            KNOWN + "\r\nSet-Cookie: x=y",
            None,
        ],
    )
    def test_anything_else_is_rejected_by_default(self, value: Any) -> None:
        """Non-UUIDs, including cookie-attribute and header injections, are rejected."""
        assert not IdentityPolicy().is_valid_id(value)

    def test_the_safe_pattern_takes_other_id_formats(self) -> None:
        """SAFE_ID_PATTERN accepts 8-64 letters, digits, dot, dash and underscore."""
        policy = IdentityPolicy(id_pattern=SAFE_ID_PATTERN)
        assert policy.is_valid_id("anon_7fK2.x-9")
        assert not policy.is_valid_id("short")
        assert not policy.is_valid_id("a" * 65)
        assert not policy.is_valid_id("has space9")

    def test_a_permissive_pattern_still_cannot_admit_cookie_breaking_text(self) -> None:
        """Even with id_pattern='.*', separators, quotes and overlong values are refused."""
        policy = IdentityPolicy(id_pattern=".*")
        assert policy.is_valid_id("anything-goes!")
        for value in ("a;b", "a,b", 'a"b', "a b", "a\\b", "é", "x" * 129):
            assert not policy.is_valid_id(value), value


class TestDecide:
    """Which anonymous id a request gets, and whether the cookie is set."""

    def test_a_first_visit_gets_a_new_uuid_and_a_cookie(self) -> None:
        """Without a cookie or parameter, a fresh UUID4 is made and must be stored."""
        identity = IdentityPolicy().decide(request())
        assert uuid.UUID(identity.anonymous_id).version == 4
        assert (identity.source, identity.set_cookie) == ("new", True)

    def test_a_valid_cookie_is_kept_without_setting_it_again(self) -> None:
        """A returning visitor keeps the cookie's id; no Set-Cookie is needed."""
        identity = IdentityPolicy().decide(request(cookies={"lb_anonymous_id": KNOWN}))
        assert (identity.anonymous_id, identity.source, identity.set_cookie) == (
            KNOWN,
            "cookie",
            False,
        )

    def test_an_invalid_cookie_is_replaced(self) -> None:
        """A tampered cookie is not used: a new id is made and the cookie overwritten."""
        identity = IdentityPolicy().decide(request(cookies={"lb_anonymous_id": "<script>"}))
        assert identity.anonymous_id != "<script>"
        assert (identity.source, identity.set_cookie) == ("new", True)

    def test_the_query_parameter_is_adopted_when_there_is_no_cookie(self) -> None:
        """A cross-domain link's id becomes this site's id and is stored in the cookie."""
        identity = IdentityPolicy().decide(request(query_string=f"lb_anon_id={KNOWN}"))
        assert (identity.anonymous_id, identity.source, identity.set_cookie) == (
            KNOWN,
            "query",
            True,
        )

    def test_the_cookie_wins_over_the_query_parameter(self) -> None:
        """An id this site already knows is kept, as the reference SDKs do."""
        identity = IdentityPolicy().decide(
            request(cookies={"lb_anonymous_id": KNOWN}, query_string=f"lb_anon_id={OTHER}")
        )
        assert (identity.anonymous_id, identity.set_cookie) == (KNOWN, False)

    def test_an_invalid_query_parameter_is_ignored(self) -> None:
        """A link cannot choose an arbitrary value: an invalid id is not adopted."""
        identity = IdentityPolicy().decide(
            request(query_string="lb_anon_id=evil%3B%20Domain%3Dexample.net")
        )
        assert identity.source == "new"
        assert "evil" not in identity.anonymous_id

    def test_names_are_configurable(self) -> None:
        """The cookie and parameter names come from the policy."""
        policy = IdentityPolicy(cookie_name="dd_anonymous_id", query_param="dd_anon_id")
        assert policy.decide(request(cookies={"dd_anonymous_id": KNOWN})).anonymous_id == KNOWN
        adopted = policy.decide(request(query_string=f"dd_anon_id={OTHER}"))
        assert adopted.anonymous_id == OTHER
        ignored = policy.decide(request(query_string=f"lb_anon_id={OTHER}"))
        assert ignored.source == "new"

    def test_adoption_can_be_turned_off(self) -> None:
        """With query_param=None the parameter is neither adopted nor stripped."""
        identity = IdentityPolicy(query_param=None).decide(
            request(query_string=f"lb_anon_id={KNOWN}")
        )
        assert identity.source == "new"
        assert identity.context["page"]["search"] == f"?lb_anon_id={KNOWN}"

    def test_cookieless_mode_uses_the_static_id_and_no_cookie(self) -> None:
        """Company-level tracking: 'cookieless' for everyone, ip and userAgent kept."""
        identity = IdentityPolicy(cookieless=True).decide(
            request(cookies={"lb_anonymous_id": KNOWN}, user_agent="UA/1")
        )
        assert (identity.anonymous_id, identity.source, identity.set_cookie) == (
            "cookieless",
            "cookieless",
            False,
        )
        assert identity.context["ip"] == "203.0.113.9"
        assert identity.context["userAgent"] == "UA/1"


class TestContext:
    """The context bound for a request: ip, userAgent and page, without the parameter."""

    def test_ip_user_agent_and_page_are_bound(self) -> None:
        """The bindings carry the id and context.ip, userAgent and page."""
        identity = IdentityPolicy().decide(
            request(
                scheme="https",
                path="/pricing",
                query_string="plan=pro",
                user_agent="Mozilla/5.0",
                referrer="https://www.example.com/",
            )
        )
        assert identity.bindings() == {
            "anonymous_id": identity.anonymous_id,
            "context": {
                "ip": "203.0.113.9",
                "userAgent": "Mozilla/5.0",
                "page": {
                    "path": "/pricing",
                    "search": "?plan=pro",
                    "url": "https://www.example.com/pricing?plan=pro",
                    "referrer": "https://www.example.com/",
                },
            },
        }

    def test_the_parameter_is_stripped_from_url_search_and_referrer(self) -> None:
        """The id in the link never reaches the logged page URL, search or referrer."""
        identity = IdentityPolicy().decide(
            request(
                path="/landing",
                query_string=f"utm_source=x&lb_anon_id={KNOWN}&q=a%20b",
                referrer=f"https://www.example.com/prev?lb_anon_id={KNOWN}#top",
            )
        )
        page = identity.context["page"]
        assert page["search"] == "?utm_source=x&q=a%20b"
        assert page["url"] == "http://www.example.com/landing?utm_source=x&q=a%20b"
        assert page["referrer"] == "https://www.example.com/prev#top"
        assert KNOWN not in repr(identity.context)

    def test_page_context_can_be_turned_off(self) -> None:
        """With page_context=False only ip and userAgent are bound."""
        identity = IdentityPolicy(page_context=False).decide(request(user_agent="UA"))
        assert identity.context == {"ip": "203.0.113.9", "userAgent": "UA"}

    def test_nothing_unknown_is_bound(self) -> None:
        """No peer address, user agent or host: those keys are absent, not empty."""
        identity = IdentityPolicy().decide(WebRequest(peer="testclient"))
        assert identity.context == {"page": {"path": "/"}}


class TestRedirect:
    """redirect_clean_url: answer a link carrying the parameter with a clean redirect."""

    def test_off_by_default(self) -> None:
        """Without the option no redirect is decided."""
        identity = IdentityPolicy().decide(request(query_string=f"lb_anon_id={KNOWN}"))
        assert identity.redirect_to is None

    def test_get_with_the_parameter_redirects_to_the_clean_relative_url(self) -> None:
        """The redirect keeps the path and other parameters and drops the id."""
        identity = IdentityPolicy(redirect_clean_url=True).decide(
            request(path="/landing", query_string=f"a=1&lb_anon_id={KNOWN}")
        )
        assert identity.redirect_to == "/landing?a=1"
        assert (identity.anonymous_id, identity.set_cookie) == (KNOWN, True)

    def test_only_safe_methods_and_only_with_the_parameter(self) -> None:
        """A POST, or a GET without the parameter, is never redirected."""
        policy = IdentityPolicy(redirect_clean_url=True)
        post = request(method="POST", query_string=f"lb_anon_id={KNOWN}")
        assert policy.decide(post).redirect_to is None
        assert policy.decide(request(query_string="a=1")).redirect_to is None

    def test_a_double_slash_path_cannot_redirect_off_site(self) -> None:
        """A path like //evil.example stays on this site (no protocol-relative Location)."""
        identity = IdentityPolicy(redirect_clean_url=True).decide(
            request(path="//evil.example/x", query_string=f"lb_anon_id={KNOWN}")
        )
        assert identity.redirect_to == "/evil.example/x"

    def test_the_location_is_always_url_safe(self) -> None:
        """Control characters, spaces and backslashes are percent-encoded, never sent raw."""
        identity = IdentityPolicy(redirect_clean_url=True).decide(
            request(path="/\\evil\t x", query_string=f"q=a b\r\nX: y&lb_anon_id={KNOWN}")
        )
        assert identity.redirect_to == "/%5Cevil%09%20x?q=a%20b%0D%0AX:%20y"


class TestClientIp:
    """The client's address: the peer, X-Forwarded-For only when configured."""

    def test_the_peer_by_default_and_forwarded_for_ignored(self) -> None:
        """A client cannot choose its logged ip with a header by default."""
        assert IdentityPolicy().client_ip("203.0.113.9", "198.51.100.7") == "203.0.113.9"

    def test_one_trusted_hop_without_a_proxy_list(self) -> None:
        """use_forwarded_for alone trusts the peer as the one proxy: the last entry is used."""
        policy = IdentityPolicy(use_forwarded_for=True)
        assert policy.client_ip("10.0.0.2", "1.1.1.1, 198.51.100.7") == "198.51.100.7"
        assert policy.client_ip("10.0.0.2", None) == "10.0.0.2"

    def test_trusted_proxies_are_skipped_from_the_right(self) -> None:
        """The first address that is not a trusted proxy is the client; spoofed ones are left."""
        policy = IdentityPolicy(use_forwarded_for=True, trusted_proxies=("10.0.0.0/8",))
        chain = "6.6.6.6, 198.51.100.7, 10.1.2.3"
        assert policy.client_ip("10.0.0.2", chain) == "198.51.100.7"

    def test_an_untrusted_peer_is_not_believed(self) -> None:
        """With a proxy list, a request straight from elsewhere keeps its own address."""
        policy = IdentityPolicy(use_forwarded_for=True, trusted_proxies=("10.0.0.0/8",))
        assert policy.client_ip("203.0.113.9", "198.51.100.7") == "203.0.113.9"

    def test_garbage_in_the_chain_stops_the_walk(self) -> None:
        """An unparsable entry is never logged: the nearest known address is used."""
        policy = IdentityPolicy(use_forwarded_for=True, trusted_proxies=("10.0.0.0/8",))
        assert policy.client_ip("10.0.0.2", "198.51.100.7, <script>") == "10.0.0.2"
        assert IdentityPolicy(use_forwarded_for=True).client_ip("10.0.0.2", "junk") == "10.0.0.2"

    def test_ports_brackets_ipv6_and_mapped_addresses(self) -> None:
        """Entries with ports and brackets parse; IPv4-mapped IPv6 becomes IPv4."""
        policy = IdentityPolicy(use_forwarded_for=True, trusted_proxies="::1")
        assert policy.client_ip("::1", "[2001:db8::1]:443") == "2001:db8::1"
        assert policy.client_ip("::1", "198.51.100.7:5000") == "198.51.100.7"
        assert IdentityPolicy().client_ip("::ffff:203.0.113.9") == "203.0.113.9"

    def test_no_valid_peer_means_no_ip(self) -> None:
        """A non-address peer (a test client's name) gives no ip, even with the header."""
        assert IdentityPolicy(use_forwarded_for=True).client_ip("testclient", "1.2.3.4") is None


class TestHelpers:
    """Cookie parsing, parameter stripping, links and the environ reader."""

    def test_parse_cookie_header(self) -> None:
        """Pairs are split on ';', quotes removed, the first of a name kept, junk skipped."""
        header = f'a=1; lb_anonymous_id="{KNOWN}"; junk; =x; lb_anonymous_id={OTHER}'
        assert parse_cookie_header(header) == {"a": "1", "lb_anonymous_id": KNOWN}
        assert parse_cookie_header(None) == {}

    def test_strip_query_param_keeps_the_rest_raw(self) -> None:
        """Other parameters keep their encoding and order; all values are returned decoded."""
        assert strip_query_param("a=%2F&lb_anon_id=x%2By&b&lb_anon_id=", "lb_anon_id") == (
            "a=%2F&b",
            ["x+y", ""],
        )

    def test_cross_domain_url_round_trips_through_decide(self) -> None:
        """A link made for another domain is adopted there, and replaces an older id."""
        url = cross_domain_url(f"https://example.io/landing?x=1&lb_anon_id={OTHER}#f", KNOWN)
        assert url == f"https://example.io/landing?x=1&lb_anon_id={KNOWN}#f"
        query = url.split("?", 1)[1].split("#", 1)[0]
        assert IdentityPolicy().decide(request(query_string=query)).anonymous_id == KNOWN

    def test_request_from_environ(self) -> None:
        """A WSGI environ's fields, with the path re-encoded from WSGI's latin-1 form."""
        environ = {
            "REQUEST_METHOD": "POST",
            "wsgi.url_scheme": "https",
            "SERVER_NAME": "example.com",
            "SERVER_PORT": "8443",
            "SCRIPT_NAME": "/app",
            "PATH_INFO": "/café".encode().decode("latin-1"),
            "QUERY_STRING": "a=1",
            "HTTP_COOKIE": f"lb_anonymous_id={KNOWN}",
            "REMOTE_ADDR": "203.0.113.9",
            "HTTP_USER_AGENT": "UA",
            "HTTP_X_FORWARDED_FOR": "1.2.3.4",
            "HTTP_REFERER": "https://ref.example/",
        }
        assert request_from_environ(environ) == WebRequest(
            method="POST",
            scheme="https",
            host="example.com:8443",
            path="/app/caf%C3%A9",
            query_string="a=1",
            cookies={"lb_anonymous_id": KNOWN},
            peer="203.0.113.9",
            user_agent="UA",
            forwarded_for="1.2.3.4",
            referrer="https://ref.example/",
        )


class TestRobustness:
    """Whatever a client sends, deciding never fails and never yields an unsafe id."""

    @given(
        cookie=st.text(max_size=200),
        query=st.one_of(st.text(max_size=200), st.text(max_size=80).map(WITH_PARAM.format)),
        path=st.text(max_size=40),
        xff=st.text(max_size=60),
    )
    def test_decide_is_total(self, cookie: str, query: str, path: str, xff: str) -> None:
        """Arbitrary Cookie, query, path and X-Forwarded-For give a valid id and no error."""
        policy = IdentityPolicy(use_forwarded_for=True, redirect_clean_url=True)
        identity = policy.decide(
            WebRequest(
                path=path,
                cookies=parse_cookie_header(cookie),
                query_string=query,
                forwarded_for=xff,
                peer="10.0.0.1",
                host="example.com",
            )
        )
        assert policy.is_valid_id(identity.anonymous_id)
        assert policy.cookie_header(identity.anonymous_id).count(";") == 6
        if identity.redirect_to is not None:
            assert re.fullmatch(r"/(?![/\\])[!-~]*", identity.redirect_to), identity.redirect_to


class TestImports:
    """The web modules stay out of the way of apps that don't use them."""

    def test_import_logbridge_imports_no_web_framework(self) -> None:
        """Neither ``import logbridge`` nor ``logbridge.web`` loads a framework module."""
        result = run_python(
            """
            import sys
            import logbridge, logbridge.web, logbridge.wsgi, logbridge.asgi
            frameworks = {"flask", "werkzeug", "django", "starlette", "fastapi", "asgiref"}
            print(sorted(m for m in sys.modules if m.split(".")[0] in frameworks))
            """
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "[]"
