"""``logbridge replay``: a dead-letter file sent again, from the command line."""

from __future__ import annotations

import collections
import json
import logging
import os
import pty
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import logbridge
from logbridge.collector import Collector
from logbridge.collector.faults import Faults
from logbridge.delivery.spool import Spool
from tests.cli_support import one_line
from tests.support import ROOT, analytics_logger, wait_until


def make_dead_letter(collector_factory: Any, path: Path, count: int) -> list[str]:
    """Fill ``path`` with ``count`` messages rejected by a collector (401); their ids."""
    refusing: Collector = collector_factory(write_key="right")
    ids: list[str] = []
    with analytics_logger(
        refusing.endpoint, write_key="wrong", dead_letter=str(path), flush_at=10,
        on_error=lambda exc, msgs: ids.extend(m["messageId"] for m in msgs),
    ) as (log, handler):
        for i in range(count):
            log.info("Replayed", extra={"user_id": "u1", "i": i})
        assert handler.flush(timeout=30)
    return ids


def replay(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m logbridge replay ARGS``."""
    return subprocess.run(
        [sys.executable, "-m", "logbridge", "replay", *args],
        capture_output=True, text=True, timeout=120, cwd=str(ROOT), env=env, check=False,
    )


class TestReplay:
    """Messages go out again with their messageIds; the exit code says whether all did."""

    def test_sends_every_message_with_its_message_id(
        self, collector_factory: Any, tmp_path: Path
    ) -> None:
        """A 25-message dead letter arrives whole at the endpoint; exit code 0."""
        letter = tmp_path / "dead.jsonl"
        ids = make_dead_letter(collector_factory, letter, 25)
        target: Collector = collector_factory(write_key="right")
        result = replay(str(letter), "--endpoint", target.endpoint, "--write-key", "right")
        assert result.returncode == 0, result.stderr
        assert "(dead letter): delivered 25 of 25 messages" in result.stdout
        assert sorted(m["messageId"] for m in target.messages) == sorted(ids)
        assert target.invalid == []

    def test_write_key_from_the_environment(
        self, collector_factory: Any, tmp_path: Path
    ) -> None:
        """Without --write-key, LOGBRIDGE_WRITE_KEY is used (and the key is never printed)."""
        letter = tmp_path / "dead.jsonl"
        make_dead_letter(collector_factory, letter, 3)
        target: Collector = collector_factory(write_key="env-secret-key")
        env = {"PATH": "/usr/bin:/bin", "LOGBRIDGE_WRITE_KEY": "env-secret-key"}
        result = replay(str(letter), "--endpoint", target.endpoint, env=env)
        assert result.returncode == 0, result.stderr
        assert len(target.messages) == 3
        assert "env-secret-key" not in result.stdout + result.stderr

    def test_what_still_fails_goes_to_a_new_dead_letter(
        self, collector_factory: Any, tmp_path: Path
    ) -> None:
        """Rejected again: exit code 1, the reason on stderr, the messages in --dead-letter."""
        letter, again = tmp_path / "dead.jsonl", tmp_path / "again.jsonl"
        make_dead_letter(collector_factory, letter, 4)
        target: Collector = collector_factory(write_key="right")
        result = replay(
            str(letter), "--endpoint", target.endpoint, "--write-key", "still-wrong",
            "--dead-letter", str(again),
        )
        assert result.returncode == 1
        assert "4 not delivered (401: the write key was rejected: 4)" in result.stderr
        lines = [json.loads(line) for line in again.read_text().splitlines()]
        assert [e["message"]["properties"]["i"] for e in lines] == [0, 1, 2, 3]

    def test_lines_without_a_message_are_skipped_and_said(
        self, collector: Collector, tmp_path: Path
    ) -> None:
        """Garbage lines are counted on stderr; the good lines are still sent."""
        letter = tmp_path / "dead.jsonl"
        good = {"reason": "rejected", "status": 401, "message": {
            "type": "track", "event": "Kept", "userId": "u1", "messageId": "m-1",
            "timestamp": "2026-11-22T06:30:00.000Z", "properties": {}}}
        letter.write_text("not json\n" + json.dumps(good) + "\n" + '{"no": "message"}\n\n')
        result = replay(str(letter), "--endpoint", collector.endpoint)
        assert result.returncode == 0, result.stderr
        assert "skipped 2 lines with no message (not JSON: 1, no message: 1)" in result.stderr
        assert [m["messageId"] for m in collector.messages] == ["m-1"]

    def test_endpoint_down_gives_up_within_the_timeout(
        self, collector: Collector, tmp_path: Path
    ) -> None:
        """With the endpoint refusing, replay stops after --timeout with exit code 1."""
        letter = tmp_path / "dead.jsonl"
        message = {"type": "track", "event": "Waiting", "userId": "u1", "messageId": "m-2",
                   "timestamp": "2026-11-22T06:30:00.000Z", "properties": {}}
        letter.write_text(json.dumps({"message": message}) + "\n")
        collector.down(600)
        result = replay(str(letter), "--endpoint", collector.endpoint, "--timeout", "1")
        assert result.returncode == 1
        assert "1 not delivered (could not connect to" in result.stderr
        assert "connection refused (out of time): 1)" in result.stderr


class TestUsage:
    """Mistakes are refused with exit code 2 and a message."""

    def test_missing_file(self, collector: Collector, tmp_path: Path) -> None:
        """A file that does not exist: exit code 2, one line, no traffic."""
        result = replay(str(tmp_path / "nope.jsonl"), "--endpoint", collector.endpoint)
        assert result.returncode == 2
        assert "nope.jsonl: No such file or directory" in one_line(result.stderr)
        assert collector.requests == []

    def test_endpoint_wins_over_destination(self, collector: Collector, tmp_path: Path) -> None:
        """--endpoint with --destination: the endpoint is where messages go, as in the handler."""
        letter = tmp_path / "dead.jsonl"
        letter.write_text(json.dumps({"message": message("m-1")}) + "\n")
        result = replay(str(letter), "--endpoint", collector.endpoint, "--destination", "segment")
        assert result.returncode == 0, result.stderr
        assert [m["messageId"] for m in collector.messages] == ["m-1"]

    def test_new_dead_letter_must_not_be_the_input(self, tmp_path: Path) -> None:
        """--dead-letter naming the file being replayed is refused."""
        letter = tmp_path / "dead.jsonl"
        letter.write_text("")
        result = replay(str(letter), "--endpoint", "http://127.0.0.1:9",
                        "--dead-letter", str(letter))
        assert result.returncode == 2
        assert "--dead-letter must not be the file being replayed" in one_line(result.stderr)

    def test_remote_destination_needs_a_write_key(self, tmp_path: Path) -> None:
        """Segment without a write key is a configuration error, before anything is sent."""
        letter = tmp_path / "dead.jsonl"
        letter.write_text("")
        result = replay(str(letter), "--destination", "segment",
                        env={"PATH": "/usr/bin:/bin"})
        assert result.returncode == 2
        line = one_line(result.stderr)
        assert "--write-key is required" in line
        assert "write_key" not in line, "errors speak in flags, not library options"


def message(message_id: str, **fields: Any) -> dict[str, Any]:
    """A valid track message with ``message_id``."""
    return {"type": "track", "event": "Archived", "userId": "u1", "messageId": message_id,
            "timestamp": "2026-11-22T06:30:00.000Z", "properties": {}, **fields}


def write_dead_letter(path: Path, count: int) -> list[str]:
    """A dead letter of ``count`` messages; their ids."""
    ids = [f"m-{i:03d}" for i in range(count)]
    path.write_text("".join(
        json.dumps({"reason": "rejected", "status": 401, "message": message(i)}) + "\n"
        for i in ids
    ))
    return ids


class TestResume:
    """Interrupted, then run again: every message arrives exactly once."""

    def test_sigint_mid_replay_then_resume(
        self, collector_factory: Any, tmp_path: Path
    ) -> None:
        """SIGINT against a slow collector stops after the request in flight; a rerun sends
        the rest, and the collector gets every messageId exactly once."""
        letter = tmp_path / "dead.jsonl"
        ids = write_dead_letter(letter, 40)
        slow: Collector = collector_factory(faults=Faults(latency=0.25))
        command = [sys.executable, "-m", "logbridge", "replay", str(letter),
                   "--endpoint", slow.endpoint, "--batch-size", "4"]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, cwd=str(ROOT))
        try:
            assert wait_until(lambda: len(slow.messages) >= 8, timeout=30)
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
        assert process.returncode == 130, err
        assert "interrupted" in err and "nothing is sent twice" in err
        first = len(slow.messages)
        assert 8 <= first < 40, "interrupted mid-replay"
        assert f"delivered {first} of 40 messages" in out, "the batch in flight was counted"
        assert (tmp_path / "dead.jsonl.replayed").exists()

        again = replay(*command[4:])
        assert again.returncode == 0, again.stderr
        assert f"skipped {first} delivered by an earlier run" in again.stdout
        counts = collections.Counter(m["messageId"] for m in slow.messages)
        assert sorted(counts) == ids
        assert set(counts.values()) == {1}, "no messageId arrived twice"

    def test_a_second_sigint_stops_at_once(self, collector_factory: Any, tmp_path: Path) -> None:
        """A second SIGINT does not wait for the request in flight (here, a 5 s answer)."""
        letter = tmp_path / "dead.jsonl"
        write_dead_letter(letter, 3)
        stuck: Collector = collector_factory(faults=Faults(latency=5))
        process = subprocess.Popen(
            [sys.executable, "-m", "logbridge", "replay", str(letter), "--endpoint",
             stuck.endpoint], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            cwd=str(ROOT),
        )
        try:
            assert wait_until(lambda: _connected_to(stuck.port), timeout=30), "request in flight"
            process.send_signal(signal.SIGINT)
            assert process.stderr is not None
            assert "stopping after the request in flight" in process.stderr.readline()
            process.send_signal(signal.SIGINT)
            started = time.monotonic()
            _out, err = process.communicate(timeout=30)
            waited = time.monotonic() - started
        finally:
            if process.poll() is None:
                process.kill()
        assert process.returncode == 130
        assert "interrupted" in err and "Traceback" not in err
        assert waited < 4, f"waited {waited:.1f}s for the request in flight"

    def test_a_finished_replay_sends_nothing_again(
        self, collector: Collector, tmp_path: Path
    ) -> None:
        """Run twice, the second run sends nothing; --fresh sends everything again."""
        letter = tmp_path / "dead.jsonl"
        write_dead_letter(letter, 5)
        assert replay(str(letter), "--endpoint", collector.endpoint).returncode == 0
        requests = len(collector.requests)
        second = replay(str(letter), "--endpoint", collector.endpoint)
        assert second.returncode == 0, second.stderr
        assert "skipped 5 delivered by an earlier run" in second.stdout
        assert len(collector.requests) == requests
        fresh = replay(str(letter), "--endpoint", collector.endpoint, "--fresh")
        assert fresh.returncode == 0
        assert len(collector.messages) == 10

    def test_state_file_can_be_chosen(self, collector: Collector, tmp_path: Path) -> None:
        """--state puts the record of what was delivered where asked."""
        letter, state = tmp_path / "dead.jsonl", tmp_path / "elsewhere.state"
        ids = write_dead_letter(letter, 3)
        result = replay(str(letter), "--endpoint", collector.endpoint, "--state", str(state))
        assert result.returncode == 0, result.stderr
        assert sorted(state.read_text().split()) == ids


class TestInputs:
    """Dead letters, JSON-lines archives and spools; messageId and timestamp are kept."""

    def test_analytics_formatter_archive(self, collector: Collector, tmp_path: Path) -> None:
        """Lines written by AnalyticsFormatter are replayed with their messageId and timestamp."""
        archive = tmp_path / "archive.jsonl"
        handler = logging.FileHandler(archive)
        handler.setFormatter(logbridge.AnalyticsFormatter())
        log = logging.getLogger("analytics.archive.test")
        log.propagate, log.level = False, logging.INFO
        log.addHandler(handler)
        try:
            for i in range(3):
                log.info("Order Completed", extra={"user_id": f"u{i}", "total": i})
            log.info("no user: invalid, written as such")
        finally:
            log.removeHandler(handler)
            handler.close()
        written = [json.loads(line) for line in archive.read_text().splitlines()]
        result = replay(str(archive), "--endpoint", collector.endpoint)
        assert result.returncode == 0, result.stderr
        assert "an invalid record, never a message: 1" in result.stderr
        got = {m["messageId"]: m["timestamp"] for m in collector.messages}
        assert got == {w["messageId"]: w["timestamp"] for w in written if "messageId" in w}

    def test_jsonl_destination_archive(self, collector: Collector, tmp_path: Path) -> None:
        """What the jsonl destination wrote through logging is replayed, ids and times kept."""
        archive = tmp_path / "events.jsonl"
        handler = logbridge.AnalyticsHandler(destination="jsonl", jsonl_path=str(archive))
        log = logging.getLogger("analytics.jsonl.test")
        log.propagate, log.level = False, logging.INFO
        log.addHandler(handler)
        try:
            for i in range(5):
                log.info("Page Viewed", extra={"anonymous_id": f"a{i}"})
            assert handler.flush(timeout=10)
        finally:
            log.removeHandler(handler)
            handler.close()
        written = [json.loads(line) for line in archive.read_text().splitlines()]
        assert len(written) == 5
        result = replay(str(archive), "--endpoint", collector.endpoint)
        assert result.returncode == 0, result.stderr
        got = [(m["messageId"], m["timestamp"]) for m in collector.messages]
        assert got == [(w["messageId"], w["timestamp"]) for w in written]

    def test_spool(self, collector: Collector, tmp_path: Path) -> None:
        """A spool's rows are replayed in order and left in the spool (read only)."""
        path = tmp_path / "spool.db"
        spool = Spool(str(path), 10_000_000)
        spool.add([json.dumps(message(f"s-{i}")).encode() for i in range(4)])
        spool.close()
        result = replay(str(path), "--endpoint", collector.endpoint)
        assert result.returncode == 0, result.stderr
        assert "(spool)" in result.stdout
        assert [m["messageId"] for m in collector.messages] == [f"s-{i}" for i in range(4)]
        reopened = Spool(str(path), 10_000_000)
        try:
            assert reopened.size()[0] == 4
        finally:
            reopened.close()

    def test_request_bodies(self, collector: Collector, tmp_path: Path) -> None:
        """A line holding a whole batch body gives each of its messages."""
        path = tmp_path / "bodies.jsonl"
        path.write_text(json.dumps({"batch": [message("b-1"), message("b-2")]}) + "\n")
        result = replay(str(path), "--endpoint", collector.endpoint)
        assert result.returncode == 0, result.stderr
        assert [m["messageId"] for m in collector.messages] == ["b-1", "b-2"]

    def test_request_too_large_is_split(
        self, collector_factory: Any, tmp_path: Path
    ) -> None:
        """A 413 for a large request splits it until each part is taken; all delivered."""
        target: Collector = collector_factory(max_body_bytes=30_000)
        letter = tmp_path / "dead.jsonl"
        big = "x" * 6_000
        letter.write_text("".join(
            json.dumps({"message": message(f"big-{i}", properties={"pad": big})}) + "\n"
            for i in range(12)
        ))
        result = replay(str(letter), "--endpoint", target.endpoint, "--option", "gzip=false")
        assert result.returncode == 0, result.stderr
        assert sorted(m["messageId"] for m in target.messages) == sorted(
            f"big-{i}" for i in range(12)
        )
        assert 413 in [r.status for r in target.requests]

    def test_a_file_with_no_valid_line_fails(self, collector: Collector, tmp_path: Path) -> None:
        """Only garbage: exit code 1, the reason said, nothing sent."""
        path = tmp_path / "garbage.jsonl"
        path.write_text("not json\n[1, 2]\n")
        result = replay(str(path), "--endpoint", collector.endpoint)
        assert result.returncode == 1
        assert "holds no message to replay" in result.stderr
        assert collector.requests == []


class TestPace:
    """--rate bounds messages a second; the progress bar shows only on a terminal."""

    def test_rate_limit(self, collector: Collector, tmp_path: Path) -> None:
        """25 messages at --rate 10 leave in requests of at most 10, over at least 2 s."""
        letter = tmp_path / "dead.jsonl"
        write_dead_letter(letter, 25)
        result = replay(str(letter), "--endpoint", collector.endpoint, "--rate", "10")
        assert result.returncode == 0, result.stderr
        seconds = float(re.search(r" in ([\d.]+)s", result.stdout).group(1))  # type: ignore[union-attr]
        assert seconds >= 2.0
        assert [r.message_count for r in collector.requests] == [10, 10, 5]

    def test_progress_bar_on_a_terminal_only(self, collector: Collector, tmp_path: Path) -> None:
        """On a TTY, stderr shows counts, rate and time left; into a pipe, no bar at all."""
        letter = tmp_path / "dead.jsonl"
        write_dead_letter(letter, 30)
        piped = replay(str(letter), "--endpoint", collector.endpoint, "--rate", "20")
        assert "msg/s" not in piped.stderr
        main, child = pty.openpty()
        try:
            process = subprocess.run(
                [sys.executable, "-m", "logbridge", "replay", str(letter), "--endpoint",
                 collector.endpoint, "--rate", "20", "--fresh"],
                stdout=subprocess.PIPE, stderr=child, text=True, timeout=60, cwd=str(ROOT),
                check=False,
            )
            os.close(child)
            child = -1
            shown = _read_all(main)
        finally:
            os.close(main)
            if child >= 0:
                os.close(child)
        assert process.returncode == 0
        assert re.search(r"\[[#.]+\] \d+/30 +\d+% +[\d.]+ msg/s [\d:-]+ left", shown), shown


def _connected_to(port: int) -> bool:
    """Whether some socket of this machine has an established connection to ``port``."""
    wanted = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            for row in list(rows)[1:]:
                fields = row.split()
                if fields[2].endswith(wanted) and fields[3] == "01":  # ESTABLISHED
                    return True
    return False


def _read_all(fd: int) -> str:
    """What the terminal ``fd`` received (the writer has closed its end)."""
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: no writer left
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


PICKY_DESTINATION = '''
import json
from logbridge.destinations import Limits, Outcome
from logbridge.errors import DeliveryError

class Picky:
    """Refuses messages with a "bad" property; holds back a "slow" one, once."""

    name = "picky"
    wire_format = "segment"
    limits = Limits(32_768, 500_000, 100)

    def __init__(self):
        self.held = set()

    def map_message(self, message):
        return [message]

    def send(self, items, *, timeout):
        refused, deferred = {}, {}
        for index, item in enumerate(items):
            message = json.loads(item)
            if message["properties"].get("bad"):
                refused[index] = "a bad property"
            elif message["properties"].get("slow") and message["messageId"] not in self.held:
                self.held.add(message["messageId"])
                deferred[index] = 0.2
        error = None
        if deferred and self.throttles:  # as Amplitude's 429: the rest is not taken either
            error = DeliveryError("throttled", status=429, retryable=True)
        else:
            with open("got.jsonl", "a") as file:
                for index, item in enumerate(items):
                    if index not in refused and index not in deferred:
                        file.write(item.decode() + "\\n")
        return Outcome(error, refused=refused, deferred=deferred)

    throttles = False

    def warm_up(self): ...
    def reset_after_fork(self): ...
    def close(self): ...


class Throttling(Picky):
    """Holding a message back fails the request for the others (they are sent again)."""

    throttles = True
'''


class TestMessageByMessage:
    """A destination's answer message by message: refused ones fail, deferred ones wait."""

    def test_amplitude_refuses_a_user_over_quota(
        self, collector_factory: Any, tmp_path: Path
    ) -> None:
        """Replayed to Amplitude: the over-quota user's event fails with Amplitude's reason,
        the others are delivered with their insert_id (the messageId)."""
        target: Collector = collector_factory(faults=Faults(over_quota_ids=["user-spam"]))
        letter = tmp_path / "dead.jsonl"
        users = ["user-0001", "user-spam", "user-0002"]
        letter.write_text("".join(
            json.dumps({"message": message(f"q-{i}", userId=user)}) + "\n"
            for i, user in enumerate(users)
        ))
        result = replay(str(letter), "--destination", "amplitude", "--endpoint", target.url,
                        "--write-key", "amp-key")
        assert result.returncode == 1
        assert "delivered 2 of 3 messages" in result.stdout
        assert "1 not delivered (refused: Amplitude: exceeded_daily_quota_users: 1)" in (
            result.stderr
        )
        assert sorted(e["insert_id"] for e in target.amplitude_events) == ["q-0", "q-2"]

    @pytest.mark.parametrize("kind", ["Picky", "Throttling"])
    def test_refused_and_deferred_messages(self, tmp_path: Path, kind: str) -> None:
        """One refused (failed, with its reason, into --dead-letter), one held back (sent
        again after the wait), the rest delivered (at once, or again at once when the
        request failed for them); exit code 1."""
        (tmp_path / "picky.py").write_text(PICKY_DESTINATION)
        letter = tmp_path / "dead.jsonl"
        messages = [message(f"p-{i}", properties={}) for i in range(5)]
        messages[1]["properties"] = {"bad": True}
        messages[3]["properties"] = {"slow": True}
        letter.write_text("".join(json.dumps({"message": m}) + "\n" for m in messages))
        result = subprocess.run(
            [sys.executable, "-m", "logbridge", "replay", str(letter),
             "--destination", f"picky.{kind}", "--dead-letter", str(tmp_path / "again.jsonl")],
            capture_output=True, text=True, timeout=60, cwd=str(tmp_path), check=False,
        )
        assert result.returncode == 1
        assert "delivered 4 of 5 messages" in result.stdout
        assert "1 not delivered (refused: a bad property: 1)" in result.stderr
        got = [json.loads(line)["messageId"] for line in (tmp_path / "got.jsonl").open()]
        assert got == ["p-0", "p-2", "p-4", "p-3"], "the held-back message went after the wait"
        [again] = (tmp_path / "again.jsonl").read_text().splitlines()
        assert json.loads(again)["message"]["messageId"] == "p-1"
