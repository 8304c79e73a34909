"""The destination examples run as users run them, each against the collector (or a file)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from logbridge.collector import Collector
from logbridge.collector.oauth import TokenIssuer
from tests.oauth_support import CLIENT_ID, KEY_ID, key_pair
from tests.support import ROOT

CollectorFactory = Callable[..., Collector]
#: What every example sends: one call of each kind.
SENT = ["identify", "track", "page", "group", "alias"]


def run_example(name: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``examples/destination_<name>.py`` with ``args`` and ``env`` added; the finished run."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("LOGBRIDGE_")}
    child_env.update(env)
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / f"destination_{name}.py"), *args],
        capture_output=True, text=True, timeout=120, env=child_env, cwd=str(ROOT), check=False,
    )


def assert_delivered(run: subprocess.CompletedProcess[str], collector: Collector) -> None:
    """The example succeeded and the collector holds its five events, valid, in order."""
    assert run.returncode == 0, run.stderr
    assert "delivered: True" in run.stdout
    assert [message["type"] for message in collector.messages] == SENT
    assert collector.invalid == []


def batch_requests(collector: Collector) -> list[tuple[str, str | None, str | None]]:
    """(path, Basic user, Authorization scheme) of each batch request the collector took."""
    return [
        (r.path, r.auth_user, (r.headers.get("Authorization") or " ").split(" ")[0] or None)
        for r in collector.requests
        if r.path.endswith("/batch")
    ]


class TestWriteKeyExamples:
    """Segment, RudderStack and Dreamdata, each with its write key."""

    def test_segment(self, collector_factory: CollectorFactory):
        """destination_segment.py sends with Basic auth to /v1/batch."""
        collector = collector_factory(write_key="segment-key")
        run = run_example("segment", "--endpoint", collector.url, SEGMENT_WRITE_KEY="segment-key")
        assert_delivered(run, collector)
        assert set(batch_requests(collector)) == {("/v1/batch", "segment-key", "Basic")}

    def test_segment_eu(self, collector_factory: CollectorFactory):
        """--region eu picks the segment-eu preset; the endpoint still wins."""
        collector = collector_factory(write_key="segment-key")
        run = run_example(
            "segment", "--region", "eu", "--endpoint", collector.endpoint,
            SEGMENT_WRITE_KEY="segment-key",
        )
        assert_delivered(run, collector)

    def test_rudderstack_through_its_data_plane_url(self, collector_factory: CollectorFactory):
        """destination_rudderstack.py sends to <data plane>/v1/batch with its write key."""
        collector = collector_factory(write_key="rudder-key")
        run = run_example(
            "rudderstack",
            RUDDERSTACK_WRITE_KEY="rudder-key", RUDDERSTACK_DATA_PLANE_URL=collector.url,
        )
        assert_delivered(run, collector)
        assert set(batch_requests(collector)) == {("/v1/batch", "rudder-key", "Basic")}

    def test_rudderstack_without_a_data_plane_url(self):
        """Without the data plane URL the example stops at start-up, naming data_plane_url."""
        run = run_example("rudderstack", RUDDERSTACK_WRITE_KEY="rudder-key")
        assert run.returncode != 0
        assert "data_plane_url" in run.stderr

    def test_dreamdata(self, collector_factory: CollectorFactory):
        """destination_dreamdata.py sends with the source key as the Basic user."""
        collector = collector_factory(write_key="dreamdata-key")
        run = run_example(
            "dreamdata", "--endpoint", collector.url, DREAMDATA_API_KEY="dreamdata-key"
        )
        assert_delivered(run, collector)
        assert set(batch_requests(collector)) == {("/v1/batch", "dreamdata-key", "Basic")}


class TestOAuthExample:
    """destination_oauth.py gets a token from the collector and sends with it."""

    def oauth_env(self, tmp_path: Path) -> dict[str, str]:
        """The example's OAuth settings, with the private key in a file."""
        private, _ = key_pair().write(tmp_path)
        return {"OAUTH_CLIENT_ID": CLIENT_ID, "OAUTH_KEY_ID": KEY_ID,
                "OAUTH_CLIENT_KEY": str(private), "WRITE_KEY": "source-key"}

    def test_segment_and_dreamdata(self, collector_factory: CollectorFactory, tmp_path: Path):
        """For both services: a Bearer token the collector issued, the write key in the body."""
        for destination in ("segment", "dreamdata"):
            issuer = TokenIssuer(key_pair().public_pem, client_id=CLIENT_ID, key_id=KEY_ID)
            collector = collector_factory(write_key="source-key", oauth=issuer)
            run = run_example(
                "oauth", "--destination", destination, "--endpoint", collector.url,
                "--auth-server", collector.url, **self.oauth_env(tmp_path),
            )
            assert_delivered(run, collector)
            assert issuer.issued == 1
            assert set(batch_requests(collector)) == {("/v1/batch", None, "Bearer")}
            assert not any(line in run.stdout + run.stderr
                           for line in key_pair().private_pem.splitlines()[1:-1])


class TestLocalExample:
    """destination_local.py writes to the console and to a file, with no network."""

    def test_console_and_jsonl(self, tmp_path: Path):
        """Five readable lines on stderr, and the same five events in the file."""
        path = tmp_path / "events.jsonl"
        run = run_example("local", "--jsonl-path", str(path))
        assert run.returncode == 0, run.stderr
        lines = [line for line in run.stderr.splitlines() if line.startswith("logbridge: ")]
        assert [line.split()[1] for line in lines] == SENT
        events = [json.loads(line) for line in path.read_text().splitlines()]
        assert [event["type"] for event in events] == SENT
        assert events[1]["event"] == "Order Completed"
