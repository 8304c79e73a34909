"""The durable spool: persisted before sending, removed on ack, recovered after SIGKILL."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sqlite3
import stat
from pathlib import Path

import pytest

from logbridge.collector import Collector
from tests.delivery_support import Background, spool_rows
from tests.support import analytics_logger, wait_until


def newest_row_id(path: Path) -> int:
    """The highest row id ever given in the spool (rows are numbered from 1)."""
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
        row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'messages'").fetchone()
    return int(row[0]) if row else 0


def spool_files(path: Path) -> list[Path]:
    """The spool and its SQLite companions (-wal, -shm) that exist."""
    return [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]


class TestPersistence:
    """Messages are in the spool from the moment they leave the listener until acked."""

    def test_messages_are_persisted_before_they_are_sent(
        self, collector: Collector, tmp_path: Path
    ) -> None:
        """With the endpoint down, every batched message is already in the spool file."""
        spool = tmp_path / "spool.db"
        collector.down(600)
        with analytics_logger(
            collector.endpoint, spool=str(spool), flush_at=10, shutdown_timeout=0
        ) as (log, handler):
            for i in range(30):
                log.info("Persisted", extra={"user_id": "u1", "i": i})
            assert wait_until(lambda: spool_rows(str(spool)) == 30)
            assert handler.stats()["sent"] == 0

    def test_rows_are_removed_once_acknowledged(
        self, collector: Collector, tmp_path: Path
    ) -> None:
        """After delivery the spool is empty; at close nothing is left behind as spooled."""
        spool = tmp_path / "spool.db"
        with analytics_logger(collector.endpoint, spool=str(spool), flush_at=10) as (log, h):
            for i in range(30):
                log.info("Acked", extra={"user_id": "u1", "i": i})
            assert h.flush(timeout=30)
            assert spool_rows(str(spool)) == 0
        assert h.stats()["spooled"] == 0
        assert len(collector.messages) == 30

    def test_files_are_private_to_the_user(self, collector: Collector, tmp_path: Path) -> None:
        """The spool and its -wal/-shm files have mode 0600."""
        spool = tmp_path / "spool.db"
        with analytics_logger(collector.endpoint, spool=str(spool), flush_at=1) as (log, h):
            log.info("Private", extra={"user_id": "u1"})
            assert h.flush(timeout=30)
            files = spool_files(spool)
            modes = {p.name: stat.S_IMODE(os.stat(p).st_mode) for p in files}
        assert len(files) >= 2
        assert set(modes.values()) == {0o600}, modes

    def test_the_write_key_is_not_in_the_file(self, collector: Collector, tmp_path: Path) -> None:
        """The spool holds messages only: the write key appears in none of its bytes."""
        spool = tmp_path / "spool.db"
        secret = "wk_spool_SECRET_4f1c2d"
        collector.down(600)
        with analytics_logger(
            collector.endpoint, write_key=secret, spool=str(spool), flush_at=5,
            shutdown_timeout=0,
        ) as (log, _):
            for i in range(20):
                log.info("Keyless", extra={"user_id": "u1", "i": i})
            assert wait_until(lambda: spool_rows(str(spool)) == 20)
            contents = b"".join(p.read_bytes() for p in spool_files(spool))
        assert b"Keyless" in contents  # the messages are there...
        assert secret.encode() not in contents  # ...the key is not


class TestRecovery:
    """A process killed with SIGKILL leaves its messages to the next one."""

    def test_sigkill_mid_outage_then_restart_delivers(
        self, collector: Collector, tmp_path: Path
    ) -> None:
        """200 spooled events of a killed process are sent once by the next process."""
        spool = tmp_path / "spool.db"
        collector.down(600)
        first = f"""
        import logging, sqlite3, threading, logbridge
        handler = logbridge.AnalyticsHandler(endpoint={collector.endpoint!r}, write_key="k",
                                             spool={str(spool)!r}, flush_at=20)
        log = logging.getLogger("analytics")
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        for i in range(200):
            log.info("Before Kill", extra={{"user_id": "u1", "i": i}})
        db = sqlite3.connect({str(spool)!r})
        while db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] < 200:
            threading.Event().wait(0.01)
        print("spooled", flush=True)
        threading.Event().wait()
        """
        with Background(first) as killed:
            assert killed.read_line() == "spooled"
            killed.process.send_signal(signal.SIGKILL)
            code, _ = killed.finish()
        assert code == -signal.SIGKILL
        assert collector.messages == []
        collector.down(0)  # back up
        second = f"""
        import json, logging, threading, urllib.request, logbridge
        handler = logbridge.AnalyticsHandler(endpoint={collector.endpoint!r}, write_key="k",
                                             spool={str(spool)!r})
        received = lambda: json.load(urllib.request.urlopen({collector.url + "/stats"!r}))
        for _ in range(3000):  # sent at once, before this process logs anything
            if received()["received"] >= 200:
                break
            threading.Event().wait(0.01)
        print(received()["received"], handler.stats()["recovered"], flush=True)
        log = logging.getLogger("analytics")
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.info("After Restart", extra={{"user_id": "u1"}})
        """
        with Background(second) as restarted:
            assert restarted.read_line() == "200 200"
            code, stderr = restarted.finish()
        assert code == 0, stderr
        assert collector.wait_for(201)
        events = [m for m in collector.messages if m["event"] == "Before Kill"]
        assert sorted(m["properties"]["i"] for m in events) == list(range(200))
        assert collector.stats()["duplicates"] == 0
        assert spool_rows(str(spool)) == 0

    def test_the_unbatched_window_is_what_sigkill_loses(
        self, collector: Collector, tmp_path: Path
    ) -> None:
        """Records still in the current batch (not yet flush_at or flush_interval) are lost."""
        spool = tmp_path / "spool.db"
        code = f"""
        import logging, os, signal, logbridge
        handler = logbridge.AnalyticsHandler(endpoint={collector.endpoint!r}, write_key="k",
                                             spool={str(spool)!r}, flush_at=100,
                                             flush_interval=60)
        log = logging.getLogger("analytics")
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        for i in range(5):
            log.info("In The Window", extra={{"user_id": "u1", "i": i}})
        os.kill(os.getpid(), signal.SIGKILL)
        """
        with Background(code) as killed:
            returncode, _ = killed.finish()
        assert returncode == -signal.SIGKILL
        assert spool_rows(str(spool)) == 0  # never reached the spool
        assert collector.messages == []


    def test_clean_exit_while_down_leaves_the_outbox_to_the_next_process(
        self, collector: Collector, tmp_path: Path
    ) -> None:
        """Exiting with the endpoint down keeps the batches (counted spooled); the next sends."""
        spool = tmp_path / "spool.db"
        collector.down(600)
        code = f"""
        import logging, logbridge
        handler = logbridge.AnalyticsHandler(endpoint={collector.endpoint!r}, write_key="k",
                                             spool={str(spool)!r}, flush_at=10,
                                             shutdown_timeout=0.5)
        log = logging.getLogger("analytics")
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        for i in range(30):
            log.info("Kept For Later", extra={{"user_id": "u1", "i": i}})
        logging.shutdown()
        stats = handler.stats()
        print(stats["spooled"], stats["dropped_total"])
        """
        with Background(code) as first:
            assert first.read_line() == "30 0"
            assert first.finish()[0] == 0
        assert spool_rows(str(spool)) == 30
        collector.down(0)
        with analytics_logger(collector.endpoint, spool=str(spool)) as (_, handler):
            assert collector.wait_for(30)
            assert handler.stats()["recovered"] == 30
        assert sorted(m["properties"]["i"] for m in collector.messages) == list(range(30))


class TestCap:
    """Past spool_max_bytes the oldest messages go first, counted and reported."""

    def test_oldest_first_and_reported(
        self, collector: Collector, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """With a 32 KiB cap, the newest events survive an outage; the rest are spool_full."""
        spool = tmp_path / "spool.db"
        collector.down(600)
        with (
            caplog.at_level(logging.WARNING, logger="logbridge"),
            analytics_logger(
                collector.endpoint, spool=str(spool), spool_max_bytes=32768, flush_at=10
            ) as (log, handler),
        ):
            for i in range(400):
                log.info("Capped", extra={"user_id": "u1", "i": i, "pad": "p" * 200})
            assert wait_until(lambda: newest_row_id(spool) == 400)
            kept = spool_rows(str(spool))
            collector.down(0)
            assert handler.flush(timeout=60)
            stats = handler.stats()
        delivered = sorted(m["properties"]["i"] for m in collector.messages)
        assert 0 < kept < 400
        assert delivered == list(range(400 - len(delivered), 400))  # the newest, in one run
        assert stats["dropped"]["spool_full"] == 400 - len(delivered)  # type: ignore[index]
        assert stats["sent"] == len(delivered)
        assert any("spool_full" in r.getMessage() for r in caplog.records)
