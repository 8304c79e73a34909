"""``logbridge check CONFIG``: a logging config loaded without sending, its problems listed."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from logbridge.collector import Collector
from tests.cli_support import one_line, run_cli
from tests.support import ROOT, run_python


def dict_config(endpoint: str, tmp_path: Path, **handler: Any) -> dict[str, Any]:
    """A good dictConfig: an AnalyticsHandler on the 'analytics' logger at INFO."""
    options = {"()": "logbridge.AnalyticsHandler", "endpoint": endpoint, "flush_at": 10,
               "spool": str(tmp_path / "spool.db"), "dead_letter": str(tmp_path / "dead.jsonl")}
    options.update(handler)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"analytics": options, "console": {"class": "logging.StreamHandler"}},
        "loggers": {"analytics": {"level": "INFO", "handlers": ["analytics"],
                                  "propagate": False}},
        "root": {"level": "WARNING", "handlers": ["console"]},
    }


def rows(output: str) -> dict[str, tuple[str, str]]:
    """The options table of ``check``'s output: option -> (value, source)."""
    table = {}
    for line in output.splitlines():
        parts = line.split()
        if line.startswith("  ") and len(parts) >= 3 and parts[-1].startswith("("):
            table[parts[0]] = (" ".join(parts[1:-1]), parts[-1].strip("()"))
    return table


class TestGoodConfig:
    """A config without mistakes: its options and their sources, exit code 0."""

    def test_json_dict_config(self, collector: Collector, tmp_path: Path) -> None:
        """Options shown with their source, the key redacted, nothing started or sent."""
        path = tmp_path / "logging.json"
        path.write_text(json.dumps(dict_config(collector.endpoint, tmp_path)))
        env = {"LOGBRIDGE_WRITE_KEY": "secret-from-env"}
        result = run_cli("check", str(path), env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "no problems found" in result.stdout
        table = rows(result.stdout)
        assert table["write_key"] == ("*** (set, redacted)", "environment")
        assert table["flush_at"] == ("10", "config")
        assert table["flush_interval"] == ("5.0", "default")
        assert "secret-from-env" not in result.stdout + result.stderr
        assert collector.requests == []
        assert not (tmp_path / "spool.db").exists(), "no spool was opened"
        assert not (tmp_path / "dead.jsonl").exists(), "no dead letter was opened"

    def test_no_thread_is_started(self, collector: Collector, tmp_path: Path) -> None:
        """After check, the process runs one thread: no listener or sender was started."""
        path = tmp_path / "logging.json"
        path.write_text(json.dumps(dict_config(collector.endpoint, tmp_path)))
        result = run_python(f"""
            import sys, threading
            from logbridge.cli import main
            code = main(["check", {str(path)!r}])
            print("threads:", [t.name for t in threading.enumerate()])
            sys.exit(code)
        """)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "threads: ['MainThread']" in result.stdout

    def test_ini_file_config_with_defaults(self, collector: Collector, tmp_path: Path) -> None:
        """An .ini goes through fileConfig, --define filling its %(name)s defaults."""
        path = tmp_path / "logging.ini"
        path.write_text(textwrap.dedent(f"""\
            [loggers]
            keys=root,analytics
            [handlers]
            keys=analytics
            [formatters]
            keys=
            [logger_root]
            level=WARNING
            handlers=
            [logger_analytics]
            level=INFO
            handlers=analytics
            propagate=0
            qualname=analytics
            [handler_analytics]
            class=logbridge.AnalyticsHandler
            args=()
            kwargs={{'write_key': '%(write_key)s', 'endpoint': '{collector.endpoint}'}}
        """))
        result = run_cli("check", str(path), "--define", "write_key=ini-secret")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "loaded with fileConfig" in result.stdout
        assert rows(result.stdout)["write_key"] == ("*** (set, redacted)", "config")
        assert "ini-secret" not in result.stdout
        assert collector.requests == []

    def test_the_shipped_example_ini(self) -> None:
        """``logging.example.ini`` checks clean with its write key given as its comment says."""
        result = run_cli("check", str(ROOT / "logging.example.ini"), "--define", "write_key=k")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "handler 'analytics' (logbridge.AnalyticsHandler) on 'analytics'" in result.stdout

    def test_yaml_dict_config(self, collector: Collector, tmp_path: Path) -> None:
        """A .yaml dictConfig is read with PyYAML (installed with the cli extra)."""
        path = tmp_path / "logging.yaml"
        path.write_text(textwrap.dedent(f"""\
            version: 1
            handlers:
              analytics:
                (): logbridge.AnalyticsHandler
                endpoint: {collector.endpoint}
                flush_interval: 2
            loggers:
              analytics: {{level: INFO, handlers: [analytics]}}
        """))
        result = run_cli("check", str(path))
        assert result.returncode == 0, result.stdout + result.stderr
        assert rows(result.stdout)["flush_interval"] == ("2.0", "config")

    def test_module_attribute_imported_without_sending(
        self, collector: Collector, tmp_path: Path
    ) -> None:
        """``module:ATTRIBUTE`` is imported; even a record logged at import is not sent."""
        config = dict_config(collector.endpoint, tmp_path)
        (tmp_path / "app_settings.py").write_text(textwrap.dedent(f"""\
            import logging, logging.config
            LOGGING = {config!r}
            logging.config.dictConfig(LOGGING)
            logging.getLogger("analytics").info("Imported", extra={{"user_id": "u1"}})
        """))
        result = run_cli("check", "app_settings:LOGGING", cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "handler 'analytics' (logbridge.AnalyticsHandler) on 'analytics'" in result.stdout
        assert collector.requests == []

    def test_module_attribute_from_the_console_script(self, tmp_path: Path) -> None:
        """The installed ``logbridge`` script finds the application's module as ``-m`` does."""
        config = dict_config("http://127.0.0.1:9", tmp_path)
        (tmp_path / "script_settings.py").write_text(f"LOGGING = {config!r}\n")
        script = Path(sys.executable).with_name("logbridge")
        result = subprocess.run([str(script), "check", "script_settings:LOGGING"],
                                capture_output=True, text=True, cwd=tmp_path, timeout=60,
                                check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "no problems found" in result.stdout

    def test_stdlib_queue_form_is_probed_too(self, collector: Collector, tmp_path: Path) -> None:
        """The QueueHandler form's AnalyticsListener (3.12+) is inert too: nothing sent.

        Before 3.12 dictConfig has no 'listener' key, and check says the config fails.
        """
        config = {"version": 1, "handlers": {"q": {
            "class": "logging.handlers.QueueHandler", "listener": "logbridge.AnalyticsListener",
            "handlers": []}}, "loggers": {"analytics": {"level": "INFO", "handlers": ["q"]}}}
        (tmp_path / "queue_settings.py").write_text(textwrap.dedent(f"""\
            import logging, logging.config
            LOGGING = {config!r}
            logging.config.dictConfig(LOGGING)
            logging.getLogger("analytics").info("Imported", extra={{"user_id": "u1"}})
        """))
        env = {"LOGBRIDGE_ENDPOINT": collector.endpoint, "LOGBRIDGE_WRITE_KEY": "k"}
        result = run_cli("check", "queue_settings:LOGGING", cwd=tmp_path, env=env)
        if sys.version_info >= (3, 12):
            assert result.returncode == 0, result.stdout + result.stderr
            assert "the AnalyticsListener of handler 'q'" in result.stdout
            assert rows(result.stdout)["endpoint"] == (collector.endpoint, "environment")
        else:
            assert result.returncode == 1
            assert "cannot load queue_settings:LOGGING" in one_line(result.stderr)
        assert collector.requests == []

    def test_send_test_delivers_one_event(self, collector: Collector, tmp_path: Path) -> None:
        """--send-test delivers exactly one test event through each handler's options."""
        path = tmp_path / "logging.json"
        path.write_text(json.dumps(dict_config(collector.endpoint, tmp_path)))
        result = run_cli("check", str(path), "--send-test")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "test event" in result.stdout and "delivered" in result.stdout
        [message] = collector.messages
        assert message["event"] == "logbridge check"


class TestBrokenConfig:
    """Each problem is listed; exit code 1."""

    def test_every_problem_is_listed(self, collector: Collector, tmp_path: Path) -> None:
        """Unknown option (with a suggestion), events above INFO, an unattached handler..."""
        config = dict_config(collector.endpoint, tmp_path, flush_intervall=3)
        config["handlers"]["spare"] = {"()": "logbridge.AnalyticsHandler",
                                       "endpoint": collector.endpoint, "level": "WARNING"}
        config["loggers"]["analytics"]["level"] = "WARNING"
        config["loggers"]["analytics.checkout"] = {"propagate": False, "handlers": ["console"]}
        config["loggers"]["orphan"] = {"propagate": False}
        path = tmp_path / "logging.json"
        path.write_text(json.dumps(config))
        result = run_cli("check", str(path))
        assert result.returncode == 1
        problems = result.stdout.split("problems:", 1)[1]
        expected = [
            "handler 'analytics': unknown option(s) 'flush_intervall' "
            "(did you mean flush_interval?)",
            "logger 'analytics' is at WARNING: its INFO records (the events) never reach "
            "handler 'analytics'",
            "handler 'spare' is attached to no logger",
            "handler 'spare' has level WARNING",
            "logger 'analytics.checkout' does not propagate to 'analytics'",
            "logger 'orphan' does not propagate and has no handler",
        ]
        for text in expected:
            assert text in problems
        assert collector.requests == []

    def test_ini_default_without_a_value(self, tmp_path: Path) -> None:
        """A %(name)s fileConfig cannot fill is named, with the --define that fills it."""
        path = tmp_path / "logging.ini"
        path.write_text(
            "[loggers]\nkeys=root\n[handlers]\nkeys=analytics\n[formatters]\nkeys=\n"
            "[logger_root]\nlevel=INFO\nhandlers=analytics\n"
            "[handler_analytics]\nclass=logbridge.AnalyticsHandler\nargs=()\n"
            "kwargs={'write_key': '%(write_key)s'}\n"
        )
        result = run_cli("check", str(path))
        assert result.returncode == 1
        assert "%(write_key)s in [handler_analytics] has no value: give it with --define " \
               "write_key=VALUE" in one_line(result.stderr)

    def test_a_config_that_does_not_load(self, tmp_path: Path) -> None:
        """dictConfig's own failure is one line, exit code 1 (a finding, not a usage error)."""
        path = tmp_path / "logging.json"
        path.write_text(json.dumps({"version": 1, "loggers": {"a": {"handlers": ["missing"]}}}))
        result = run_cli("check", str(path))
        assert result.returncode == 1
        assert "dictConfig failed" in one_line(result.stderr)
        assert "Traceback" not in result.stderr

    def test_invalid_option_value_names_the_option(self, tmp_path: Path) -> None:
        """A bad value is reported with the option's name (the library's message)."""
        config = dict_config("http://127.0.0.1:9", tmp_path, flush_at=0)
        path = tmp_path / "logging.json"
        path.write_text(json.dumps(config))
        result = run_cli("check", str(path))
        assert result.returncode == 1
        assert "handler 'analytics': flush_at must be at least 1" in result.stdout

    def test_send_test_with_a_rejected_key(self, collector_factory: Any, tmp_path: Path) -> None:
        """--send-test against a collector requiring another key: the 401 is a problem."""
        target: Collector = collector_factory(write_key="right")
        config = dict_config(target.endpoint, tmp_path, write_key="wrong")
        path = tmp_path / "logging.json"
        path.write_text(json.dumps(config))
        result = run_cli("check", str(path), "--send-test")
        assert result.returncode == 1
        assert "401: the write key was rejected" in result.stdout

    def test_yaml_without_pyyaml_says_so(self, tmp_path: Path) -> None:
        """Without PyYAML, a .yaml config fails with a line that says how to get it."""
        path = tmp_path / "logging.yaml"
        path.write_text("version: 1\n")
        result = run_python(f"""
            import sys
            sys.modules["yaml"] = None  # as if PyYAML were not installed
            from logbridge.cli import main
            sys.exit(main(["check", {str(path)!r}]))
        """)
        assert result.returncode == 1
        assert "needs PyYAML, which is not installed: pip install pyyaml" in one_line(
            result.stderr
        )
