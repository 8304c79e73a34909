"""SIGTERM and SIGINT: install_signal_handlers() flushes first, then does what was due."""

from __future__ import annotations

import signal

from logbridge.collector import Collector
from tests.delivery_support import Background
from tests.support import ROOT

EXAMPLE = ROOT / "examples" / "sigterm_service.py"

_SERVICE = """
import logging, os, signal, threading, logbridge
handler = logbridge.AnalyticsHandler(endpoint={endpoint!r}, write_key="k", flush_interval=60)
log = logging.getLogger("analytics")
log.addHandler(handler)
log.setLevel(logging.INFO)
"""


class TestSigterm:
    """A service stopped with SIGTERM delivers what it logged and exits 143."""

    def test_the_example_service(self, collector: Collector) -> None:
        """examples/sigterm_service.py logs 25 events, gets SIGTERM: all 25 arrive, exit 143."""
        env = {"LOGBRIDGE_ENDPOINT": collector.endpoint}
        args = [str(EXAMPLE), "--events", "25", "--every", "0"]
        with Background("", args=args, env=env) as service:
            assert service.read_line().startswith("pid ")
            assert service.read_line() == "logged 25 events; waiting for the signal"
            assert collector.messages == []  # flush_interval=60: nothing left on its own
            service.process.send_signal(signal.SIGTERM)
            code, stderr = service.finish()
        assert code == 143, stderr
        assert sorted(m["properties"]["n"] for m in collector.messages) == list(range(25))

    def test_without_the_helper_sigterm_loses_the_queue(self, collector: Collector) -> None:
        """The reason for the helper: a default SIGTERM ends Python with nothing delivered."""
        code = _SERVICE.format(endpoint=collector.endpoint) + """
for i in range(5):
    log.info("Lost", extra={"user_id": "u1", "i": i})
print("ready", flush=True)
threading.Event().wait()
"""
        with Background(code) as service:
            assert service.read_line() == "ready"
            service.process.send_signal(signal.SIGTERM)
            returncode, _ = service.finish()
        assert returncode == -signal.SIGTERM
        assert collector.messages == []

    def test_previous_python_handler_still_runs(self, collector: Collector) -> None:
        """An application's own SIGTERM handler is called after the flush."""
        code = _SERVICE.format(endpoint=collector.endpoint) + """
import json, urllib.request
stopping = threading.Event()
signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
logbridge.install_signal_handlers()
for i in range(5):
    log.info("Chained", extra={"user_id": "u1", "i": i})
print("ready", flush=True)
stopping.wait(60)
stats = json.load(urllib.request.urlopen(%r))
print("app handler ran", stats["received"], flush=True)
""" % (collector.url + "/stats")
        with Background(code) as service:
            assert service.read_line() == "ready"
            service.process.send_signal(signal.SIGTERM)
            assert service.read_line() == "app handler ran 5"  # flushed before the app's
            returncode, stderr = service.finish()
        assert returncode == 0, stderr


    def test_an_ignored_sigterm_stays_ignored(self, collector: Collector) -> None:
        """With SIGTERM ignored before, the signal flushes and the process carries on."""
        code = _SERVICE.format(endpoint=collector.endpoint) + """
import json, urllib.request
signal.signal(signal.SIGTERM, signal.SIG_IGN)
logbridge.install_signal_handlers()
for i in range(3):
    log.info("Ignored", extra={"user_id": "u1", "i": i})
os.kill(os.getpid(), signal.SIGTERM)
stats = json.load(urllib.request.urlopen(%r))
print("still running", stats["received"], flush=True)
""" % (collector.url + "/stats")
        with Background(code) as service:
            assert service.read_line() == "still running 3"
            returncode, stderr = service.finish()
        assert returncode == 0, stderr


class TestSigint:
    """SIGINT flushes, then raises KeyboardInterrupt as Python's default handler would."""

    def test_keyboard_interrupt_after_flush(self, collector: Collector) -> None:
        """Ctrl-C: the events are delivered before KeyboardInterrupt reaches the application."""
        code = _SERVICE.format(endpoint=collector.endpoint) + """
import json, urllib.request
logbridge.install_signal_handlers()
for i in range(7):
    log.info("Interrupted", extra={"user_id": "u1", "i": i})
try:
    print("ready", flush=True)
    threading.Event().wait(60)
except KeyboardInterrupt:
    stats = json.load(urllib.request.urlopen(%r))
    print("interrupted", stats["received"], flush=True)
""" % (collector.url + "/stats")
        with Background(code) as service:
            assert service.read_line() == "ready"
            service.process.send_signal(signal.SIGINT)
            assert service.read_line() == "interrupted 7"
            returncode, stderr = service.finish()
        assert returncode == 0, stderr
        assert len(collector.messages) == 7
