"""Configuring the handler the ways logging allows, each in a fresh interpreter.

CI runs this file on Python 3.10 to 3.13, where dictConfig's QueueHandler handling
differs: the forms that work must deliver at exit, the others must fail clearly.
"""

from __future__ import annotations

import inspect
import json
import logging.config
import sys
from pathlib import Path
from typing import Any

from logbridge.collector import Collector
from tests.support import ROOT, run_python

EMIT_AND_EXIT = """
import json, logging, logging.config, os
logging.config.dictConfig(json.loads(os.environ["LOGGING_CONFIG"]))
log = logging.getLogger("analytics")
for i in range(int(os.environ.get("EVENTS", "5"))):
    log.info("Configured", extra={"user_id": "u1", "i": i})
"""

#: CPython 3.12 before the fix for python/cpython#118868 drops a 'class' entry's options.
DROPS_CLASS_OPTIONS = sys.version_info[:2] == (
    3,
    12,
) and "klass(q, **kwargs)" not in inspect.getsource(
    logging.config.DictConfigurator._configure_queue_handler  # type: ignore[attr-defined]
)
#: CPython 3.12 before python/cpython#111615 demands 'handlers' on any QueueHandler entry.
NEEDS_HANDLERS_KEY = sys.version_info[:2] == (
    3,
    12,
) and "No handlers specified" in inspect.getsource(
    logging.config.DictConfigurator.configure_handler
)


def config(handler: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"analytics": handler},
        "loggers": {"analytics": {"handlers": ["analytics"], "level": "INFO", "propagate": False}},
    }


def run_config(
    handler: dict[str, Any], *, events: int = 5, env: dict[str, str] | None = None
) -> Any:
    return run_python(
        EMIT_AND_EXIT,
        env={"LOGGING_CONFIG": json.dumps(config(handler)), "EVENTS": str(events), **(env or {})},
    )


class TestFactoryKey:
    """{'()': 'logbridge.AnalyticsHandler', ...} works alone on every Python."""

    def test_delivers_at_exit(self, collector_factory: Any) -> None:
        """Options are passed through, the listener starts lazily and drains at exit."""
        collector: Collector = collector_factory(write_key="wk")
        result = run_config(
            {
                "()": "logbridge.AnalyticsHandler",
                "endpoint": collector.endpoint,
                "write_key": "wk",
                "flush_at": 2,
                "level": "INFO",
            },
            events=7,
        )
        assert result.returncode == 0, result.stderr
        assert collector.wait_for(7)
        assert {r.auth_user for r in collector.requests} == {"wk"}

    def test_ext_and_cfg_values_are_resolved(self, collector: Collector, tmp_path: Path) -> None:
        """ext:// and cfg:// values inside options arrive resolved."""
        handler = {
            "()": "logbridge.AnalyticsHandler",
            "endpoint": collector.endpoint,
            "write_key": "k",
            "context": {"app": "cfg://app_info", "os": {"name": "ext://sys.platform"}},
        }
        cfg = config(handler)
        cfg["app_info"] = {"name": "configured"}
        result = run_python(EMIT_AND_EXIT, env={"LOGGING_CONFIG": json.dumps(cfg), "EVENTS": "1"})
        assert result.returncode == 0, result.stderr
        assert collector.wait_for(1)
        context = collector.messages[0]["context"]
        assert context["app"] == {"name": "configured"}
        assert context["os"] == {"name": sys.platform}

    def test_impossible_option_fails_at_configuration(self, collector: Collector) -> None:
        """A negative flush_interval fails dictConfig with a message naming the option."""
        result = run_config(
            {
                "()": "logbridge.AnalyticsHandler",
                "endpoint": collector.endpoint,
                "flush_interval": -1,
            }
        )
        assert result.returncode != 0
        assert "flush_interval" in result.stderr

    def test_unknown_option_is_named(self, collector: Collector) -> None:
        """A misspelt option fails early and lists the real ones."""
        result = run_config(
            {"()": "logbridge.AnalyticsHandler", "endpoint": collector.endpoint, "flush_size": 10}
        )
        assert result.returncode != 0
        assert "flush_size" in result.stderr and "flush_at" in result.stderr

    def test_reconfiguring_leaks_no_thread(self, collector: Collector) -> None:
        """dictConfig run again closes the old handler and its listener thread ends."""
        code = """
        import json, logging, logging.config, os, threading
        cfg = json.loads(os.environ["LOGGING_CONFIG"])
        for round in range(5):
            logging.config.dictConfig(cfg)
            logging.getLogger("analytics").info("Round", extra={"user_id": "u1", "round": round})
        def listeners():
            return [t for t in threading.enumerate() if t.name == "logbridge-listener"]
        for thread in listeners()[:-1]:  # old listeners finish delivering, then end
            thread.join(10)
        print(len(listeners()))
        """
        cfg = config({"()": "logbridge.AnalyticsHandler", "endpoint": collector.endpoint})
        result = run_python(code, env={"LOGGING_CONFIG": json.dumps(cfg)})
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "1"
        assert collector.wait_for(5)
        assert sorted(m["properties"]["round"] for m in collector.messages) == [0, 1, 2, 3, 4]


class TestClassKey:
    """{'class': 'logbridge.AnalyticsHandler', ...} works wherever CPython lets it."""

    def test_class_key(self, collector: Collector) -> None:
        """Delivers, or (3.12 before the fix) fails naming CPython's limit or the '()' form."""
        entry = {
            "class": "logbridge.AnalyticsHandler",
            "endpoint": collector.endpoint,
            "write_key": "k",
            "flush_at": 3,
        }
        if NEEDS_HANDLERS_KEY:
            entry["handlers"] = []
        result = run_config(entry)
        if DROPS_CLASS_OPTIONS:
            assert result.returncode != 0
            assert "'()': 'logbridge.AnalyticsHandler'" in result.stderr
            assert "118868" in result.stderr
            return
        assert result.returncode == 0, result.stderr
        assert collector.wait_for(5)

    def test_class_key_without_handlers(self, collector: Collector) -> None:
        """Without 'handlers' it delivers, except where CPython itself rejects the entry."""
        result = run_config(
            {
                "class": "logbridge.AnalyticsHandler",
                "endpoint": collector.endpoint,
                "write_key": "k",
            }
        )
        if NEEDS_HANDLERS_KEY:
            # CPython raises before logbridge runs; the README says to use '()' there.
            assert result.returncode != 0
            assert "No handlers specified for a QueueHandler" in result.stderr
            return
        assert result.returncode == 0, result.stderr
        assert collector.wait_for(5)

    def test_class_key_with_target_handlers(self, collector: Collector, tmp_path: Path) -> None:
        """Handlers named in 'handlers' also receive every record, as with the stdlib listener."""
        log_file = tmp_path / "copy.log"
        cfg = {
            "version": 1,
            "handlers": {
                "file": {"class": "logging.FileHandler", "filename": str(log_file)},
                "analytics": {
                    "class": "logbridge.AnalyticsHandler",
                    "endpoint": collector.endpoint,
                    "write_key": "k",
                    "handlers": ["file"],
                },
            },
            "loggers": {
                "analytics": {"handlers": ["analytics"], "level": "INFO", "propagate": False}
            },
        }
        result = run_python(EMIT_AND_EXIT, env={"LOGGING_CONFIG": json.dumps(cfg), "EVENTS": "3"})
        if DROPS_CLASS_OPTIONS:
            assert result.returncode != 0
            assert "'()': 'logbridge.AnalyticsHandler'" in result.stderr
            return
        assert result.returncode == 0, result.stderr
        assert collector.wait_for(3)
        assert log_file.read_text().count("Configured") == 3


class TestStdlibQueueForm:
    """The 3.12+ form: 'class': 'logging.handlers.QueueHandler', 'listener': AnalyticsListener."""

    def entry(self) -> dict[str, Any]:
        return {
            "class": "logging.handlers.QueueHandler",
            "listener": "logbridge.AnalyticsListener",
            "handlers": [],
        }

    def test_listener_form_delivers_with_environment_options(self, collector: Collector) -> None:
        """3.12+: the listener takes LOGBRIDGE_* options, starts itself and drains at exit.

        Before 3.12 the stdlib QueueHandler takes no 'listener' key and dictConfig fails.
        """
        result = run_config(
            self.entry(),
            events=4,
            env={"LOGBRIDGE_ENDPOINT": collector.endpoint, "LOGBRIDGE_WRITE_KEY": "env-key"},
        )
        if sys.version_info < (3, 12):
            assert result.returncode != 0
            assert "listener" in result.stderr
            return
        assert result.returncode == 0, result.stderr
        assert collector.wait_for(4)
        assert collector.requests[0].auth_user == "env-key"

    def test_listener_form_without_options_names_the_factory_form(self) -> None:
        """3.12+: with no write key anywhere, the failure says how to pass options with '()'."""
        result = run_config(self.entry())
        assert result.returncode != 0
        if sys.version_info >= (3, 12):
            assert "'()': 'logbridge.AnalyticsHandler'" in result.stderr


class TestFileConfig:
    """fileConfig works with the shipped logging.example.ini, exactly as its comment says."""

    def test_example_ini_as_its_comment_says(self, collector_factory: Any) -> None:
        """The call in the file's own comment builds the handler; events arrive at exit."""
        collector: Collector = collector_factory(write_key="ini-key")
        ini = ROOT / "logging.example.ini"
        comment = [line for line in ini.read_text().splitlines() if line.startswith(";")]
        call = "\n".join(line[1:].strip() for line in comment if "fileConfig(" in line
                         or "disable_existing_loggers" in line)
        assert call.startswith('logging.config.fileConfig("logging.example.ini"'), call
        code = "\n".join([
            "import logging, logging.config",
            call.replace('"..."', '"ini-key"'),  # run from the checkout, where the file is
            "log = logging.getLogger('analytics')",
            "for i in range(3):",
            "    log.info('From Ini', extra={'user_id': 'u1', 'i': i})",
        ])
        # The destination comes from the environment, as the comment says.
        result = run_python(code, env={"LOGBRIDGE_ENDPOINT": collector.endpoint})
        assert result.returncode == 0, result.stderr
        assert collector.wait_for(3)
        assert collector.messages[0]["context"]["app"] == {"name": "example"}
        assert collector.requests[0].auth_user == "ini-key"
