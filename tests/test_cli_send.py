"""``logbridge send``: one message delivered now, the answer in plain words."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from logbridge.collector import Collector
from logbridge.collector.faults import Faults
from logbridge.collector.oauth import TokenIssuer
from tests.cli_support import closed_port, one_line, run_cli
from tests.oauth_support import CLIENT_ID, KEY_ID, key_pair, leaks, new_key_pair

TYPE_ARGS = {
    "track": ("--event", "Test"),
    "identify": ("--traits", '{"plan": "pro"}'),
    "page": ("--name", "Home", "--category", "Docs"),
    "screen": ("--name", "Settings"),
    "group": ("--group-id", "acme"),
    "alias": ("--previous-id", "anon-1"),
}


class TestDelivered:
    """A message the collector accepts: 'delivered', exit code 0."""

    def test_track_with_properties(self, collector: Collector) -> None:
        """The issue's example arrives whole, valid, and the command says 'delivered'."""
        result = run_cli("send", "track", "--user-id", "u1", "--event", "Test",
                         "--properties", '{"a": 1}', "--endpoint", collector.endpoint)
        assert result.returncode == 0, result.stderr
        assert "delivered" in one_line(result.stdout)
        [message] = collector.messages
        assert (message["type"], message["event"], message["userId"]) == ("track", "Test", "u1")
        assert message["properties"] == {"a": 1}
        assert message["messageId"] in result.stdout
        assert collector.invalid == []

    @pytest.mark.parametrize("kind", sorted(TYPE_ARGS))
    def test_every_type(self, collector: Collector, kind: str) -> None:
        """Each of the six types is delivered as a valid message of that type."""
        result = run_cli("send", kind, "--user-id", "u1", *TYPE_ARGS[kind],
                         "--endpoint", collector.endpoint)
        assert result.returncode == 0, result.stderr
        [message] = collector.messages
        assert message["type"] == kind
        assert collector.invalid == []

    def test_options_from_the_environment(self, collector_factory: Any) -> None:
        """LOGBRIDGE_ENDPOINT and LOGBRIDGE_WRITE_KEY are used as the handler uses them."""
        target: Collector = collector_factory(write_key="env-key")
        env = {"LOGBRIDGE_ENDPOINT": target.endpoint, "LOGBRIDGE_WRITE_KEY": "env-key"}
        result = run_cli("send", "identify", "--user-id", "u1", env=env)
        assert result.returncode == 0, result.stderr
        assert len(target.messages) == 1
        assert "env-key" not in result.stdout + result.stderr

    def test_options_from_a_logging_config(self, collector_factory: Any, tmp_path: Path) -> None:
        """--config takes the AnalyticsHandler's options (endpoint, key, context) from it."""
        target: Collector = collector_factory(write_key="cfg-key")
        config = tmp_path / "logging.json"
        config.write_text(json.dumps({
            "version": 1,
            "handlers": {"analytics": {
                "()": "logbridge.AnalyticsHandler", "endpoint": target.endpoint,
                "write_key": "cfg-key", "context": {"app": {"name": "shop"}}}},
            "loggers": {"analytics": {"handlers": ["analytics"], "level": "INFO"}},
        }))
        result = run_cli("send", "track", "--user-id", "u1", "--event", "Configured",
                         "--config", str(config))
        assert result.returncode == 0, result.stderr
        [message] = target.messages
        assert message["context"]["app"] == {"name": "shop"}

    def test_options_from_an_ini_with_defines(
        self, collector_factory: Any, tmp_path: Path
    ) -> None:
        """An .ini config's %(write_key)s is filled with --define, as fileConfig's defaults."""
        target: Collector = collector_factory(write_key="ini-key")
        config = tmp_path / "logging.ini"
        config.write_text(
            "[loggers]\nkeys=root\n[handlers]\nkeys=analytics\n[formatters]\nkeys=\n"
            "[logger_root]\nlevel=INFO\nhandlers=analytics\n"
            "[handler_analytics]\nclass=logbridge.AnalyticsHandler\nargs=()\n"
            f"kwargs={{'write_key': '%(write_key)s', 'endpoint': '{target.endpoint}'}}\n"
        )
        result = run_cli("send", "identify", "--user-id", "u1", "--config", str(config),
                         "--define", "write_key=ini-key")
        assert result.returncode == 0, result.stderr
        assert len(target.messages) == 1

    def test_keeps_a_given_message_id_and_timestamp(self, collector: Collector) -> None:
        """--message-id and --timestamp are sent as given."""
        result = run_cli("send", "track", "--user-id", "u1", "--event", "Old",
                         "--message-id", "m-fixed", "--timestamp", "2026-01-02T03:04:05.000Z",
                         "--endpoint", collector.endpoint)
        assert result.returncode == 0, result.stderr
        [message] = collector.messages
        assert message["messageId"] == "m-fixed"
        assert message["timestamp"].startswith("2026-01-02T03:04:05")


class TestEveryDestination:
    """send goes through the destination registry, as the handler does."""

    def test_rudderstack_preset_with_a_data_plane_url(self, collector: Collector) -> None:
        """--destination rudderstack --data-plane-url URL posts to URL's /v1/batch."""
        result = run_cli("send", "track", "--user-id", "u1", "--event", "Rudder",
                         "--destination", "rudderstack", "--data-plane-url", collector.url,
                         "--write-key", "rk")
        assert result.returncode == 0, result.stderr
        assert [m["event"] for m in collector.messages] == ["Rudder"]
        assert collector.requests[0].path == "/v1/batch"

    def test_preset_needs_what_it_needs(self) -> None:
        """rudderstack without a data plane URL: one line naming --data-plane-url."""
        result = run_cli("send", "track", "--user-id", "u1", "--event", "E",
                         "--destination", "rudderstack", "--write-key", "k")
        assert result.returncode == 2
        assert "needs --data-plane-url" in one_line(result.stderr)

    def test_amplitude(self, collector_factory: Any) -> None:
        """--destination amplitude maps the message to an Amplitude event and delivers it."""
        target: Collector = collector_factory(write_key="amp-key-123")
        result = run_cli("send", "track", "--user-id", "user-0001", "--event", "Played",
                         "--properties", '{"song": "x"}', "--destination", "amplitude",
                         "--endpoint", target.url, "--write-key", "amp-key-123")
        assert result.returncode == 0, result.stderr
        assert "delivered to " + target.url + "/2/httpapi" in result.stdout
        [event] = target.amplitude_events
        assert (event["event_type"], event["user_id"]) == ("Played", "user-0001")
        assert event["event_properties"] == {"song": "x"}

    def test_amplitude_with_a_wrong_key(self, collector_factory: Any) -> None:
        """Amplitude answers a wrong API key with a 400; it is said, the key is not shown."""
        target: Collector = collector_factory(write_key="amp-key-123")
        result = run_cli("send", "identify", "--user-id", "user-0001", "--destination",
                         "amplitude", "--endpoint", target.url, "--write-key", "wrong-key-456")
        assert result.returncode == 1
        line = one_line(result.stderr)
        assert line.endswith(": 400: invalid API key")
        assert "wrong-key-456" not in result.stdout + result.stderr

    def test_amplitude_rules_in_flag_words(self, collector: Collector) -> None:
        """Amplitude's own rule (ids of 5+ characters) is named with the option that relaxes it."""
        result = run_cli("send", "track", "--user-id", "u1", "--event", "E", "--destination",
                         "amplitude", "--endpoint", collector.url, "--write-key", "k")
        assert result.returncode == 2
        assert "set --option min_id_length to allow" in one_line(result.stderr)

    def test_jsonl_sink(self, tmp_path: Path) -> None:
        """--destination jsonl appends the message to --option jsonl_path=FILE."""
        path = tmp_path / "events.jsonl"
        result = run_cli("send", "group", "--user-id", "u1", "--group-id", "acme",
                         "--destination", "jsonl", "--option", f"jsonl_path={path}")
        assert result.returncode == 0, result.stderr
        assert "delivered to the jsonl destination" in result.stdout
        [line] = path.read_text().splitlines()
        assert json.loads(line)["groupId"] == "acme"

    def test_segment_with_oauth(self, collector_factory: Any, tmp_path: Path) -> None:
        """OAuth 2 options (--option oauth_*): a token is fetched, the message delivered."""
        pair = key_pair()
        target: Collector = collector_factory(
            oauth=TokenIssuer(pair.public_pem, client_id=CLIENT_ID, key_id=KEY_ID)
        )
        private, _ = pair.write(tmp_path)
        result = run_cli(
            "send", "track", "--user-id", "u1", "--event", "Signed", "--endpoint",
            target.endpoint, "--option", f"oauth_client_id={CLIENT_ID}",
            "--option", f"oauth_client_key={private}", "--option", f"oauth_key_id={KEY_ID}",
            "--option", f"oauth_auth_server={target.url}",
        )
        assert result.returncode == 0, result.stderr
        assert [m["event"] for m in target.messages] == ["Signed"]
        assert not leaks(result.stdout + result.stderr, pair.private_pem)

    def test_oauth_with_a_key_the_server_does_not_trust(
        self, collector_factory: Any, tmp_path: Path
    ) -> None:
        """A refused assertion is said as the token endpoint's answer, not a write key's."""
        target: Collector = collector_factory(
            oauth=TokenIssuer(key_pair().public_pem, client_id=CLIENT_ID, key_id=KEY_ID)
        )
        stranger = new_key_pair()
        private, _ = stranger.write(tmp_path)
        result = run_cli(
            "send", "track", "--user-id", "u1", "--event", "Signed", "--endpoint",
            target.endpoint, "--option", f"oauth_client_id={CLIENT_ID}",
            "--option", f"oauth_client_key={private}", "--option", f"oauth_key_id={KEY_ID}",
            "--option", f"oauth_auth_server={target.url}",
        )
        assert result.returncode == 1
        line = one_line(result.stderr)
        assert "no OAuth token: " in line and "signature does not verify" in line
        assert "write key" not in line
        assert not leaks(result.stdout + result.stderr, stranger.private_pem)

    def test_a_users_destination_class(self, tmp_path: Path) -> None:
        """--destination pkg.Class: a user's Destination, imported and sent to."""
        (tmp_path / "my_destination.py").write_text(textwrap.dedent("""\
            from logbridge.destinations import Limits, Outcome

            class FileDestination:
                name = "file"
                wire_format = "segment"
                limits = Limits(32_768, 500_000, 100)

                def map_message(self, message):
                    return [message]

                def send(self, items, *, timeout):
                    with open("sent.jsonl", "ab") as file:
                        file.writelines(item + b"\\n" for item in items)
                    return Outcome()

                def warm_up(self): ...
                def reset_after_fork(self): ...
                def close(self): ...
        """))
        result = run_cli("send", "screen", "--user-id", "u1", "--name", "Home",
                         "--destination", "my_destination.FileDestination", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "delivered to the file destination" in result.stdout
        [line] = (tmp_path / "sent.jsonl").read_text().splitlines()
        assert json.loads(line)["name"] == "Home"


class TestNotDelivered:
    """Failures are said in plain words on stderr, exit code 1."""

    def test_wrong_write_key(self, collector_factory: Any) -> None:
        """Against a collector requiring another key: '401: the write key was rejected'."""
        target: Collector = collector_factory(write_key="the-right-key")
        result = run_cli("send", "track", "--user-id", "u1", "--event", "Test",
                         "--endpoint", target.endpoint, "--write-key", "a-wrong-key")
        assert result.returncode == 1
        line = one_line(result.stderr)
        assert line.endswith("401: the write key was rejected")
        assert "a-wrong-key" not in result.stdout + result.stderr
        assert target.messages == []

    def test_connection_refused(self) -> None:
        """A closed port of 127.0.0.1: 'could not connect to <url>: connection refused'."""
        port = closed_port()
        result = run_cli("send", "track", "--user-id", "u1", "--event", "Test",
                         "--endpoint", f"http://127.0.0.1:{port}")
        assert result.returncode == 1
        line = one_line(result.stderr)
        assert f"could not connect to http://127.0.0.1:{port}/v1/batch: connection refused" in line

    def test_bad_request_says_what_the_server_said(self, collector_factory: Any) -> None:
        """A 400 answer is shown as '400: <the server's text>'."""
        target: Collector = collector_factory(faults=Faults(status=400))
        result = run_cli("send", "track", "--user-id", "u1", "--event", "Test",
                         "--endpoint", target.endpoint)
        assert result.returncode == 1
        line = one_line(result.stderr)
        assert ": 400: " in line
        assert len(line.split(": 400: ", 1)[1]) > 0

    def test_no_answer_in_time(self, collector_factory: Any) -> None:
        """A collector slower than --timeout: 'could not connect ...: no answer in time'."""
        target: Collector = collector_factory(faults=Faults(latency=1.5))
        result = run_cli("send", "track", "--user-id", "u1", "--event", "Slow",
                         "--endpoint", target.endpoint, "--timeout", "0.3")
        assert result.returncode == 1
        assert "no answer in time (timed out)" in one_line(result.stderr)

    def test_server_error(self, collector_factory: Any) -> None:
        """A 503 is a failure too (one attempt: send is a check, not a delivery)."""
        target: Collector = collector_factory(faults=Faults(status=503))
        result = run_cli("send", "page", "--user-id", "u1", "--endpoint", target.endpoint)
        assert result.returncode == 1
        assert ": 503: " in one_line(result.stderr)
        assert len(target.requests) == 1
