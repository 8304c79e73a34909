"""The collector's debugger: its JSON API, live stream, redaction, memory bound and terminal."""

from __future__ import annotations

import contextlib
import gzip
import http.client
import json
import os
import pty
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import requests

from logbridge.cli import main
from logbridge.collector import Collector
from logbridge.collector.debugger import PAGE_POLICY
from logbridge.collector.debugger.views import event_json, request_json
from logbridge.collector.events import Event, EventLog, KeptRequest
from logbridge.collector.recorder import RequestRecord
from logbridge.collector.terminal import EventPrinter, summary_lines, wants_colour
from tests.support import wait_until

ROOT = Path(__file__).resolve().parents[1]
KEY = "wk_debugger_s3cret_key"
TIMESTAMP = "2024-05-01T12:00:00.123Z"
Factory = Callable[..., Collector]


def make(kind: str = "track", **fields: Any) -> dict[str, Any]:
    """A valid message of ``kind`` (a track of "Order Completed" by default), ``fields`` over it."""
    msg: dict[str, Any] = {
        "type": kind, "userId": "u1", "messageId": str(uuid.uuid4()), "timestamp": TIMESTAMP
    }
    if kind == "track":
        msg.update(event="Order Completed", properties={"revenue": 9.5})
    msg.update(fields)
    return {key: value for key, value in msg.items() if value is not None}


def post(collector: Collector, batch: list[Any], **kwargs: Any) -> requests.Response:
    """POST a batch to ``collector``; assert it was accepted."""
    answer = requests.post(collector.endpoint, json={"batch": batch}, timeout=5, **kwargs)
    assert answer.status_code == 200, answer.text
    return answer


def events(collector: Collector, **params: str) -> dict[str, Any]:
    """``GET /events`` with ``params``, as JSON."""
    answer = requests.get(collector.url + "/events", params=params, timeout=5)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def names(body: dict[str, Any]) -> list[str | None]:
    """The event names of an ``/events`` answer, in its order."""
    return [event["name"] for event in body["events"]]


# -- the API -----------------------------------------------------------------------------


class TestEventsApi:
    """``GET /events``, ``DELETE /events``, ``GET /stats`` and ``GET /requests/ID``."""

    def test_newest_first_with_row_fields(self, collector: Collector) -> None:
        """Events come newest first with type, name, user, timestamp, format and request id."""
        post(collector, [make(event="First")])
        post(collector, [make("identify", userId=None, anonymousId="a1"), make(event="Third")])
        body = events(collector)
        assert names(body) == ["Third", None, "First"]
        third, identify, first = body["events"]
        assert (identify["type"], identify["user"], identify["format"]) == (
            "identify", "a1", "segment"
        )
        assert (third["timestamp"], third["valid"], third["problems"]) == (TIMESTAMP, True, [])
        assert third["request_id"] == identify["request_id"] != first["request_id"]
        assert third["message"]["event"] == "Third"
        assert (body["kept"], body["max_events"], body["evicted"]) == (3, 10_000, 0)

    def test_filters(self, collector: Collector) -> None:
        """type, event, user (userId or anonymousId), invalid, after and limit each narrow it."""
        post(collector, [
            make(event="Signed Up"),
            make(event="Order Completed", userId="u2"),
            make("page", name="Home", userId=None, anonymousId="anon-7"),
            make(event="Order Completed", messageId=None),
        ])
        assert names(events(collector, type="page")) == ["Home"]
        assert len(events(collector, event="Order Completed")["events"]) == 2
        assert names(events(collector, user="u2")) == ["Order Completed"]
        assert names(events(collector, user="anon-7")) == ["Home"]
        invalid = events(collector, invalid="true")["events"]
        assert [e["problems"][0]["field"] for e in invalid] == ["messageId"]
        assert len(events(collector, invalid="false")["events"]) == 3
        assert names(events(collector, after="2")) == ["Order Completed", "Home"]
        assert names(events(collector, limit="1")) == ["Order Completed"]
        assert names(events(collector, type="track", user="u1", invalid="0")) == ["Signed Up"]

    @pytest.mark.parametrize("query", ["invalid=maybe", "limit=ten", "after=-1"])
    def test_bad_query_400(self, collector: Collector, query: str) -> None:
        """An unreadable query parameter is a 400 naming it, not a silent empty list."""
        answer = requests.get(f"{collector.url}/events?{query}", timeout=5)
        assert answer.status_code == 400
        assert query.split("=")[0] in answer.json()["error"]

    def test_problems_name_their_rule_and_field(self, collector: Collector) -> None:
        """Each problem of an invalid message carries the rule it broke and the field."""
        post(collector, [make(event=None, user_id="u1", timestamp="yesterday")])
        (event,) = events(collector)["events"]
        assert event["valid"] is False
        assert [(p["rule"], p["field"]) for p in event["problems"]] == [
            ("required-field", "event"),
            ("iso8601-timestamp", "timestamp"),
            ("camel-case-field", "user_id"),
        ]
        assert event["problems"][0]["message"] == "missing event"

    def test_non_object_message_is_an_invalid_event(self, collector: Collector) -> None:
        """A batch item that is not an object is kept as an invalid event with its reason."""
        post(collector, ["just a string"])
        (event,) = events(collector)["events"]
        assert (event["type"], event["message"]) == (None, "just a string")
        assert event["problems"][0]["rule"] == "message-object"

    def test_answers_are_strict_json(self, collector: Collector) -> None:
        """A NaN in a message (Python's json accepts it) reaches the page as the string "NaN"."""
        raw = ('{"batch": [{"type": "track", "event": "N", "userId": "u1", "messageId": "m1", '
               f'"timestamp": "{TIMESTAMP}", "properties": {{"x": NaN}}}}]}}')
        answer = requests.post(collector.endpoint, data=raw, timeout=5)
        assert answer.status_code == 200

        def refuse(name: str) -> None:
            raise AssertionError(f"{name} is not JSON")

        text = requests.get(collector.url + "/events", timeout=5).text
        (event,) = json.loads(text, parse_constant=refuse)["events"]
        assert event["message"]["properties"] == {"x": "NaN"}
        assert [p["rule"] for p in event["problems"]] == ["json-value"]

    def test_delete_clears_events_but_not_counts(self, collector: Collector) -> None:
        """DELETE /events empties the list; /stats still counts what was received."""
        post(collector, [make(), make("identify")])
        answer = requests.delete(collector.url + "/events", timeout=5)
        assert answer.json() == {"success": True, "cleared": 2}
        assert events(collector)["events"] == []
        stats = requests.get(collector.url + "/stats", timeout=5).json()
        assert (stats["received"], stats["by_type"], stats["events"]["kept"]) == (
            2, {"track": 1, "identify": 1}, 0
        )
        post(collector, [make(event="After")])
        assert names(events(collector)) == ["After"]

    def test_stats_extended_compatibly(self, collector: Collector) -> None:
        """/stats keeps its keys and adds counts per type, event name, status and second."""
        post(collector, [make(), make(), make(event="Signed Up"), make("page", name="Home")])
        requests.post(collector.endpoint, data=b"nope", timeout=5)
        stats = requests.get(collector.url + "/stats", timeout=5).json()
        assert {"received", "unique", "duplicates", "invalid", "requests", "batches",
                "faults", "by_message_id"} <= stats.keys()
        assert stats["by_type"] == {"track": 3, "page": 1}
        assert stats["by_event"] == {"Order Completed": 2, "Signed Up": 1, "Home": 1}
        assert stats["requests_by_status"] == {"200": 1, "400": 1}
        assert sum(count for _, count in stats["events"]["per_second"]) == 4
        assert stats == collector.stats()

    def test_events_path_allows_get_and_delete(self, collector: Collector) -> None:
        """Another method on /events is a 405 whose Allow header lists GET and DELETE."""
        answer = requests.put(collector.url + "/events", timeout=5)
        assert answer.status_code == 405
        assert answer.headers["Allow"] == "GET, HEAD, DELETE"

    def test_request_view(self, collector: Collector) -> None:
        """GET /requests/ID shows method, path, status, headers and the body as it came."""
        post(collector, [make(event="Shown")], headers={"X-Trace": "t-1"})
        request_id = events(collector)["events"][0]["request_id"]
        shown = requests.get(f"{collector.url}/requests/{request_id}", timeout=5).json()
        assert (shown["method"], shown["path"], shown["status"]) == ("POST", "/v1/batch", 200)
        assert shown["headers"]["X-Trace"] == "t-1"
        assert json.loads(shown["body"])["batch"][0]["event"] == "Shown"
        missing = requests.get(f"{collector.url}/requests/999", timeout=5)
        assert missing.status_code == 404


class TestRedaction:
    """The write key never appears in the API or on the page."""

    def test_key_nowhere_in_answers(self, collector_factory: Factory) -> None:
        """Basic auth, a writeKey in the body and a gzipped body: every answer is key-free."""
        collector = collector_factory(write_key=KEY)
        post(collector, [make()], auth=(KEY, ""))
        body = gzip.compress(json.dumps({"batch": [make()], "writeKey": KEY}).encode())
        answer = requests.post(
            collector.endpoint, data=body, timeout=5,
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )
        assert answer.status_code == 200
        texts = [
            requests.get(collector.url + path, timeout=5).text
            for path in ("/", "/debugger/app.js", "/events", "/stats", "/requests/1",
                         "/requests/2")
        ]
        texts.append(read_stream(collector, count=2))
        assert all(KEY not in text for text in texts)
        first, second = (json.loads(texts[n]) for n in (4, 5))
        assert first["headers"]["Authorization"] == "Basic ***"
        assert json.loads(second["body"])["writeKey"] == "***"
        assert "gzip" in second["body_note"]

    def test_key_like_headers_and_amplitude_key(self) -> None:
        """Headers named like keys or tokens, and Amplitude's api_key, are replaced by ***."""
        record = RequestRecord(
            path="/2/httpapi", status=200, content_encoding=None, auth_user=None,
            body_bytes=0, message_count=1, user_agent=None,
            headers={"X-Api-Key": "k-123456789", "Cookie": "s=1", "Accept": "*/*"},
        )
        wire = json.dumps({"api_key": "amp-secret-key", "events": [{"event_type": "x"}]})
        shown = request_json(KeptRequest(1, 0.0, record, wire.encode(), 1, 1), [])
        assert shown["headers"] == {"X-Api-Key": "***", "Cookie": "***", "Accept": "*/*"}
        assert "amp-secret-key" not in shown["body"]
        assert json.loads(shown["body"])["api_key"] == "***"


# -- the live stream ---------------------------------------------------------------------


class _Stream:
    """A server-sent events connection to a collector, read frame by frame with a deadline."""

    def __init__(self, collector: Collector, headers: dict[str, str] | None = None) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", collector.port, timeout=10)
        self.connection.request("GET", "/events/stream", headers=headers or {})
        self.response = self.connection.getresponse()

    def frame(self) -> dict[str, str]:
        """The next frame with data (comments and retry hints skipped); {} at the end."""
        fields: dict[str, str] = {}
        while True:
            line = self.response.readline().decode("utf-8")
            if not line:
                return fields
            line = line.rstrip("\n")
            if line == "":
                if "data" in fields:
                    return fields
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            fields[name] = value

    def close(self) -> None:
        self.connection.close()


@pytest.fixture
def stream_to() -> Iterator[Callable[..., _Stream]]:
    """Open event streams to collectors; close them after the test."""
    opened: list[_Stream] = []

    def open_stream(collector: Collector, **headers: str) -> _Stream:
        stream = _Stream(collector, headers)
        opened.append(stream)
        return stream

    yield open_stream
    for stream in opened:
        stream.close()


def read_stream(collector: Collector, count: int) -> str:
    """The raw text of the first ``count`` frames of a new stream."""
    stream = _Stream(collector)
    try:
        return "\n".join(json.dumps(stream.frame()) for _ in range(count))
    finally:
        stream.close()


class TestStream:
    """``GET /events/stream``: kept events, then each new one, as server-sent events."""

    def test_kept_then_new_events(
        self, collector: Collector, stream_to: Callable[..., _Stream]
    ) -> None:
        """The stream replays kept events oldest first, then sends new ones as they arrive."""
        post(collector, [make(event="Before")])
        stream = stream_to(collector)
        assert stream.response.getheader("Content-Type", "").startswith("text/event-stream")
        first = stream.frame()
        assert json.loads(first["data"])["name"] == "Before"
        post(collector, [make(event="During")])
        second = stream.frame()
        assert json.loads(second["data"])["name"] == "During"
        assert int(second["id"]) == int(first["id"]) + 1

    def test_resumes_after_last_event_id(
        self, collector: Collector, stream_to: Callable[..., _Stream]
    ) -> None:
        """A reconnecting client (Last-Event-ID) gets only the events it has not seen."""
        post(collector, [make(event="Seen"), make(event="Missed")])
        stream = stream_to(collector, **{"Last-Event-ID": "1"})
        assert json.loads(stream.frame()["data"])["name"] == "Missed"

    def test_announces_clear(
        self, collector: Collector, stream_to: Callable[..., _Stream]
    ) -> None:
        """DELETE /events reaches open streams as a ``clear`` event."""
        post(collector, [make()])
        stream = stream_to(collector)
        stream.frame()
        requests.delete(collector.url + "/events", timeout=5)
        assert stream.frame()["event"] == "clear"

    def test_ends_when_the_collector_stops(
        self, collector: Collector, stream_to: Callable[..., _Stream]
    ) -> None:
        """Stopping the collector ends open streams at once instead of leaving them hanging."""
        post(collector, [make()])
        stream = stream_to(collector)
        stream.frame()
        started = time.monotonic()
        collector.stop()
        assert stream.frame() == {}
        assert time.monotonic() - started < 5


# -- memory ------------------------------------------------------------------------------


class TestBoundedMemory:
    """Only the last N events are kept; counts stay exact."""

    def test_keeps_the_last_n_events(self, collector_factory: Factory) -> None:
        """With max_events=5, twelve events leave the newest five; counts say twelve."""
        collector = collector_factory(max_events=5)
        for i in range(12):
            post(collector, [make(event=f"E{i}")])
        body = events(collector)
        assert names(body) == [f"E{i}" for i in range(11, 6, -1)]
        assert (body["kept"], body["max_events"], body["evicted"]) == (5, 5, 7)
        assert collector.stats()["by_type"] == {"track": 12}

    def test_requests_dropped_with_their_events(self, collector_factory: Factory) -> None:
        """A request whose events are all gone is no longer kept; newer ones still are."""
        collector = collector_factory(max_events=2)
        for _ in range(3):
            post(collector, [make()])
        statuses = [
            requests.get(f"{collector.url}/requests/{n}", timeout=5).status_code
            for n in (1, 2, 3)
        ]
        assert statuses == [404, 200, 200]

    def test_request_bodies_bounded_in_bytes(self) -> None:
        """Request bodies beyond the byte budget are dropped, oldest first."""
        log = EventLog(max_events=100, max_kept_body_bytes=1_000)
        record = RequestRecord("/v1/batch", 200, None, None, 600, 1, None, {})
        for _ in range(3):
            log.add_batch(record, b"x" * 600, [make()], [])
        assert [log.request(n) is not None for n in (1, 2, 3)] == [False, False, True]

    def test_recorder_bounded_by_max_messages(self, collector_factory: Factory) -> None:
        """max_messages bounds messages and requests; received and wait_for stay exact."""
        collector = collector_factory(max_messages=3)
        for i in range(10):
            post(collector, [make(event=f"M{i}")])
        assert [m["event"] for m in collector.messages] == ["M7", "M8", "M9"]
        assert len(collector.requests) == 3
        assert collector.wait_for(10, timeout=1)
        assert (collector.stats()["received"], collector.stats()["requests"]) == (10, 10)

    def test_names_counted_up_to_a_limit(self) -> None:
        """Past the limit of distinct event names, new names are counted as ``(other)``."""
        log = EventLog()
        record = RequestRecord("/v1/batch", 200, None, None, 0, 1, None, {})
        log.add_batch(record, b"", [make(event=f"N{i}") for i in range(1_005)], [])
        summary = log.summary()
        assert len(summary) == 1_001
        assert summary[("track", "(other)")] == (5, 0)


# -- the page (served; the browser test drives it) ---------------------------------------


class TestPage:
    """``GET /``: the page and its files, from the package, under a strict policy."""

    def test_page_served_with_a_strict_policy(self, collector: Collector) -> None:
        """The page comes with a CSP allowing only its own scripts and styles, no framing."""
        answer = requests.get(collector.url + "/", timeout=5)
        assert answer.status_code == 200
        assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
        policy = answer.headers["Content-Security-Policy"]
        assert policy == PAGE_POLICY
        assert "default-src 'none'" in policy and "script-src 'self'" in policy
        assert "unsafe" not in policy
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert '<script src="/debugger/app.js"' in answer.text

    def test_nothing_fetched_from_elsewhere(self) -> None:
        """The shipped files name no other host, and the page's script sets no HTML."""
        static = resources.files("logbridge.collector.debugger").joinpath("static")
        texts = {name: static.joinpath(name).read_text() for name in
                 ("index.html", "app.js", "style.css")}
        for name, text in texts.items():
            assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text), name
        assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write",
                             texts["app.js"])

    def test_files_listed_as_package_data(self) -> None:
        """pyproject.toml ships the static files, so an installed package serves the page."""
        assert '"collector/debugger/static/*"' in (ROOT / "pyproject.toml").read_text()

    @pytest.mark.parametrize(
        "path", ["/", "/events", "/requests/1", "/events/stream", "/messages", "/stats"]
    )
    def test_other_host_names_refused(self, collector: Collector, path: str) -> None:
        """A request naming another host (DNS rebinding) gets 403 from the debugger paths."""
        answer = requests.get(
            collector.url + path, headers={"Host": "evil.example:8765"}, timeout=5
        )
        assert answer.status_code == 403

    def test_localhost_by_name_allowed(self, collector: Collector) -> None:
        """``localhost`` is a loopback name, so the page opens at http://localhost:PORT/."""
        answer = requests.get(
            collector.url + "/events", headers={"Host": f"localhost:{collector.port}"},
            timeout=5,
        )
        assert answer.status_code == 200


# -- the terminal ------------------------------------------------------------------------

ANSI = re.compile(r"\x1b\[[0-9;]*m")
LINE = re.compile(
    r"^\d\d:\d\d:\d\d\.\d{3}  track     user=u1 {15}\"Order Completed\" {13}\{revenue: 9.5\}$"
)


class _Output:
    """Lines a subprocess writes (to a pipe or a terminal), awaited with a deadline."""

    def __init__(self, read: Callable[[], bytes]) -> None:
        self.seen: list[str] = []
        self.errors: _Output | None = None  # stderr, when it is read apart
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(read,), daemon=True).start()

    def _pump(self, read: Callable[[], bytes]) -> None:
        pending = b""
        while True:
            try:
                chunk = read()
            except OSError:  # the terminal's other end closed
                chunk = b""
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self._lines.put(line.decode("utf-8", "replace").rstrip("\r"))
        if pending:
            self._lines.put(pending.decode("utf-8", "replace"))
        self._lines.put(None)

    def expect(self, text: str, timeout: float = 10.0) -> str:
        """The next line containing ``text`` (colour codes ignored); fail at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(deadline - time.monotonic(), 0))
            except queue.Empty:
                pytest.fail(f"no line containing {text!r} within {timeout}s; saw {self.seen}"
                            f"{self._stderr()}")
            if line is None:
                pytest.fail(f"output ended without {text!r}; saw {self.seen}{self._stderr()}")
            self.seen.append(line)
            if text in ANSI.sub("", line):
                return line

    def _stderr(self) -> str:
        """What the process wrote to stderr so far, for a failure message."""
        if self.errors is None:
            return ""
        lines = []
        with contextlib.suppress(queue.Empty):
            while (line := self.errors._lines.get_nowait()) is not None:
                lines.append(line)
        return f"; stderr: {lines}"

    def rest(self, timeout: float = 10.0) -> list[str]:
        """Every remaining line, up to the end of the output."""
        lines: list[str] = []
        while (line := self._lines.get(timeout=timeout)) is not None:
            lines.append(line)
        self.seen.extend(lines)
        return lines


@pytest.fixture
def collect() -> Iterator[Callable[..., tuple[subprocess.Popen[bytes], _Output, int]]]:
    """Start ``python -m logbridge collect`` on a pipe or a terminal; kill it if still running."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(
        *args: str, tty: bool = False, env: dict[str, str] | None = None
    ) -> tuple[subprocess.Popen[bytes], _Output, int]:
        child_env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")}
        child_env.update(PYTHONPATH=str(ROOT), TERM="xterm-256color", **(env or {}))
        command = [sys.executable, "-m", "logbridge", "collect", "--port", "0", *args]
        if tty:
            main_fd, child_fd = pty.openpty()
            proc = subprocess.Popen(command, stdout=child_fd, stderr=child_fd, env=child_env)
            os.close(child_fd)
            output = _Output(lambda: os.read(main_fd, 65536))
        else:
            # stderr apart, so that nothing written there can split a line of stdout
            proc = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env
            )
            assert proc.stdout is not None and proc.stderr is not None
            output = _Output(proc.stdout.read1)
            output.errors = _Output(proc.stderr.read1)
        procs.append(proc)
        page = output.expect("debugger page:", timeout=30)  # a cold start on a busy machine
        port = int(re.search(r"127\.0\.0\.1:(\d+)/", ANSI.sub("", page)).group(1))  # type: ignore[union-attr]
        return proc, output, port

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def send(port: int, batch: list[Any], **kwargs: Any) -> int:
    """POST a batch to a ``collect`` process; the status."""
    url = f"http://127.0.0.1:{port}/v1/batch"
    return requests.post(url, json={"batch": batch}, timeout=5, **kwargs).status_code


class TestTerminal:
    """What ``logbridge collect`` prints, as a real subprocess on a pipe and on a terminal."""

    def test_aligned_plain_lines_on_a_pipe(self, collect: Callable[..., Any]) -> None:
        """On a pipe each event is one aligned line without colour codes, problems below it."""
        _proc, output, port = collect()
        assert send(port, [make(), make(event="Signed Up", messageId=None)]) == 200
        line = output.expect('"Order Completed"')
        assert LINE.match(line), line
        second = output.expect('"Signed Up"')
        assert second.index('"Signed Up"') == line.index('"Order Completed"')
        problem = output.expect("! invalid track")
        assert problem.endswith("missing messageId  [required-field]")
        assert problem.startswith(" " * 14)
        assert not any("\x1b" in seen for seen in output.seen)

    def test_colour_on_a_terminal(self, collect: Callable[..., Any]) -> None:
        """On a terminal the type, name and problems are coloured."""
        _proc, output, port = collect(tty=True)
        assert send(port, [make(), make(event=None)]) == 200
        line = output.expect('"Order Completed"')
        assert "\x1b[36mtrack\x1b[0m" in line
        assert LINE.match(ANSI.sub("", line))
        assert output.expect("! invalid").lstrip().startswith("\x1b[31m")

    def test_no_color_honoured_on_a_terminal(self, collect: Callable[..., Any]) -> None:
        """NO_COLOR set: no colour codes even on a terminal."""
        _proc, output, port = collect(tty=True, env={"NO_COLOR": "1"})
        assert send(port, [make()]) == 200
        assert LINE.match(output.expect('"Order Completed"'))
        assert not any("\x1b" in seen for seen in output.seen)

    def test_start_line_and_summary_table(self, collect: Callable[..., Any]) -> None:
        """The page URL is printed on start; Ctrl-C prints counts per type and event name."""
        proc, output, port = collect("--write-key", KEY, "--max-events", "50")
        assert "(keeps the last 50 events)" in output.seen[-1]
        auth = (KEY, "")
        assert send(port, [make(), make(), make(event=None)], auth=auth) == 200
        assert send(port, [make("identify", traits={"plan": "pro"})], auth=auth) == 200
        assert send(port, [make()], auth=("wrong", "")) == 401
        output.expect("identify")
        proc.send_signal(signal.SIGINT)
        assert "received 4," in output.expect("stopped:")
        table = output.rest()
        assert proc.wait(timeout=10) == 0
        assert re.split(r"\s{2,}", table[0].strip()) == ["type", "event or name", "valid",
                                                          "invalid"]
        rows = [re.split(r"\s{2,}", row.strip()) for row in table[1:]]
        assert rows == [
            ["track", "Order Completed", "2", "0"],
            ["identify", "-", "1", "0"],
            ["track", "-", "0", "1"],
            ["total", "3", "1"],
            ["requests", "3 (200: 2, 401: 1)"],
        ]
        assert all(KEY not in line for line in output.seen)

    def test_open_starts_a_browser(self, collect: Callable[..., Any], tmp_path: Path) -> None:
        """--open hands the page URL to the browser (here a $BROWSER script that records it)."""
        opened = tmp_path / "opened.txt"
        script = tmp_path / "browser.py"
        script.write_text(f"import sys; open({str(opened)!r}, 'w').write(sys.argv[1])\n")
        _proc, _output, port = collect("--open", env={"BROWSER": f"{sys.executable} {script} %s"})
        assert wait_until(lambda: opened.exists() and opened.read_text())
        assert opened.read_text() == f"http://127.0.0.1:{port}/"

    def test_max_events_must_be_positive(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--max-events 0 is refused with a message naming the option (exit 2)."""
        assert main(["collect", "--max-events", "0"]) == 2
        assert "--max-events" in capsys.readouterr().err


class TestPrinter:
    """The event line and summary table, in-process."""

    def test_escape_sequences_in_data_are_not_printed(self) -> None:
        """An event name holding a terminal escape is printed with the escape made harmless."""
        event = Event(1, 0.0, 1, "segment", make(event="\x1b[2JGone"), ())
        (line,) = EventPrinter(sys.stdout, colour=False).lines(event)
        assert "\x1b" not in line and '"?[2JGone"' in line

    def test_other_formats_are_labelled(self) -> None:
        """An event recorded in another destination format says which at the end of its line."""
        event = Event(1, 0.0, 1, "amplitude", make(), ())
        (line,) = EventPrinter(sys.stdout).lines(event)
        assert line.endswith("[amplitude] {revenue: 9.5}")

    def test_amplitude_events_read_as_such(self) -> None:
        """An Amplitude event gets its type, name, user and time from Amplitude's fields."""
        amplitude = {"event_type": "Song Played", "user_id": "u5", "time": 1714564800123,
                     "event_properties": {"genre": "jazz"}, "insert_id": "i1"}
        record = RequestRecord("/2/httpapi", 200, None, None, 0, 1, None, {})
        log = EventLog()
        log.add_batch(record, b"{}", [amplitude], [], format="amplitude")
        (event,) = log.events()
        (line,) = EventPrinter(sys.stdout).lines(event)
        assert re.search(r'  track     user=u5 +"Song Played" +\[amplitude\] \{genre: jazz\}$',
                         line), line
        shown = event_json(event)
        assert (shown["format"], shown["type"], shown["name"], shown["user"]) == (
            "amplitude", "track", "Song Played", "u5"
        )
        assert shown["timestamp"] == "2024-05-01T12:00:00.123Z"

    def test_colour_only_for_a_terminal(self, tmp_path: Path) -> None:
        """wants_colour: not for a file, and not for a terminal when NO_COLOR is set."""
        main_fd, child_fd = pty.openpty()
        with open(child_fd, "w") as terminal, open(tmp_path / "f", "w") as file:
            assert wants_colour(terminal, {})
            assert not wants_colour(terminal, {"NO_COLOR": "1"})
            assert not wants_colour(terminal, {"TERM": "dumb"})
            assert not wants_colour(file, {})
        with contextlib.suppress(OSError):
            os.close(main_fd)

    def test_summary_without_events(self) -> None:
        """With nothing received the table still has its header, a none row and the totals."""
        lines = summary_lines({}, {"requests": 0})
        assert [line.split()[0] for line in lines] == ["type", "(none)", "total", "requests"]
