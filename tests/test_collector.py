"""The local collector: a real HTTP server, exercised over real sockets with requests."""

from __future__ import annotations

import errno
import gzip
import io
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from logbridge.cli import main
from logbridge.collector import Collector, Faults, validate_message

REPO_ROOT = Path(__file__).resolve().parents[1]
TIMESTAMP = "2024-05-01T12:00:00.123Z"
KEY = "wk_s3cr3t_test_key"
MISSING = object()

BASE: dict[str, dict[str, Any]] = {
    "identify": {"type": "identify", "userId": "u1", "traits": {"email": "a@example.com"}},
    "track": {
        "type": "track",
        "userId": "u1",
        "event": "Order Completed",
        "properties": {"order_id": "o1", "revenue": 99.99},
    },
    "page": {"type": "page", "userId": "u1", "name": "Home", "properties": {"path": "/"}},
    "screen": {"type": "screen", "anonymousId": "a1", "name": "Settings"},
    "group": {"type": "group", "userId": "u1", "groupId": "g1", "traits": {"name": "Acme"}},
    "alias": {"type": "alias", "userId": "u1", "previousId": "a1"},
}

Factory = Callable[..., Collector]


def make(kind: str = "track", **fields: Any) -> dict[str, Any]:
    """A valid message of ``kind`` with ``fields`` overriding (``MISSING`` removes a field)."""
    msg: dict[str, Any] = {**BASE[kind], "messageId": str(uuid.uuid4()), "timestamp": TIMESTAMP}
    msg.update(fields)
    return {key: value for key, value in msg.items() if value is not MISSING}


def post(
    collector: Collector, batch: list[Any], *, path: str = "/v1/batch", **kwargs: Any
) -> requests.Response:
    """POST a JSON batch body to ``collector``."""
    body = {"batch": batch, "sentAt": TIMESTAMP}
    return requests.post(collector.url + path, json=body, timeout=5, **kwargs)


def post_raw(collector: Collector, data: bytes, **headers: str) -> requests.Response:
    """POST raw bytes to the batch endpoint with ``headers``."""
    return requests.post(collector.endpoint, data=data, headers=headers, timeout=5)


def chained(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception wrapped in it (as cause, context or argument)."""
    stack: list[BaseException] = [exc]
    seen: set[int] = set()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped = [current.__cause__, current.__context__, *current.args]
        stack.extend(e for e in wrapped if isinstance(e, BaseException))


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- lifecycle ---------------------------------------------------------------------------


class TestLifecycle:
    """Starting, addressing and stopping the server."""

    def test_addresses_use_the_bound_port(self, collector: Collector) -> None:
        """url, endpoint and port describe the ephemeral port actually bound."""
        assert collector.port > 0
        assert collector.url == f"http://127.0.0.1:{collector.port}"
        assert collector.endpoint == collector.url + "/v1/batch"

    def test_health(self, collector: Collector) -> None:
        """GET /health answers 200."""
        response = requests.get(collector.url + "/health", timeout=5)
        assert response.status_code == 200
        assert response.json() == {"ok": True}

    def test_context_manager_stops_listening(self) -> None:
        """Leaving the with-block closes the socket, so later connections are refused."""
        with Collector() as collector:
            url = collector.url
            assert requests.get(url + "/health", timeout=5).status_code == 200
        with pytest.raises(requests.ConnectionError):
            requests.get(url + "/health", timeout=5)

    def test_start_twice_is_an_error(self, collector: Collector) -> None:
        """Starting a running collector raises instead of binding a second socket."""
        with pytest.raises(RuntimeError):
            collector.start()

    def test_port_unknown_before_start(self) -> None:
        """An ephemeral-port collector has no port (or URL) until started."""
        with pytest.raises(RuntimeError):
            _ = Collector().url

    def test_stop_drops_keep_alive_connections(self, collector: Collector) -> None:
        """stop() closes idle keep-alive connections, so a session cannot keep using them."""
        with requests.Session() as session:
            assert session.post(collector.endpoint, json={"batch": []}, timeout=5).ok
            collector.stop()
            with pytest.raises(requests.ConnectionError):
                session.post(collector.endpoint, json={"batch": []}, timeout=5)


# -- ingest ------------------------------------------------------------------------------


class TestIngest:
    """Accepting batches and recording their messages."""

    def test_plain_json_recorded_in_order(self, collector: Collector) -> None:
        """A plain JSON batch answers {"success": true} and its messages are kept in order."""
        first, second, third = make(event="A"), make(event="B"), make("identify")
        response = post(collector, [first, second])
        assert response.status_code == 200
        assert response.json() == {"success": True}
        assert post(collector, [third]).status_code == 200
        assert collector.messages == [first, second, third]
        assert collector.invalid == []

    def test_gzip_body(self, collector: Collector) -> None:
        """A gzip-encoded body is decompressed and recorded like a plain one."""
        msg = make()
        wire = gzip.compress(json.dumps({"batch": [msg]}).encode())
        response = post_raw(collector, wire, **{"Content-Encoding": "gzip"})
        assert response.status_code == 200
        assert collector.messages == [msg]
        (record,) = collector.requests
        assert record.content_encoding == "gzip"
        assert record.body_bytes == len(wire)

    @pytest.mark.parametrize("path", ["/v1/batch", "/batch", "/proxy/v1/batch", "/v1/batch/"])
    def test_batch_paths(self, collector: Collector, path: str) -> None:
        """Any path ending in /v1/batch or /batch takes batches."""
        assert post(collector, [make()], path=path).status_code == 200
        assert collector.wait_for(1, timeout=0)

    def test_chunked_body(self, collector: Collector) -> None:
        """A chunked request body (no Content-Length) is reassembled."""
        msg = make()
        body = json.dumps({"batch": [msg]}).encode()
        chunks = iter([body[:10], body[10:]])
        response = requests.post(collector.endpoint, data=chunks, timeout=5)
        assert response.status_code == 200
        assert collector.messages == [msg]

    def test_keep_alive_session(self, collector: Collector) -> None:
        """Several batches on one keep-alive connection are all recorded."""
        with requests.Session() as session:
            for _ in range(3):
                response = session.post(collector.endpoint, json={"batch": [make()]}, timeout=5)
                assert response.status_code == 200
        assert len(collector.messages) == 3

    def test_invalid_messages_accepted_and_recorded(self, collector: Collector) -> None:
        """Like Segment, a batch with invalid messages answers 200 and records the problems."""
        bad = make(event=MISSING)
        response = post(collector, [make(), bad, "not an object"])
        assert response.status_code == 200
        assert len(collector.messages) == 2
        invalid = collector.invalid
        assert invalid[0] == (bad, ["missing event"])
        assert invalid[1][0] == "not an object"
        assert "JSON object" in invalid[1][1][0]

    def test_request_record(self, collector: Collector) -> None:
        """Each request is recorded with path, status, sizes, user agent and headers."""
        response = post(collector, [make(), make()], headers={"User-Agent": "probe/1.0"})
        assert response.status_code == 200
        (record,) = collector.requests
        assert record.path == "/v1/batch"
        assert record.status == 200
        assert record.content_encoding is None
        assert record.auth_user is None
        assert record.body_bytes == int(response.request.headers["Content-Length"])
        assert record.message_count == 2
        assert record.user_agent == "probe/1.0"
        assert record.headers["User-Agent"] == "probe/1.0"

    def test_wait_for_times_out(self, collector: Collector) -> None:
        """wait_for returns False when the count is not reached before the deadline."""
        post(collector, [make()])
        assert collector.wait_for(1, timeout=0)
        assert not collector.wait_for(2, timeout=0.05)

    def test_concurrent_senders_all_counted(self, collector: Collector) -> None:
        """Concurrent requests lose no messages and wait_for wakes when they are all in."""
        senders, per_sender = 8, 10

        def send() -> None:
            with requests.Session() as session:
                for _ in range(per_sender):
                    batch = {"batch": [make() for _ in range(5)]}
                    session.post(collector.endpoint, json=batch, timeout=5).raise_for_status()

        threads = [threading.Thread(target=send) for _ in range(senders)]
        for thread in threads:
            thread.start()
        assert collector.wait_for(senders * per_sender * 5, timeout=10)
        for thread in threads:
            thread.join(timeout=10)
        stats = collector.stats()
        assert stats["received"] == stats["unique"] == 400
        assert stats["batches"] == 80


# -- auth --------------------------------------------------------------------------------


class TestAuth:
    """HTTP Basic auth with the write key as user name."""

    def test_user_recorded_without_required_key(self, collector: Collector) -> None:
        """With no write key configured, any request is accepted and its Basic user recorded."""
        assert post(collector, [make()], auth=("anything", "")).status_code == 200
        assert post(collector, [make()]).status_code == 200
        assert [r.auth_user for r in collector.requests] == ["anything", None]

    def test_correct_key_accepted(self, collector_factory: Factory) -> None:
        """The right write key as Basic user name (empty password) is accepted."""
        collector = collector_factory(write_key=KEY)
        assert post(collector, [make()], auth=(KEY, "")).status_code == 200
        assert collector.requests[0].auth_user == KEY
        assert len(collector.messages) == 1

    @pytest.mark.parametrize("auth", [("wrong", ""), None], ids=["wrong", "missing"])
    def test_bad_key_rejected(
        self, collector_factory: Factory, auth: tuple[str, str] | None
    ) -> None:
        """A wrong or missing key gets 401 with a JSON error and nothing is recorded."""
        collector = collector_factory(write_key=KEY)
        response = post(collector, [make()], auth=auth)
        assert response.status_code == 401
        assert response.json()["success"] is False
        assert "write key" in response.json()["error"]
        assert response.headers["WWW-Authenticate"].startswith("Basic")
        assert collector.messages == []
        assert collector.requests[0].status == 401

    def test_unreadable_basic_header_rejected(self, collector_factory: Factory) -> None:
        """A Basic header that is not base64 is treated as a wrong key."""
        collector = collector_factory(write_key=KEY)
        headers = {"Authorization": "Basic !!!not-base64!!!"}
        assert post(collector, [make()], headers=headers).status_code == 401

    def test_write_key_in_body(self, collector_factory: Factory) -> None:
        """A writeKey field in the body works instead of Basic auth; a wrong one gets 401."""
        collector = collector_factory(write_key=KEY)
        url = collector.endpoint
        ok = requests.post(url, json={"batch": [make()], "writeKey": KEY}, timeout=5)
        bad = requests.post(url, json={"batch": [make()], "writeKey": "nope"}, timeout=5)
        assert (ok.status_code, bad.status_code) == (200, 401)
        assert len(collector.messages) == 1

    def test_missing_key_wins_over_bad_body(self, collector_factory: Factory) -> None:
        """Without credentials a malformed body gets 401, telling nothing about the body."""
        collector = collector_factory(write_key=KEY)
        assert post_raw(collector, b"not json").status_code == 401

    def test_key_never_printed_or_exposed(self, collector_factory: Factory, tmp_path: Path) -> None:
        """The write key appears in no echo line, output file, HTTP answer or repr."""
        echo = io.StringIO()
        output = tmp_path / "events.jsonl"
        collector = collector_factory(write_key=KEY, echo=echo, output=output)
        post(collector, [make(), make(event=MISSING)], auth=(KEY, ""))
        post(collector, [make()], auth=("wrong", ""))
        exposed = [
            echo.getvalue(),
            output.read_text(),
            requests.get(collector.url + "/stats", timeout=5).text,
            requests.get(collector.url + "/messages", timeout=5).text,
            repr(collector),
            repr(collector.requests),
        ]
        assert echo.getvalue() and output.read_text()
        for text in exposed:
            assert KEY not in text
        assert collector.requests[0].headers["Authorization"] == "Basic ***"


# -- errors ------------------------------------------------------------------------------


class TestErrors:
    """Malformed requests, wrong paths and methods, size limits."""

    @pytest.mark.parametrize(
        ("body", "encoding", "error"),
        [
            (b"{not json", None, "not valid JSON"),
            (b"\xff\xfe\x00", None, "not valid JSON"),
            (b"plain text", "gzip", "not valid gzip"),
            (gzip.compress(b'{"batch": []}')[:-8], "gzip", "not valid gzip"),
            (b'{"sentAt": "x"}', None, "'batch' list"),
            (b'{"batch": {"a": 1}}', None, "'batch' list"),
            (b"[1, 2]", None, "JSON object"),
        ],
        ids=["json", "utf8", "gzip", "truncated-gzip", "no-batch", "batch-dict", "array"],
    )
    def test_bad_body_400(
        self, collector: Collector, body: bytes, encoding: str | None, error: str
    ) -> None:
        """A body that is not JSON, not gzip, or has no batch list gets 400 with a JSON error."""
        headers = {"Content-Encoding": encoding} if encoding else {}
        response = post_raw(collector, body, **headers)
        assert response.status_code == 400
        assert error in response.json()["error"]
        assert collector.messages == []
        assert collector.requests[0].status == 400

    @pytest.mark.parametrize("method", ["GET", "POST"])
    def test_unknown_path_404(self, collector: Collector, method: str) -> None:
        """Paths other than the batch and info paths get 404."""
        response = requests.request(method, collector.url + "/v1/track", json={}, timeout=5)
        assert response.status_code == 404
        assert response.json()["success"] is False

    @pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
    def test_other_method_on_batch_path_405(self, collector: Collector, method: str) -> None:
        """Methods other than POST on the batch path get 405 with Allow: POST."""
        response = requests.request(method, collector.endpoint, timeout=5)
        assert response.status_code == 405
        assert response.headers["Allow"] == "POST"

    def test_body_over_limit_413(self, collector_factory: Factory) -> None:
        """A plain body over max_body_bytes gets 413; one under it is accepted."""
        collector = collector_factory(max_body_bytes=2_000)
        big = post(collector, [make(properties={"blob": "x" * 3_000})])
        small = post(collector, [make()])
        assert (big.status_code, small.status_code) == (413, 200)
        assert len(collector.messages) == 1

    def test_decompressed_body_over_limit_413(self, collector_factory: Factory) -> None:
        """A small gzip body that inflates past max_body_bytes gets 413 (no gzip bomb)."""
        collector = collector_factory(max_body_bytes=10_000)
        body = json.dumps({"batch": [make(properties={"blob": "x" * 1_000_000})]}).encode()
        wire = gzip.compress(body)
        assert len(wire) < 10_000
        response = post_raw(collector, wire, **{"Content-Encoding": "gzip"})
        assert response.status_code == 413
        assert collector.messages == []

    def test_unsupported_encoding_415(self, collector: Collector) -> None:
        """A Content-Encoding other than gzip or identity gets 415."""
        response = post_raw(collector, b"{}", **{"Content-Encoding": "br"})
        assert response.status_code == 415


# -- validation --------------------------------------------------------------------------


class TestValidateMessage:
    """validate_message against each rule of the Segment spec."""

    @pytest.mark.parametrize("kind", sorted(BASE))
    def test_valid_messages(self, kind: str) -> None:
        """A complete message of every type has no problems."""
        assert validate_message(make(kind)) == []

    def test_missing_and_unknown_type(self) -> None:
        """type must be present and one of the six spec types."""
        assert "missing type" in validate_message(make(type=MISSING))
        problems = validate_message(make(type="purchase"))
        assert any(p.startswith("unknown type 'purchase'") for p in problems)

    @pytest.mark.parametrize("kind", ["identify", "track", "page", "screen", "group"])
    def test_user_or_anonymous_id_required(self, kind: str) -> None:
        """Every type needs userId or anonymousId; either alone is enough, null counts as absent."""
        assert validate_message(make(kind, userId=MISSING, anonymousId=MISSING)) == [
            "missing userId or anonymousId"
        ]
        assert validate_message(make(kind, userId=None, anonymousId=MISSING)) == [
            "missing userId or anonymousId"
        ]
        assert validate_message(make(kind, userId=None, anonymousId="a1")) == []
        assert validate_message(make(kind, userId=MISSING, anonymousId="a1")) == []

    @pytest.mark.parametrize("value", ["", 42, ["u1"]])
    def test_ids_must_be_non_empty_strings(self, value: object) -> None:
        """userId and anonymousId must be non-empty strings when present."""
        problems = validate_message(make(userId=value))
        assert problems and problems[0].startswith("userId must be a non-empty string")
        assert validate_message(make(anonymousId=value))[0].startswith("anonymousId must be")

    def test_track_needs_event(self) -> None:
        """A track needs a non-empty event name."""
        assert validate_message(make(event=MISSING)) == ["missing event"]
        assert validate_message(make(event=""))[0].startswith("event must be a non-empty string")

    def test_group_needs_group_id(self) -> None:
        """A group needs a groupId."""
        assert validate_message(make("group", groupId=MISSING)) == ["missing groupId"]

    def test_alias_needs_previous_id_and_user_id(self) -> None:
        """An alias needs previousId and userId (anonymousId does not replace userId)."""
        assert validate_message(make("alias", previousId=MISSING)) == ["missing previousId"]
        assert validate_message(make("alias", userId=MISSING, anonymousId="a1")) == [
            "missing userId"
        ]

    @pytest.mark.parametrize(
        ("value", "problem"),
        [(MISSING, "missing messageId"), ("", "messageId must be"), (7, "messageId must be")],
    )
    def test_message_id_required(self, value: object, problem: str) -> None:
        """messageId must be a non-empty string."""
        (found,) = validate_message(make(messageId=value))
        assert found.startswith(problem)

    @pytest.mark.parametrize(
        "value",
        [
            "2024-05-01T12:00:00Z",
            "2024-05-01T12:00:00.123456+02:00",
            "2024-05-01T12:00-0530",
            "2024-02-29T23:59:59.1z",
        ],
    )
    def test_good_timestamps(self, value: str) -> None:
        """ISO-8601 date-times with Z or a UTC offset are accepted."""
        assert validate_message(make(timestamp=value)) == []

    @pytest.mark.parametrize(
        "value",
        [
            "2024-05-01T12:00:00",
            "2024-05-01",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-05-01 12:00:00Z",
            "2024-05-01T12:00:00+25:00",
            "yesterday",
            1714564800,
            None,
        ],
    )
    def test_bad_timestamps(self, value: object) -> None:
        """Timestamps without an offset, not real dates, or not strings are problems."""
        (problem,) = validate_message(make(timestamp=value))
        assert problem.startswith("missing timestamp" if value is None else "timestamp must be")

    @pytest.mark.parametrize(
        ("kind", "key"),
        [
            ("track", "properties"),
            ("page", "properties"),
            ("screen", "properties"),
            ("identify", "traits"),
            ("group", "traits"),
            ("alias", "context"),
            ("track", "integrations"),
        ],
    )
    def test_object_fields(self, kind: str, key: str) -> None:
        """properties, traits, context and integrations must be objects when present."""
        expected = [f"{key} must be an object, got array"]
        assert validate_message(make(kind, **{key: ["a"]})) == expected
        assert validate_message(make(kind, **{key: {}})) == []

    @pytest.mark.parametrize(("kind", "key"), [("page", "name"), ("screen", "category")])
    def test_page_and_screen_names_are_strings(self, kind: str, key: str) -> None:
        """name and category must be strings on page and screen."""
        assert validate_message(make(kind, **{key: 3})) == [f"{key} must be a string, got number"]

    @pytest.mark.parametrize(
        ("wrong", "right"),
        [
            ("user_id", "userId"),
            ("anonymous_id", "anonymousId"),
            ("message_id", "messageId"),
            ("group_id", "groupId"),
            ("previous_id", "previousId"),
        ],
    )
    def test_snake_case_fields(self, wrong: str, right: str) -> None:
        """snake_case spellings of spec fields at the top level are problems naming the fix."""
        expected = [f"{wrong} is not a spec field: use {right}"]
        assert validate_message(make(**{wrong: "x"})) == expected

    def test_size_limit(self) -> None:
        """A message over max_message_bytes (32 KiB by default) of compact JSON is a problem."""
        big = make(properties={"blob": "é" * 17_000})  # 34 000 bytes of UTF-8
        (problem,) = validate_message(big)
        assert "over the 32768-byte limit" in problem
        assert validate_message(make(), max_message_bytes=50)[0].endswith("50-byte limit")
        assert validate_message(make(properties={"blob": "x" * 30_000})) == []

    def test_several_problems_reported_together(self) -> None:
        """All problems of a message are returned, not just the first."""
        problems = validate_message({"type": "track", "user_id": "u1"})
        assert len(problems) == 5

    @settings(max_examples=50, deadline=None)
    @given(
        kind=st.sampled_from(sorted(BASE)),
        user_id=st.text(min_size=1),
        properties=st.dictionaries(st.text(), st.integers() | st.text() | st.booleans()),
    )
    def test_generated_valid_messages(
        self, kind: str, user_id: str, properties: dict[str, Any]
    ) -> None:
        """Any non-empty user id and any small JSON properties keep a message valid."""
        extra = {"properties": properties} if kind in ("track", "page", "screen") else {}
        assert validate_message(make(kind, userId=user_id, **extra)) == []


# -- stats -------------------------------------------------------------------------------


class TestStats:
    """Counting, duplicates by messageId, the info endpoints and reset."""

    def test_duplicates_by_message_id(self, collector: Collector) -> None:
        """/stats counts a messageId received twice as one duplicate and lists only it."""
        repeated = make(messageId="m-1")
        post(collector, [repeated, make(messageId="m-2")])
        post(collector, [repeated])
        stats = requests.get(collector.url + "/stats", timeout=5).json()
        assert stats["received"] == 3
        assert stats["unique"] == 2
        assert stats["duplicates"] == 1
        assert stats["by_message_id"] == {"m-1": 2}
        assert stats == collector.stats()

    def test_counts(self, collector: Collector) -> None:
        """stats() counts invalid messages, requests and accepted batches separately."""
        post(collector, [make(), make(event=MISSING)])
        post_raw(collector, b"nope")
        requests.get(collector.url + "/stats", timeout=5)  # info requests are not counted
        stats = collector.stats()
        assert (stats["received"], stats["invalid"]) == (2, 1)
        assert (stats["requests"], stats["batches"]) == (2, 1)
        assert stats["faults"] == {"status": 0, "error": 0, "reset": 0}

    def test_messages_endpoint(self, collector: Collector) -> None:
        """GET /messages returns the received messages as JSON."""
        sent = [make(), make("identify")]
        post(collector, sent)
        assert requests.get(collector.url + "/messages", timeout=5).json() == sent

    def test_reset(self, collector: Collector) -> None:
        """reset() forgets messages, problems, requests and counts."""
        post(collector, [make(), make(event=MISSING)])
        collector.reset()
        assert (collector.messages, collector.invalid, collector.requests) == ([], [], [])
        assert collector.stats()["received"] == 0
        post(collector, [make()])
        assert collector.stats()["received"] == 1


# -- faults ------------------------------------------------------------------------------


class TestFaults:
    """Injected failures: errors, fixed statuses, latency, resets and downtime."""

    def test_fail_rate_is_seeded(self, collector_factory: Factory) -> None:
        """With a seed, fail_rate answers the same requests 500 each run; they record nothing."""
        runs = []
        for _ in range(2):
            collector = collector_factory(faults=Faults(fail_rate=0.5, seed=42))
            runs.append([post(collector, [make()]).status_code for _ in range(30)])
            stats = collector.stats()
            assert stats["faults"]["error"] == runs[-1].count(500)
            assert stats["received"] == runs[-1].count(200)
        assert runs[0] == runs[1]
        assert set(runs[0]) == {200, 500}
        assert 5 <= runs[0].count(500) <= 25

    @pytest.mark.parametrize("status", [429, 503])
    def test_status_with_retry_after(self, collector_factory: Factory, status: int) -> None:
        """The first status_count requests get the status and Retry-After; later ones succeed."""
        faults = Faults(status=status, status_count=2, retry_after="3")
        collector = collector_factory(faults=faults)
        answers = [post(collector, [make()]) for _ in range(3)]
        assert [a.status_code for a in answers] == [status, status, 200]
        assert [a.headers.get("Retry-After") for a in answers] == ["3", "3", None]
        assert collector.stats()["faults"]["status"] == 2
        assert len(collector.messages) == 1
        assert [r.fault for r in collector.requests] == ["status", "status", None]

    def test_fault_statuses_only_on_batches(self, collector_factory: Factory) -> None:
        """Faults hit batch requests only; /health keeps answering."""
        collector = collector_factory(faults=Faults(fail_rate=1.0))
        assert requests.get(collector.url + "/health", timeout=5).status_code == 200
        assert post(collector, [make()]).status_code == 500

    def test_latency(self, collector_factory: Factory) -> None:
        """latency delays each answer by at least that long, and the batch still succeeds."""
        collector = collector_factory(faults=Faults(latency=0.3))
        started = time.monotonic()
        response = post(collector, [make()])
        assert time.monotonic() - started >= 0.3
        assert response.status_code == 200
        assert len(collector.messages) == 1

    def test_reset(self, collector_factory: Factory) -> None:
        """reset_rate resets the connection unanswered; the fault is counted, the messages not."""
        collector = collector_factory(faults=Faults(reset_rate=1.0))
        with pytest.raises(requests.ConnectionError) as raised:
            post(collector, [make()])
        # A real RST (ECONNRESET), not an orderly close without answer (RemoteDisconnected).
        assert any(getattr(e, "errno", None) == errno.ECONNRESET for e in chained(raised.value))
        assert collector.messages == []
        assert collector.stats()["faults"]["reset"] == 1
        assert collector.requests[0].status == 0

    def test_down_for(self, collector_factory: Factory) -> None:
        """down_for refuses connections from start() for that long, then serves the same port."""
        started = time.monotonic()
        collector = collector_factory(faults=Faults(down_for=0.4))
        with pytest.raises(requests.ConnectionError):
            post(collector, [make()])
        assert not collector.is_up
        assert collector.wait_until_up(timeout=5)
        assert time.monotonic() - started >= 0.4
        assert post(collector, [make()]).status_code == 200
        assert len(collector.messages) == 1

    def test_down_on_demand(self, collector: Collector) -> None:
        """down() drops open connections and refuses new ones, then listens on the same port."""
        port = collector.port
        with requests.Session() as session:
            assert session.post(collector.endpoint, json={"batch": [make()]}, timeout=5).ok
            collector.down(0.3)
            with pytest.raises(requests.ConnectionError):
                session.post(collector.endpoint, json={"batch": [make()]}, timeout=5)
            assert collector.wait_until_up(timeout=5)
            assert session.post(collector.endpoint, json={"batch": [make()]}, timeout=5).ok
        assert collector.port == port
        assert len(collector.messages) == 2

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"fail_rate": 1.5},
            {"reset_rate": -0.1},
            {"fail_rate": 0.6, "reset_rate": 0.6},
            {"latency": -1.0},
            {"status": 42},
            {"status_count": -1},
            {"retry_after": "1\r\nX: y"},
        ],
    )
    def test_nonsense_rejected(self, kwargs: dict[str, Any]) -> None:
        """Faults refuses out-of-range values."""
        with pytest.raises(ValueError):
            Faults(**kwargs)

    def test_off_by_default(self) -> None:
        """A default Faults injects nothing."""
        assert not Faults().active
        assert Faults().describe() == "none"


# -- output and echo ---------------------------------------------------------------------


class TestOutput:
    """The JSONL output file."""

    def test_jsonl_appended(self, collector_factory: Factory, tmp_path: Path) -> None:
        """Each received message is appended as one JSON line, after what the file held."""
        output = tmp_path / "events.jsonl"
        output.write_text('{"earlier": true}\n')
        collector = collector_factory(output=str(output))
        first, second, third = make(), make("page"), make(event=MISSING)
        post(collector, [first, second])
        post(collector, [third])
        lines = output.read_text().splitlines()
        assert [json.loads(line) for line in lines] == [{"earlier": True}, first, second, third]


class TestEcho:
    """The readable line printed per event."""

    def echo_of(self, collector_factory: Factory, batch: list[Any]) -> list[str]:
        """The echo lines printed for one batch."""
        echo = io.StringIO()
        collector = collector_factory(echo=echo)
        assert post(collector, batch).status_code == 200
        return echo.getvalue().splitlines()

    def test_lines_per_type(self, collector_factory: Factory) -> None:
        """Each type gets one line with its identity and its main fields."""
        batch = [make(kind) for kind in ("track", "identify", "page", "screen", "group", "alias")]
        assert self.echo_of(collector_factory, batch) == [
            'track     user=u1  "Order Completed"  {order_id: o1, revenue: 99.99}',
            "identify  user=u1  traits={email: a@example.com}",
            'page      user=u1  "Home"  {path: /}',
            'screen    anon=a1  "Settings"',
            "group     user=u1  group=g1  traits={name: Acme}",
            "alias     user=u1  previous=a1",
        ]

    def test_long_properties_truncated(self, collector_factory: Factory) -> None:
        """Only the first few properties are shown, long values are cut, nesting is summarised."""
        properties: dict[str, Any] = {f"k{i}": i for i in range(10)}
        properties["k0"] = "v" * 100
        properties["k1"] = {"nested": True}
        (line,) = self.echo_of(collector_factory, [make(properties=properties)])
        assert line.endswith("{k0: " + "v" * 29 + "..., k1: {...}, k2: 2, k3: 3, +6 more}")

    def test_invalid_problem_lines(self, collector_factory: Factory) -> None:
        """An invalid message is followed by one '! invalid' line per problem."""
        bad = make(event=MISSING, messageId="m-bad", user_id="u1")
        lines = self.echo_of(collector_factory, [bad])
        assert lines[1:] == [
            "! invalid track m-bad: missing event",
            "! invalid track m-bad: user_id is not a spec field: use userId",
        ]


# -- command line ------------------------------------------------------------------------


class _Lines:
    """Lines of a subprocess's stdout, read on a thread so they can be awaited with a deadline."""

    def __init__(self, stream: Any) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: Any) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def expect(self, text: str, timeout: float = 10.0) -> str:
        """The first (new) line containing ``text``; fails at the deadline or end of output."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self._queue.get(timeout=max(remaining, 0))
            except queue.Empty:
                pytest.fail(f"no line containing {text!r} within {timeout}s; saw {self.seen}")
            if line is None:
                pytest.fail(f"output ended without {text!r}; saw {self.seen}")
            self.seen.append(line)
            if text in line:
                return line


@pytest.fixture
def run_cli() -> Iterator[Callable[..., tuple[subprocess.Popen[str], _Lines]]]:
    """Start ``python -m logbridge collect ARGS`` as a subprocess; kill it if still running."""
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str) -> tuple[subprocess.Popen[str], _Lines]:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), *sys.path])}
        proc = subprocess.Popen(
            [sys.executable, "-m", "logbridge", "collect", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=REPO_ROOT,
        )
        procs.append(proc)
        return proc, _Lines(proc.stdout)

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


class TestCli:
    """``logbridge collect`` as a real subprocess, and its argument checks in-process."""

    def test_collect_echoes_and_summarises(self, run_cli: Callable[..., Any]) -> None:
        """The CLI prints the endpoint, an echo line per event and, on SIGINT, a summary; exit 0."""
        port = free_port()
        proc, lines = run_cli("--port", str(port))
        lines.expect(f"listening on http://127.0.0.1:{port}/v1/batch")
        batch = {"batch": [make(), make(event=MISSING)]}
        url = f"http://127.0.0.1:{port}/v1/batch"
        assert requests.post(url, json=batch, timeout=5).status_code == 200
        assert lines.expect("track     user=u1").endswith("{order_id: o1, revenue: 99.99}")
        lines.expect("! invalid track")
        proc.send_signal(signal.SIGINT)
        summary = lines.expect("stopped:")
        assert "received 2" in summary
        assert "duplicates 0" in summary
        assert "invalid 1" in summary
        assert proc.wait(timeout=10) == 0

    def test_collect_quiet_output_key_sigterm(
        self, run_cli: Callable[..., Any], tmp_path: Path
    ) -> None:
        """--quiet, --output, --write-key: no echo, a JSONL file, a masked key; SIGTERM exits 0."""
        port, output = free_port(), tmp_path / "out.jsonl"
        proc, lines = run_cli(
            "--port",
            str(port),
            "--quiet",
            "--output",
            str(output),
            "--write-key",
            KEY,
            "--status",
            "503",
            "--retry-after",
            "2",
        )
        lines.expect("listening on")
        assert "wk******" in lines.expect("write key")
        lines.expect("faults: status 503 x1 (Retry-After: 2)")
        url = f"http://127.0.0.1:{port}/v1/batch"
        first = requests.post(url, json={"batch": [make()]}, auth=(KEY, ""), timeout=5)
        assert (first.status_code, first.headers["Retry-After"]) == (503, "2")
        msg = make()
        assert requests.post(url, json={"batch": [msg]}, auth=(KEY, ""), timeout=5).ok
        proc.send_signal(signal.SIGTERM)
        assert "received 1," in lines.expect("stopped:")
        assert proc.wait(timeout=10) == 0
        assert [json.loads(line) for line in output.read_text().splitlines()] == [msg]
        assert not any(KEY in line or "track" in line for line in lines.seen)

    @pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com"])
    def test_refuses_remote_host(self, host: str, capsys: pytest.CaptureFixture[str]) -> None:
        """A non-loopback --host is refused (exit 2) unless --allow-remote is given."""
        assert main(["collect", "--host", host]) == 2
        assert "--allow-remote" in capsys.readouterr().err

    def test_port_in_use(self, collector: Collector, capsys: pytest.CaptureFixture[str]) -> None:
        """A port that is already taken exits 1 with an error, without hanging."""
        assert main(["collect", "--port", str(collector.port)]) == 1
        assert "cannot listen" in capsys.readouterr().err

    @pytest.mark.parametrize(
        "args", [["--fail-rate", "2"], ["--status-count", "3"], ["--latency", "-1"]]
    )
    def test_bad_fault_options(self, args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
        """Out-of-range fault options exit 2 with a message instead of starting."""
        assert main(["collect", *args]) == 2
        assert capsys.readouterr().err

    def test_no_command(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Without a sub-command the help is printed and the exit code is 2."""
        assert main([]) == 2
        assert "collect" in capsys.readouterr().err
