"""OAuth 2: signed client assertions, bearer tokens, refresh and refusals, against the collector."""

from __future__ import annotations

import dataclasses
import json
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jwt
import pytest

from logbridge.collector import Collector, Faults
from logbridge.collector.oauth import TokenIssuer
from logbridge.destinations.http import HttpSettings
from logbridge.destinations.oauth import (
    DEFAULT_AUTH_SERVER,
    DEFAULT_SCOPE,
    OAuth,
    TokenError,
    load_private_key,
)
from logbridge.destinations.segment import SegmentDestination
from logbridge.errors import ConfigurationError
from tests.oauth_support import CLIENT_ID, KEY_ID, key_pair, leaks, new_key_pair
from tests.support import ROOT

CollectorFactory = Callable[..., Collector]
ITEM = b'{"type":"track","event":"Signed Up","userId":"user-1","messageId":"m-%d"}'


def item(number: int) -> bytes:
    """One serialised track message with messageId ``m-<number>``."""
    return ITEM % number


class Clock:
    """A monotonic clock the test moves by hand (the token's refresh schedule runs on it)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def oauth_collector(
    factory: CollectorFactory,
    faults: Faults | None = None,
    write_key: str | None = None,
    **issuer: Any,
) -> Collector:
    """A collector whose token endpoint trusts the session's test key."""
    issuer.setdefault("client_id", CLIENT_ID)
    issuer.setdefault("key_id", KEY_ID)
    return factory(
        oauth=TokenIssuer(key_pair().public_pem, **issuer), faults=faults, write_key=write_key
    )


def client(collector: Collector, *, private_pem: str | None = None, **kwargs: Any) -> OAuth:
    """An OAuth client of ``collector``'s token endpoint."""
    key = load_private_key(private_pem or key_pair().private_pem)
    return OAuth(CLIENT_ID, key, KEY_ID, auth_server=collector.url, **kwargs)


def destination(collector: Collector, auth: OAuth) -> SegmentDestination:
    """Segment's batch API on ``collector`` with ``auth``."""
    return SegmentDestination(collector.endpoint, HttpSettings(gzip=False), auth)


def paths(collector: Collector) -> list[tuple[str, int]]:
    """Each request the collector answered, as (path, status)."""
    return [(request.path, request.status) for request in collector.requests]


@dataclasses.dataclass(frozen=True)
class OptionsStub:
    """The options OAuth.from_options reads, as the handler's Options carries them."""

    oauth_client_id: str | None = None
    oauth_client_key: str | None = None
    oauth_key_id: str | None = None
    oauth_auth_server: str | None = None
    oauth_scope: str | None = None
    timeout: float = 5.0
    verify: bool | str = True
    proxies: Mapping[str, str] | None = None
    session: Any = None


def full_options(**changes: Any) -> OptionsStub:
    """Options with every OAuth setting given (the key as PEM text), then ``changes``."""
    base = OptionsStub(CLIENT_ID, key_pair().private_pem, KEY_ID)
    return dataclasses.replace(base, **changes)


class TestAssertion:
    """The client assertion is the JWT Segment's token server expects."""

    def test_header_names_the_key_and_the_algorithm(self, collector_factory: CollectorFactory):
        """The header is alg RS256, typ JWT and kid = the key id."""
        auth = client(oauth_collector(collector_factory))
        header = jwt.get_unverified_header(auth.assertion())
        assert header == {"alg": "RS256", "typ": "JWT", "kid": KEY_ID}

    def test_claims_follow_analytics_node(self, collector_factory: CollectorFactory):
        """iss = sub = client id, aud = the server, iat 5 s back, exp 60 s after it, jti a uuid4."""
        collector = oauth_collector(collector_factory)
        before = int(time.time())
        claims = jwt.decode(
            client(collector).assertion(), key_pair().public_pem, algorithms=["RS256"],
            audience=collector.url,
        )
        assert claims["iss"] == claims["sub"] == CLIENT_ID
        assert claims["aud"] == collector.url
        assert before - 6 <= claims["iat"] <= int(time.time()) - 4
        assert claims["exp"] - claims["iat"] == 60
        assert uuid.UUID(claims["jti"]).version == 4

    def test_each_assertion_has_its_own_jti(self, collector_factory: CollectorFactory):
        """Two assertions never share a jti (the server refuses a replayed one)."""
        auth = client(oauth_collector(collector_factory))
        first, second = (jwt.decode(auth.assertion(), options={"verify_signature": False})
                         for _ in range(2))
        assert first["jti"] != second["jti"]

    def test_aud_has_no_trailing_slash(self, collector_factory: CollectorFactory):
        """An auth server given with a trailing slash signs aud without it, as the SDKs do."""
        collector = oauth_collector(collector_factory)
        key = load_private_key(key_pair().private_pem)
        auth = OAuth(CLIENT_ID, key, KEY_ID, auth_server=collector.url + "/")
        claims = jwt.decode(auth.assertion(), options={"verify_signature": False})
        assert claims["aud"] == collector.url
        assert auth.token_url == collector.url + "/token"


class TestTokens:
    """Tokens are fetched once, sent as Bearer, and refreshed at half their lifetime."""

    def test_a_batch_is_sent_with_a_bearer_token(self, collector_factory: CollectorFactory):
        """The first request fetches a token and the batch carries it as Authorization: Bearer."""
        collector = oauth_collector(collector_factory)
        outcome = destination(collector, client(collector)).send([item(1)], timeout=5)
        assert outcome.ok
        assert paths(collector) == [("/token", 200), ("/v1/batch", 200)]
        assert collector.requests[1].headers["Authorization"] == "Bearer ***"
        assert [m["messageId"] for m in collector.messages] == ["m-1"]

    def test_the_token_is_reused(self, collector_factory: CollectorFactory):
        """Three batches cost one token request."""
        collector = oauth_collector(collector_factory)
        sender = destination(collector, client(collector))
        assert all(sender.send([item(n)], timeout=5).ok for n in range(3))
        assert [path for path, _ in paths(collector)].count("/token") == 1

    def test_refreshed_at_half_its_lifetime(self, collector_factory: CollectorFactory):
        """A token of 100 s is used until 50 s have passed, then a new one is fetched."""
        collector = oauth_collector(collector_factory, token_lifetime=100)
        clock = Clock()
        auth = client(collector, monotonic=clock)
        first = auth.headers()["Authorization"]
        clock.now += 49
        assert auth.headers()["Authorization"] == first
        clock.now += 2
        assert auth.headers()["Authorization"] != first
        assert collector.oauth is not None and collector.oauth.issued == 2

    def test_failed_early_refresh_keeps_the_working_token(
        self, collector_factory: CollectorFactory
    ):
        """When the refresh at half-life fails, the unexpired token is still sent."""
        collector = oauth_collector(collector_factory, token_lifetime=100)
        clock = Clock()
        auth = client(collector, monotonic=clock)
        first = auth.headers()["Authorization"]
        collector.stop()  # the token endpoint is gone
        clock.now += 60
        assert auth.headers()["Authorization"] == first

    def test_expired_token_is_not_sent(self, collector_factory: CollectorFactory):
        """Past expires_in, a token is never sent again: a failed fetch is an error."""
        collector = oauth_collector(collector_factory, token_lifetime=100)
        clock = Clock()
        auth = client(collector, monotonic=clock)
        auth.headers()
        collector.stop()
        clock.now += 101
        with pytest.raises(TokenError):
            auth.headers()

    def test_one_token_request_for_many_threads(self, collector_factory: CollectorFactory):
        """Eight threads asking at once share one token request."""
        collector = oauth_collector(collector_factory)
        auth = client(collector)
        barrier = threading.Barrier(8)
        seen: list[str] = []

        def ask() -> None:
            barrier.wait()
            seen.append(auth.headers()["Authorization"])

        threads = [threading.Thread(target=ask) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert len(seen) == 8 and len(set(seen)) == 1
        assert collector.oauth is not None and collector.oauth.issued == 1


class TestWriteKeyInTheBody:
    """Under OAuth the write key still names the source, in the body (Segment's HTTP API)."""

    def test_body_carries_the_write_key(self, collector_factory: CollectorFactory):
        """A collector that wants a write key takes a bearer batch whose body has it."""
        collector = oauth_collector(collector_factory, write_key="source-key")
        sender = SegmentDestination(
            collector.endpoint, HttpSettings(), client(collector), write_key="source-key"
        )
        assert sender.send([item(1)], timeout=5).ok
        assert collector.requests[-1].auth_user is None  # no Basic auth: the token
        assert [m["messageId"] for m in collector.messages] == ["m-1"]

    def test_without_it_the_source_is_unknown(self, collector_factory: CollectorFactory):
        """A bearer batch without writeKey is refused by a collector that wants one."""
        collector = oauth_collector(collector_factory, write_key="source-key")
        outcome = destination(collector, client(collector)).send([item(1)], timeout=5)
        assert outcome.error is not None and outcome.error.status == 401
        assert "missing write key" in str(outcome.error)

    def test_the_key_counts_in_the_envelope(self):
        """The writeKey field is part of the envelope the batch limits leave room for."""
        plain = SegmentDestination("https://api.segment.io/v1/batch", HttpSettings())
        keyed = SegmentDestination(
            "https://api.segment.io/v1/batch", HttpSettings(), write_key="k" * 32
        )
        grown = keyed.limits.envelope_bytes - plain.limits.envelope_bytes
        assert grown == len(b',"writeKey":""') + 32
        assert len(keyed.body([item(1)])) - len(plain.body([item(1)])) == grown


class TestLifecycle:
    """A destination passes fork and close on to its OAuth."""

    def test_after_fork_the_token_is_kept_and_requests_work(
        self, collector_factory: CollectorFactory
    ):
        """reset_after_fork (in a forked child) keeps the token and makes a new session."""
        collector = oauth_collector(collector_factory)
        auth = client(collector)
        sender = destination(collector, auth)
        assert sender.send([item(1)], timeout=5).ok
        inherited = auth._session
        sender.reset_after_fork()
        assert auth._session is not inherited
        assert sender.send([item(2)], timeout=5).ok
        assert collector.oauth is not None and collector.oauth.issued == 1

    def test_close_closes_the_token_session(self, collector_factory: CollectorFactory):
        """Closing the destination closes the OAuth session's connections too."""
        collector = oauth_collector(collector_factory)
        auth = client(collector)
        sender = destination(collector, auth)
        assert sender.send([item(1)], timeout=5).ok
        pool = auth._session.get_adapter(collector.url).poolmanager
        assert len(pool.pools) == 1
        sender.close()
        assert len(pool.pools) == 0


class TestRefusals:
    """A refused token is replaced once; token-endpoint failures say what the server said."""

    def test_revoked_token_is_replaced_and_the_batch_retried(
        self, collector_factory: CollectorFactory
    ):
        """A 401 from the API clears the token; a fresh one is fetched and the batch delivered."""
        collector = oauth_collector(collector_factory)
        sender = destination(collector, client(collector))
        assert sender.send([item(1)], timeout=5).ok
        assert collector.oauth is not None
        collector.oauth.revoke()
        outcome = sender.send([item(2)], timeout=5)
        assert outcome.ok
        assert paths(collector)[2:] == [("/v1/batch", 401), ("/token", 200), ("/v1/batch", 200)]
        assert [m["messageId"] for m in collector.messages] == ["m-1", "m-2"]

    def test_injected_401_forces_a_refresh(self, collector_factory: CollectorFactory):
        """An API 401 (the collector's fault) costs one new token and one retry, not the batch."""
        collector = oauth_collector(collector_factory, faults=Faults(status=401, status_count=1))
        outcome = destination(collector, client(collector)).send([item(1)], timeout=5)
        assert outcome.ok
        assert paths(collector) == [
            ("/token", 200), ("/v1/batch", 401), ("/token", 200), ("/v1/batch", 200),
        ]

    def test_refused_forgets_the_token_once(self, collector_factory: CollectorFactory):
        """refused(401) is True while there is a token to forget, then False; 500 is no refusal."""
        auth = client(oauth_collector(collector_factory))
        auth.headers()
        assert auth.refused(500) is False
        assert auth.refused(401) is True
        assert auth.refused(401) is False

    def test_rate_limited_token_request_carries_retry_after(
        self, collector_factory: CollectorFactory
    ):
        """A 429 from the token endpoint is a retryable failure that waits its Retry-After."""
        collector = oauth_collector(collector_factory, rate_limit_count=1, retry_after="7")
        sender = destination(collector, client(collector))
        outcome = sender.send([item(1)], timeout=5)
        assert outcome.error is not None and outcome.error.retryable
        assert outcome.error.status == 429
        assert outcome.retry_after == 7.0 and outcome.unavailable
        assert "rate_limited: too many token requests" in str(outcome.error)
        assert sender.send([item(1)], timeout=5).ok

    def test_wrong_key_fails_with_the_servers_words(self, collector_factory: CollectorFactory):
        """A key the server does not know: the batch fails for good with invalid_client."""
        collector = oauth_collector(collector_factory)
        stranger = new_key_pair()
        outcome = destination(collector, client(collector, private_pem=stranger.private_pem)).send(
            [item(1)], timeout=5
        )
        assert outcome.error is not None and not outcome.error.retryable
        assert outcome.error.status == 401
        assert "invalid_client: the assertion's signature does not verify" in str(outcome.error)
        assert paths(collector) == [("/token", 401)]
        assert not leaks(str(outcome.error), stranger.private_pem)

    def test_unreachable_token_endpoint_is_retryable(self, collector_factory: CollectorFactory):
        """No answer from the token endpoint: a retryable error that names the URL."""
        collector = oauth_collector(collector_factory)
        auth = client(collector)
        api = collector_factory()
        collector.stop()
        outcome = destination(api, auth).send([item(1)], timeout=5)
        assert outcome.error is not None and outcome.error.retryable
        assert f"{collector.url}/token" in str(outcome.error)
        assert api.messages == []

    def test_clock_off_is_corrected_with_the_servers_date(
        self, collector_factory: CollectorFactory
    ):
        """A server an hour ahead finds the assertion expired; one retry on its clock succeeds."""
        hour_ahead = lambda: time.time() + 3600  # noqa: E731
        collector = oauth_collector(collector_factory, clock=hour_ahead)
        auth = client(collector)
        assert auth.headers()["Authorization"].startswith("Bearer ")
        assert paths(collector) == [("/token", 400), ("/token", 200)]


class TestSecrets:
    """The private key never shows in a repr, an error or a log."""

    def test_repr_hides_the_key(self, collector_factory: CollectorFactory):
        """repr(OAuth) names the client and server, not the key."""
        auth = client(oauth_collector(collector_factory))
        assert "key='***'" in repr(auth)
        assert not leaks(repr(auth), key_pair().private_pem)

    def test_damaged_key_error_shows_no_key_material(self):
        """A damaged PEM is refused naming oauth_client_key, without quoting it."""
        damaged = key_pair().private_pem.replace("A", "*", 40)
        with pytest.raises(ConfigurationError, match="oauth_client_key") as caught:
            load_private_key(damaged)
        assert not leaks(str(caught.value), damaged)


class TestFromOptions:
    """OAuth.from_options checks the options at start-up, naming the one that is wrong."""

    def test_no_oauth_options_means_no_oauth(self):
        """Without any oauth_* option there is no OAuth (Basic auth applies)."""
        assert OAuth.from_options(OptionsStub()) is None

    def test_defaults(self):
        """The auth server and scope default to Segment's US server and tracking_api:write."""
        auth = OAuth.from_options(full_options())
        assert auth is not None
        assert (auth.auth_server, auth.scope) == (DEFAULT_AUTH_SERVER, DEFAULT_SCOPE)

    def test_key_from_a_file(self, tmp_path: Path):
        """oauth_client_key may be the path of a PEM file."""
        private, _ = key_pair().write(tmp_path)
        auth = OAuth.from_options(full_options(oauth_client_key=str(private)))
        assert auth is not None and auth.client_id == CLIENT_ID

    @pytest.mark.parametrize("missing", ["oauth_client_id", "oauth_client_key", "oauth_key_id"])
    def test_each_setting_is_required(self, missing: str):
        """With some OAuth settings given, a missing one is named."""
        with pytest.raises(ConfigurationError, match=f"{missing} is missing"):
            OAuth.from_options(full_options(**{missing: None}))

    def test_unreadable_key_file_is_named(self, tmp_path: Path):
        """A key path that cannot be read names oauth_client_key and the path."""
        path = tmp_path / "absent.pem"
        with pytest.raises(ConfigurationError, match="oauth_client_key") as caught:
            OAuth.from_options(full_options(oauth_client_key=str(path)))
        assert str(path) in str(caught.value)

    def test_not_an_rsa_key(self):
        """An EC key cannot sign RS256: refused at start-up."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        with pytest.raises(ConfigurationError, match="oauth_client_key must be an RSA"):
            OAuth.from_options(full_options(oauth_client_key=pem))

    def test_bad_auth_server(self):
        """An auth server that is not an http(s) URL is named."""
        with pytest.raises(ConfigurationError, match="oauth_auth_server"):
            OAuth.from_options(full_options(oauth_auth_server="oauth2.segment.io"))

    def test_without_the_extra(self, monkeypatch: pytest.MonkeyPatch):
        """Without PyJWT, configuring OAuth fails at start-up naming logbridge[oauth]."""
        monkeypatch.setitem(sys.modules, "jwt", None)
        with pytest.raises(ConfigurationError, match=r"pip install 'logbridge\[oauth\]'"):
            OAuth.from_options(full_options())


class TestTokenEndpoint:
    """The collector's /token checks what a real authorisation server checks."""

    def post(self, collector: Collector, **form: str) -> tuple[int, dict[str, Any]]:
        """POST ``form`` to the collector's token endpoint; status and JSON answer."""
        import requests

        base = {
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "scope": DEFAULT_SCOPE,
        }
        response = requests.post(collector.url + "/token", data={**base, **form}, timeout=5)
        return response.status_code, json.loads(response.text)

    def test_issues_a_token(self, collector_factory: CollectorFactory):
        """A good assertion gets an access token of the configured lifetime."""
        collector = oauth_collector(collector_factory, token_lifetime=120)
        status, answer = self.post(collector, client_assertion=client(collector).assertion())
        assert status == 200
        assert answer["token_type"] == "Bearer" and answer["expires_in"] == 120
        assert len(answer["access_token"]) >= 32

    def test_replayed_assertion_is_refused(self, collector_factory: CollectorFactory):
        """The same assertion (same jti) is good once."""
        collector = oauth_collector(collector_factory)
        assertion = client(collector).assertion()
        assert self.post(collector, client_assertion=assertion)[0] == 200
        status, answer = self.post(collector, client_assertion=assertion)
        assert (status, answer["error"]) == (400, "invalid_request")
        assert "jti" in answer["error_description"]

    def test_other_client_id_is_refused(self, collector_factory: CollectorFactory):
        """An assertion for another client id is invalid_client."""
        collector = oauth_collector(collector_factory)
        key = load_private_key(key_pair().private_pem)
        other = OAuth("someone-else", key, KEY_ID, auth_server=collector.url)
        status, answer = self.post(collector, client_assertion=other.assertion())
        assert (status, answer["error"]) == (401, "invalid_client")

    def test_wrong_audience_is_refused(self, collector_factory: CollectorFactory):
        """An assertion meant for Segment's server is not good here."""
        collector = oauth_collector(collector_factory)
        key = load_private_key(key_pair().private_pem)
        segment = OAuth(CLIENT_ID, key, KEY_ID, auth_server=DEFAULT_AUTH_SERVER)
        status, answer = self.post(collector, client_assertion=segment.assertion())
        assert (status, answer["error"]) == (401, "invalid_client")
        assert "aud" in answer["error_description"]

    def test_wrong_grant_and_scope(self, collector_factory: CollectorFactory):
        """Another grant type or scope is refused with the RFC 6749 error code."""
        collector = oauth_collector(collector_factory)
        assertion = client(collector).assertion()
        assert self.post(collector, client_assertion=assertion, grant_type="password")[1][
            "error"
        ] == "unsupported_grant_type"
        assert self.post(collector, client_assertion=assertion, scope="admin")[1][
            "error"
        ] == "invalid_scope"

    def test_unknown_bearer_token_is_refused(self, collector_factory: CollectorFactory):
        """A batch with a token the collector never issued gets 401 and is not recorded."""
        import requests

        collector = oauth_collector(collector_factory)
        response = requests.post(
            collector.endpoint, data=b'{"batch":[]}', timeout=5,
            headers={"Authorization": "Bearer not-a-token", "Content-Type": "application/json"},
        )
        assert response.status_code == 401
        assert "unknown access token" in response.text
        assert collector.messages == []

    def test_no_token_endpoint_without_a_key(self, collector: Collector):
        """A collector without a public key has no /token (404) and refuses bearer tokens."""
        import requests

        assert requests.post(collector.url + "/token", data={}, timeout=5).status_code == 404
        response = requests.post(
            collector.endpoint, data=b'{"batch":[]}', timeout=5,
            headers={"Authorization": "Bearer x", "Content-Type": "application/json"},
        )
        assert response.status_code == 401


class TestCommandLine:
    """``logbridge collect --oauth-public-key`` serves the token endpoint."""

    def test_collect_issues_tokens(self, tmp_path: Path):
        """A client gets a token from the command-line collector and delivers a batch with it."""
        _, public = key_pair().write(tmp_path)
        process = subprocess.Popen(
            [sys.executable, "-m", "logbridge", "collect", "--port", "0", "--quiet",
             "--oauth-public-key", str(public), "--oauth-client-id", CLIENT_ID],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=str(ROOT),
        )
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stdout or ()],
                                  daemon=True)
        reader.start()
        try:
            line = ""
            while "OAuth tokens at" not in line:
                line = lines.get(timeout=20)
            base = line.split("oauth_auth_server=")[1].rstrip(")\n")
            key = load_private_key(key_pair().private_pem)
            auth = OAuth(CLIENT_ID, key, KEY_ID, auth_server=base)
            sender = SegmentDestination(base + "/v1/batch", HttpSettings(), auth)
            assert sender.send([item(1)], timeout=5).ok
            process.send_signal(signal.SIGINT)
            while "stopped:" not in line:
                line = lines.get(timeout=20)
            assert "received 1," in line
            assert process.wait(timeout=10) == 0
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)
