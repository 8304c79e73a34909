"""The web examples run as users would run them: self-check mode, and serving real HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests

from logbridge.collector import Collector
from tests.support import ROOT, wait_until
from tests.web_support import KNOWN, attributes

EXAMPLES = ["flask_app", "fastapi_app", "django_app"]
#: The anonymous id the examples' self-check arrives with, in a cross-domain link.
LINKED = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"


def example_env(**extra: str) -> dict[str, str]:
    """This environment without LOGBRIDGE_* variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGBRIDGE_")}
    env.update(extra)
    return env


def run_example(name: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``examples/<name>.py`` with ``args`` in a fresh interpreter; the finished process."""
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / f"{name}.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=example_env(**env),
        cwd=str(ROOT),
        check=False,
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def accepts(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@contextmanager
def serving(name: str, endpoint: str) -> Iterator[int]:
    """``examples/<name>.py serve`` on a free port, sending to ``endpoint``; stopped after."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / f"{name}.py"), "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=example_env(LOGBRIDGE_ENDPOINT=endpoint, LOGBRIDGE_WRITE_KEY="example-key"),
        cwd=str(ROOT),
    )
    try:
        up = wait_until(lambda: process.poll() is not None or accepts(port), timeout=60)
        assert up and process.poll() is None, process.stderr.read() if process.stderr else ""
        yield port
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        if process.stderr is not None:
            process.stderr.close()


class TestSelfCheck:
    """Each example's default mode drives its framework's test client and checks the result."""

    @pytest.mark.parametrize("name", EXAMPLES)
    def test_every_check_passes_against_its_own_collector(self, name: str) -> None:
        """The example exits 0, prints what it sent, alias before identify, all checks ok."""
        result = run_example(name)
        assert result.returncode == 0, result.stdout + result.stderr
        out = result.stdout
        assert "sending to a local collector at http://127.0.0.1:" in out
        assert "sent 5 messages:" in out
        assert out.index(f"alias     userId=user-1  anonymousId={LINKED}") < out.index(
            "identify  userId=user-1"
        )
        assert f"previousId={LINKED}" in out
        assert "ip=203.0.113.9" in out
        assert "FAILED" not in out
        assert out.rstrip().endswith("all checks passed")

    @pytest.mark.parametrize("name", EXAMPLES)
    def test_logbridge_endpoint_is_used_when_set(self, name: str, collector: Collector) -> None:
        """With LOGBRIDGE_ENDPOINT the example's events arrive at that endpoint instead."""
        result = run_example(name, LOGBRIDGE_ENDPOINT=collector.endpoint)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"sending to {collector.endpoint} (LOGBRIDGE_ENDPOINT)" in result.stdout
        assert collector.wait_for(5)
        assert collector.invalid == []
        kinds = [message["type"] for message in collector.messages]
        assert kinds == ["track", "page", "alias", "identify", "track"]
        alias = collector.messages[2]
        assert (alias["userId"], alias["previousId"]) == ("user-1", LINKED)
        assert all(message["anonymousId"] == LINKED for message in collector.messages)


class TestServe:
    """``serve`` mode answers real HTTP requests and sends their events."""

    @pytest.mark.parametrize("name", ["flask_app", "django_app"])
    def test_a_real_request_sets_the_cookie_and_logs(self, name: str, collector: Collector) -> None:
        """A GET with a cross-domain id over real HTTP: cookie set, event delivered."""
        with serving(name, collector.endpoint) as port:
            response = requests.get(
                f"http://127.0.0.1:{port}/pricing?lb_anon_id={KNOWN}&plan=team",
                headers={"User-Agent": "served-test"},
                timeout=10,
            )
            assert collector.wait_for(1)
        assert response.status_code == 200
        assert attributes(response.headers["Set-Cookie"])["value"] == KNOWN
        (message,) = collector.messages
        assert (message["event"], message["anonymousId"]) == ("Pricing Viewed", KNOWN)
        assert message["context"]["ip"] == "127.0.0.1"
        assert message["context"]["userAgent"] == "served-test"
        assert message["context"]["page"]["url"] == f"http://127.0.0.1:{port}/pricing?plan=team"
