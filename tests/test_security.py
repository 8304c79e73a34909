"""The write key stays secret; TLS is verified; proxies, CA bundles and sessions are honoured."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any

import pytest
import requests

import logbridge
from logbridge.collector import Collector, Faults
from tests.delivery_support import forwarding_server, self_signed_certificate, tls_context
from tests.support import analytics_logger

SECRET = "wk_live_S3cretKeyValue_9f8e7d6c"
#: The key as it travels: the Basic auth token ``base64("KEY:")``.
TOKEN = base64.b64encode(f"{SECRET}:".encode()).decode()


def leaks(text: str | bytes) -> bool:
    """Whether ``text`` holds the write key, raw or as its Basic token."""
    if isinstance(text, bytes):
        return SECRET.encode() in text or TOKEN.encode() in text
    return SECRET in text or TOKEN in text


class TestWriteKeyNeverShows:
    """The key is absent from logs, reprs, exceptions, stats, the spool and the dead letter."""

    def test_nowhere_in_what_logbridge_writes_or_shows(
        self, collector_factory: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Rejected, failing and unreachable deliveries at DEBUG (urllib3 too) show no key."""
        refusing: Collector = collector_factory(write_key="another-key")
        failing: Collector = collector_factory(faults=Faults(fail_rate=1.0))
        down: Collector = collector_factory()
        down.down(600)
        failures: list[BaseException] = []
        spool, letter = tmp_path / "spool.db", tmp_path / "dead.jsonl"
        shown: list[str] = []
        caplog.set_level(logging.DEBUG)
        caplog.set_level(logging.DEBUG, logger="urllib3")
        for endpoint, extra in (
            (refusing.endpoint, {"spool": str(spool)}),
            (failing.endpoint, {"spool": str(spool), "max_retries": 1}),
            (down.endpoint, {"shutdown_timeout": 0.3}),  # left over: dead-lettered at close
        ):
            with analytics_logger(
                endpoint, write_key=SECRET, dead_letter=str(letter), flush_at=2,
                on_error=lambda exc, msgs: failures.append(exc), **extra,
            ) as (log, handler):
                log.info("Secret Test", extra={"user_id": "u1"})
                log.info("Secret Test", extra={"user_id": "u1"})
                handler.flush(timeout=1 if endpoint == down.endpoint else 30)
                listener = handler.listener
                shown += [repr(handler), repr(listener), repr(handler.options),
                          str(handler.options), repr(listener.sender.destination),
                          repr(listener.destination.auth),
                          json.dumps(handler.stats())]
        assert len(failures) == 3
        for failure in failures:
            shown += [str(failure), repr(failure), repr(failure.args)]
        assert any("401" in text for text in shown)  # the rejection is there...
        assert "urllib3" in {r.name.split(".")[0] for r in caplog.records}
        assert not leaks(caplog.text)  # ...with no key in any log line
        assert not any(leaks(text) for text in shown)
        assert letter.read_bytes().count(b"\n") == 6
        assert not leaks(letter.read_bytes())
        spooled = list(tmp_path.glob("spool.db*"))
        assert spooled
        for path in spooled:
            assert not leaks(path.read_bytes())


class TestTLS:
    """Certificates are verified by default; a CA bundle can be given."""

    def test_verification_is_on_by_default(
        self, collector: Collector, tmp_path: Path
    ) -> None:
        """A self-signed endpoint is refused (CERTIFICATE_VERIFY_FAILED); nothing arrives."""
        cert, key = self_signed_certificate(tmp_path)
        failures: list[BaseException] = []
        with forwarding_server(collector.url, context=tls_context(cert, key)) as front:
            endpoint = f"https://127.0.0.1:{front.server_address[1]}/v1/batch"
            with analytics_logger(
                endpoint, max_retries=0, on_error=lambda exc, msgs: failures.append(exc)
            ) as (log, handler):
                assert handler.options.verify is True
                log.info("Untrusted", extra={"user_id": "u1"})
                assert handler.flush(timeout=30)
                stats = handler.stats()
        assert collector.messages == []
        assert stats["dropped"]["retries_exhausted"] == 1  # type: ignore[index]
        assert "CERTIFICATE_VERIFY_FAILED" in str(failures[0])

    def test_ca_bundle_path(self, collector: Collector, tmp_path: Path) -> None:
        """verify=PATH trusts that CA: events arrive through TLS."""
        cert, key = self_signed_certificate(tmp_path)
        with forwarding_server(collector.url, context=tls_context(cert, key)) as front:
            endpoint = f"https://127.0.0.1:{front.server_address[1]}/v1/batch"
            with analytics_logger(endpoint, verify=cert) as (log, handler):
                log.info("Trusted", extra={"user_id": "u1"})
                assert handler.flush(timeout=30)
            assert len(front.request_lines) == 1
        assert [m["event"] for m in collector.messages] == ["Trusted"]


class TestProxiesAndSessions:
    """proxies go through the given proxy; a custom requests.Session does the sending."""

    def test_proxies_are_used(self, collector: Collector) -> None:
        """With proxies={"http": ...}, each batch passes through a real proxy on 127.0.0.1."""
        with forwarding_server() as proxy:
            proxy_url = f"http://127.0.0.1:{proxy.server_address[1]}"
            with analytics_logger(collector.endpoint, proxies={"http": proxy_url}) as (log, h):
                log.info("Proxied", extra={"user_id": "u1"})
                assert h.flush(timeout=30)
            lines = list(proxy.request_lines)
        assert lines == [f"POST {collector.endpoint} HTTP/1.1"]  # absolute form: a proxy request
        assert [m["event"] for m in collector.messages] == ["Proxied"]

    def test_custom_session_is_used(self, collector: Collector) -> None:
        """A requests.Session passed as session= sends the batches, with its own headers."""

        class CountingSession(requests.Session):
            posts = 0

            def post(self, *args: Any, **kwargs: Any) -> requests.Response:
                CountingSession.posts += 1
                return super().post(*args, **kwargs)

        session = CountingSession()
        session.headers["X-Tenant"] = "acme"
        with analytics_logger(collector.endpoint, session=session, flush_at=1) as (log, h):
            log.info("Custom", extra={"user_id": "u1"})
            log.info("Custom", extra={"user_id": "u2"})
            assert h.flush(timeout=30)
        assert CountingSession.posts == 2
        assert all(r.headers.get("X-Tenant") == "acme" for r in collector.requests)
        assert all(r.auth_user == "test-key" for r in collector.requests)


class TestPlainHttpWarning:
    """http:// to a host other than loopback is warned about; loopback is not."""

    def test_remote_plain_http_warns(self, caplog: pytest.LogCaptureFixture) -> None:
        """Building a handler for http://analytics.example.com logs a warning (nothing sent)."""
        with caplog.at_level(logging.WARNING, logger="logbridge"):
            handler = logbridge.AnalyticsHandler(
                endpoint="http://analytics.example.com/v1/batch", write_key=SECRET
            )
            handler.close()  # never started: no request is made
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any("plain http" in w and "analytics.example.com" in w for w in warnings)
        assert not leaks(caplog.text)

    def test_loopback_plain_http_is_quiet(
        self, collector: Collector, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The local collector over http:// draws no warning."""
        with caplog.at_level(logging.WARNING, logger="logbridge"):
            handler = logbridge.AnalyticsHandler(endpoint=collector.endpoint, write_key="k")
            handler.close()
        assert not [r for r in caplog.records if "plain http" in r.getMessage()]
