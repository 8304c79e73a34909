"""The local destinations: console lines on stderr, a JSON-lines file, and memory."""

from __future__ import annotations

import io
import json
import os
import stat
import threading
import types
from pathlib import Path
from typing import Any

import pytest

import logbridge
from logbridge.destinations.base import Destination
from logbridge.destinations.sinks import (
    LOCAL_LIMITS,
    PRESETS,
    ConsoleDestination,
    JsonlDestination,
    MemoryDestination,
    describe,
)
from logbridge.errors import ConfigurationError
from tests.support import analytics_logger, run_python, wait_until

TRACK = {
    "type": "track", "event": "Signed Up", "userId": "user-1", "messageId": "m-1",
    "properties": {"plan": "pro"}, "timestamp": "2026-12-01T08:00:00.000Z",
}
IDENTIFY = {"type": "identify", "anonymousId": "anon-1", "traits": {"email": "a@example.com"}}


def encoded(*messages: dict[str, Any]) -> list[bytes]:
    """Messages serialised as the sender hands them to a destination."""
    return [json.dumps(message).encode() for message in messages]


def options(**values: Any) -> Any:
    """The options a preset's build reads."""
    return types.SimpleNamespace(**{"jsonl_path": None, **values})


class TestProtocol:
    """All three are Destinations with the Segment wire format and bounded limits."""

    @pytest.mark.parametrize("name", ["console", "jsonl", "memory"])
    def test_presets_build_destinations(self, name: str, tmp_path: Path):
        """Each preset is off the network (url None, no key) and builds a Destination."""
        preset = PRESETS[name]
        assert preset.url is None and not preset.needs_key
        made = preset.build(options(jsonl_path=str(tmp_path / "events.jsonl")), None)
        assert isinstance(made, Destination)
        assert (made.name, made.wire_format) == (name, "segment")
        assert made.limits == LOCAL_LIMITS
        assert made.map_message(TRACK) == (TRACK,)
        made.close()

    def test_limits_are_generous_but_bounded(self):
        """A message may be far larger than Segment's 32 KB, but not unbounded."""
        assert 32 * 1024 < LOCAL_LIMITS.max_message_bytes <= LOCAL_LIMITS.max_request_bytes
        assert LOCAL_LIMITS.max_request_bytes <= 64 * 1024 * 1024
        assert 0 < LOCAL_LIMITS.max_request_count <= 100_000

    @pytest.mark.parametrize("name", ["console", "jsonl", "memory"])
    def test_an_endpoint_does_not_apply(self, name: str, tmp_path: Path):
        """An endpoint given with a local destination is a configuration mistake."""
        with pytest.raises(ConfigurationError, match="endpoint"):
            PRESETS[name].build(options(jsonl_path=str(tmp_path / "e.jsonl")), "http://x/v1/batch")


class TestConsole:
    """One readable line per message on stderr."""

    def test_one_line_per_message_on_stderr(self, capsys: pytest.CaptureFixture[str]):
        """Two messages are two lines on stderr, nothing on stdout."""
        outcome = ConsoleDestination().send(encoded(TRACK, IDENTIFY), timeout=1)
        captured = capsys.readouterr()
        assert outcome.ok and captured.out == ""
        assert captured.err.splitlines() == [
            'logbridge: track user=user-1 "Signed Up" {"plan": "pro"} at 2026-12-01T08:00:00.000Z',
            'logbridge: identify anonymous=anon-1 {"email": "a@example.com"}',
        ]

    @pytest.mark.parametrize(
        ("message", "expected"),
        [
            ({"type": "page", "userId": "u", "name": "Home"}, 'logbridge: page user=u "Home"'),
            ({"type": "group", "userId": "u", "groupId": "g"}, "logbridge: group user=u group=g"),
            ({"type": "alias", "userId": "u", "previousId": "p"},
             "logbridge: alias user=u previous=p"),
        ],
    )
    def test_each_type_says_what_it_is_about(self, message: dict[str, Any], expected: str):
        """Pages show their name, groups their group, aliases the previous id."""
        assert describe(message) == expected

    def test_values_cannot_break_the_line(self):
        """A newline inside a value stays on the message's line."""
        line = describe({"type": "track", "userId": "u", "event": "A\nB", "properties": {}})
        assert "\n" not in line and "A\\nB" in line

    def test_long_details_are_cut(self):
        """Large properties are shortened, so a line stays readable."""
        line = describe({"type": "track", "userId": "u", "event": "E",
                         "properties": {"text": "x" * 5000}})
        assert len(line) < 400 and line.endswith("...")

    def test_a_closed_stream_fails_the_batch_without_raising(self):
        """Writing to a closed stream is a failed batch, with the reason, not an exception."""
        stream = io.StringIO()
        stream.close()
        outcome = ConsoleDestination(stream).send(encoded(TRACK), timeout=1)
        assert outcome.error is not None and "console" in str(outcome.error)


class TestJsonl:
    """Messages appended to a file as JSON lines, one write per batch."""

    def test_batches_are_appended_as_lines(self, tmp_path: Path):
        """Two batches add their messages to what the file already held."""
        path = tmp_path / "events.jsonl"
        path.write_text('{"earlier": true}\n')
        sink = JsonlDestination(path)
        assert sink.send(encoded(TRACK), timeout=1).ok
        assert sink.send(encoded(IDENTIFY, TRACK), timeout=1).ok
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        assert lines == [{"earlier": True}, TRACK, IDENTIFY, TRACK]
        sink.close()

    def test_each_batch_is_on_disk_when_send_returns(self, tmp_path: Path):
        """No buffering: another reader sees the batch as soon as send returns."""
        path = tmp_path / "events.jsonl"
        sink = JsonlDestination(path)
        sink.send(encoded(TRACK), timeout=1)
        assert json.loads(path.read_text()) == TRACK
        sink.close()

    def test_a_new_file_is_private(self, tmp_path: Path):
        """The file is created readable by its owner only: events may hold personal data."""
        path = tmp_path / "events.jsonl"
        JsonlDestination(path).close()
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

    def test_an_unwritable_path_fails_at_start_up(self, tmp_path: Path):
        """A path in a missing directory is refused when the destination is made, naming it."""
        path = tmp_path / "missing" / "events.jsonl"
        with pytest.raises(ConfigurationError, match="jsonl_path") as caught:
            JsonlDestination(path)
        assert str(path) in str(caught.value)

    def test_the_preset_needs_a_path(self):
        """destination='jsonl' without jsonl_path names the option."""
        with pytest.raises(ConfigurationError, match="jsonl_path"):
            PRESETS["jsonl"].build(options(), None)

    def test_sending_after_close_reopens(self, tmp_path: Path):
        """A batch after close (a late flush) still lands in the file."""
        path = tmp_path / "events.jsonl"
        sink = JsonlDestination(path)
        sink.close()
        assert sink.send(encoded(TRACK), timeout=1).ok
        assert json.loads(path.read_text()) == TRACK
        sink.close()

    def test_a_failed_write_is_retryable(self, tmp_path: Path):
        """When the file cannot be written any more, the batch fails and will be retried."""
        path = tmp_path / "events.jsonl"
        sink = JsonlDestination(path)
        sink.close()
        path.unlink()
        path.mkdir()  # a directory where the file was: not writable, even by root
        outcome = sink.send(encoded(TRACK), timeout=1)
        assert outcome.error is not None and outcome.error.retryable
        assert str(path) in str(outcome.error)


class TestMemory:
    """Messages kept in a list, for tests."""

    def test_messages_and_batches(self):
        """Messages are kept decoded and in order, with the size of each batch."""
        sink = MemoryDestination()
        sink.send(encoded(TRACK), timeout=1)
        sink.send(encoded(IDENTIFY, TRACK), timeout=1)
        assert sink.messages == [TRACK, IDENTIFY, TRACK]
        assert sink.batch_sizes == [1, 2]

    def test_wait_for_wakes_on_arrival(self):
        """wait_for returns as soon as the messages arrive from another thread."""
        sink = MemoryDestination()
        sender = threading.Thread(target=sink.send, args=(encoded(TRACK, TRACK),),
                                  kwargs={"timeout": 1})
        sender.start()
        assert sink.wait_for(2, timeout=10)
        sender.join()
        assert not sink.wait_for(3, timeout=0.01)

    def test_clear(self):
        """clear forgets everything received."""
        sink = MemoryDestination()
        sink.send(encoded(TRACK), timeout=1)
        sink.clear()
        assert sink.messages == [] and sink.batch_sizes == []


class TestThroughLogging:
    """The sinks sit behind the same handler, batching, callbacks and stats as Segment."""

    def test_memory_is_reachable_from_the_handler(self):
        """destination='memory': the handler's listener holds the messages logged."""
        with analytics_logger(None, destination="memory", write_key=None) as (log, handler):
            log.info("Signed Up", extra={"user_id": "user-1", "plan": "pro"})
            log.info("identify", extra={"user_id": "user-1", "traits": {"email": "a@b.c"}})
            handler.flush()
            memory = handler.listener.destination
            assert isinstance(memory, MemoryDestination)
            assert memory.wait_for(2)
            assert [m["type"] for m in memory.messages] == ["track", "identify"]
            assert memory.messages[0]["properties"] == {"plan": "pro"}

    def test_an_instance_of_ones_own(self):
        """A MemoryDestination passed in is the one that receives."""
        memory = MemoryDestination()
        with analytics_logger(None, destination=memory, write_key=None) as (log, handler):
            log.info("Signed Up", extra={"user_id": "user-1"})
            handler.flush()
            assert memory.wait_for(1)

    def test_stats_and_callbacks_are_shared(self):
        """Sent counts and on_success work for a sink as for a network destination."""
        delivered: list[int] = []
        with analytics_logger(
            None, destination="memory", write_key=None, flush_at=3,
            on_success=lambda messages: delivered.append(len(messages)),
        ) as (log, handler):
            for number in range(7):
                log.info("Tick", extra={"user_id": "user-1", "n": number})
            handler.flush()
            assert wait_until(lambda: handler.stats()["sent"] == 7)
            assert sum(delivered) == 7
            assert max(handler.listener.destination.batch_sizes) <= 3

    def test_jsonl_file(self, tmp_path: Path):
        """destination='jsonl' appends every logged message to jsonl_path."""
        path = tmp_path / "events.jsonl"
        with analytics_logger(
            None, destination="jsonl", jsonl_path=str(path), write_key=None
        ) as (log, handler):
            log.info("Signed Up", extra={"user_id": "user-1"})
            log.info("page", extra={"user_id": "user-1", "page_name": "Home"})
            handler.flush()
            assert wait_until(lambda: len(path.read_text().splitlines()) == 2)
        events = [json.loads(line) for line in path.read_text().splitlines()]
        assert [(e["type"], e.get("event"), e.get("name")) for e in events] == [
            ("track", "Signed Up", None), ("page", None, "Home"),
        ]

    def test_jsonl_without_a_path_fails_at_start_up(self):
        """The handler refuses destination='jsonl' without jsonl_path, naming it."""
        with pytest.raises(ConfigurationError, match="jsonl_path"):
            logbridge.AnalyticsHandler(destination="jsonl")

    def test_console_lines(self, capsys: pytest.CaptureFixture[str]):
        """destination='console' prints one line per logged message on stderr."""
        with analytics_logger(None, destination="console", write_key=None) as (log, handler):
            log.info("Signed Up", extra={"user_id": "user-1"})
            handler.flush()
            assert wait_until(lambda: handler.stats()["sent"] == 1)
        lines = [line for line in capsys.readouterr().err.splitlines()
                 if line.startswith("logbridge: track")]
        assert len(lines) == 1 and '"Signed Up"' in lines[0]


class TestFork:
    """A forked child's sink works even if the parent's sender held its lock at the fork."""

    def test_jsonl_and_memory_after_fork(self, tmp_path: Path):
        """In a child forked while the sinks' locks are held, both still take a batch."""
        path = tmp_path / "events.jsonl"
        # A fresh interpreter: no fork of the threaded test process.
        result = run_python(f"""
            import json, os
            from logbridge.destinations.sinks import JsonlDestination, MemoryDestination
            jsonl, memory = JsonlDestination({str(path)!r}), MemoryDestination()
            item = [json.dumps({{"type": "track", "event": "E", "userId": "u"}}).encode()]
            with jsonl._lock, memory._changed:  # as if the sender were mid-batch
                pid = os.fork()
                if pid == 0:
                    jsonl.reset_after_fork()
                    memory.reset_after_fork()
                    ok = jsonl.send(item, timeout=1).ok and memory.send(item, timeout=1).ok
                    os._exit(0 if ok and len(memory.messages) == 1 else 1)
            _, status = os.waitpid(pid, 0)
            print("child", os.waitstatus_to_exitcode(status))
        """, timeout=30)
        assert "child 0" in result.stdout, result.stderr
        assert json.loads(path.read_text())["event"] == "E"
