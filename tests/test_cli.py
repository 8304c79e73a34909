"""The command line as a whole: --version, help with examples, one-line errors, suggestions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from logbridge import __version__
from tests.cli_support import closed_port, one_line, run_cli
from tests.support import run_python

COMMANDS = ("collect", "send", "check", "replay")


class TestVersionAndHelp:
    """What a user reads before the first real command."""

    def test_version(self) -> None:
        """--version prints the package version on one line, exit code 0."""
        result = run_cli("--version")
        assert result.returncode == 0
        assert one_line(result.stdout).startswith(f"logbridge {__version__} ")

    def test_console_script_and_python_m_agree(self) -> None:
        """The installed ``logbridge`` script and ``python -m logbridge`` are the same program."""
        script = Path(sys.executable).with_name("logbridge")
        assert script.exists(), "the console script is installed with the package"
        direct = subprocess.run([str(script), "--version"], capture_output=True, text=True,
                                timeout=60, check=False)
        assert direct.returncode == 0
        assert direct.stdout == run_cli("--version").stdout

    def test_top_level_help_lists_every_command_with_examples(self) -> None:
        """``logbridge --help`` names each command and shows examples."""
        result = run_cli("--help")
        assert result.returncode == 0
        for command in COMMANDS:
            assert f"    {command} " in result.stdout
        assert "examples:" in result.stdout

    @pytest.mark.parametrize("command", COMMANDS)
    def test_each_command_help_has_examples(self, command: str) -> None:
        """Every command's --help has a usage line, a description and examples."""
        result = run_cli(command, "--help")
        assert result.returncode == 0
        assert result.stdout.startswith(f"usage: logbridge {command}")
        assert "examples:" in result.stdout
        assert f"  logbridge {command}" in result.stdout.split("examples:", 1)[1]

    def test_no_command_shows_help_and_fails(self) -> None:
        """``logbridge`` alone prints the help on stderr with exit code 2."""
        result = run_cli()
        assert result.returncode == 2
        assert "COMMAND" in result.stderr


class TestSuggestions:
    """A mistyped word gets the right one in the error line."""

    def test_mistyped_command(self) -> None:
        """``sned`` suggests ``send``, on one line, exit code 2."""
        result = run_cli("sned")
        assert result.returncode == 2
        line = one_line(result.stderr)
        assert "unknown command 'sned' (did you mean send?)" in line

    def test_mistyped_option(self) -> None:
        """``--wirte-key`` suggests ``--write-key``."""
        result = run_cli("send", "track", "--event", "E", "--wirte-key", "k")
        assert result.returncode == 2
        assert "unknown option --wirte-key (did you mean --write-key?)" in one_line(result.stderr)

    def test_mistyped_replay_option(self) -> None:
        """replay's own options are suggested too: ``--rat`` is ambiguous, ``--ratee`` is not."""
        result = run_cli("replay", "x.jsonl", "--ratee", "5")
        assert result.returncode == 2
        assert "(did you mean --rate?)" in one_line(result.stderr)

    def test_mistyped_message_type(self) -> None:
        """``send trak`` suggests ``track``."""
        result = run_cli("send", "trak")
        assert result.returncode == 2
        assert "(did you mean track?)" in one_line(result.stderr)

    def test_mistyped_handler_option_on_the_command_line(self) -> None:
        """``--option flush_intervall=1`` suggests the handler option ``flush_interval``."""
        result = run_cli("send", "track", "--user-id", "u1", "--event", "E",
                         "--endpoint", f"http://127.0.0.1:{closed_port()}",
                         "--option", "flush_intervall=1")
        assert result.returncode == 2
        assert "'flush_intervall' (did you mean flush_interval?)" in one_line(result.stderr)

    def test_mistyped_handler_option_in_the_library(self) -> None:
        """AnalyticsHandler itself names the closest option in its ConfigurationError."""
        result = run_python("""
            import logbridge
            try:
                logbridge.AnalyticsHandler(endpoint="http://127.0.0.1:9", flush_intervall=1)
            except logbridge.ConfigurationError as exc:
                print(exc)
        """)
        expected = "'flush_intervall' (did you mean flush_interval?) for AnalyticsHandler"
        assert expected in result.stdout


class TestErrors:
    """Errors are one clear line on stderr, no traceback, non-zero exit."""

    @pytest.mark.parametrize(
        ("args", "expected"),
        [
            (("send", "track", "--user-id", "u1"), "track needs --event NAME"),
            (("send", "track", "--event", "E", "--endpoint", "http://127.0.0.1:9"),
             "needs --user-id or --anonymous-id"),
            (("send", "identify", "--user-id", "u1", "--traits", "[1]",
              "--endpoint", "http://127.0.0.1:9"), "--traits must be a JSON object"),
            (("send", "track", "--user-id", "u1", "--event", "E", "--endpoint", "ftp://x"),
             "--endpoint must be an http(s) URL"),
            (("send", "track", "--user-id", "u1", "--event", "E", "--destination", "segment"),
             "--write-key is required"),
            (("check", "/nonexistent/logging.ini"), "cannot read /nonexistent/logging.ini"),
            (("replay", "/nonexistent/dead.jsonl", "--endpoint", "http://127.0.0.1:9"),
             "cannot read /nonexistent/dead.jsonl"),
            (("replay", "x", "--endpoint", "http://127.0.0.1:9", "--rate", "0"),
             "--rate must be greater than 0"),
        ],
    )
    def test_one_line_no_traceback(self, args: tuple[str, ...], expected: str) -> None:
        """Each mistake gives one line naming it (in flags), exit code 1 or 2."""
        result = run_cli(*args)
        assert result.returncode in (1, 2)
        line = one_line(result.stderr)
        assert expected in line
        assert "Traceback" not in result.stderr
        assert line.startswith(f"logbridge {args[0]}: error: ")

    def test_no_colour_in_a_pipe(self) -> None:
        """Errors written to a pipe carry no ANSI escapes."""
        result = run_cli("sned")
        assert "\033[" not in result.stderr


class TestImportStaysLight:
    """An application importing logbridge gets none of the command line."""

    def test_import_logbridge_loads_no_cli_module(self) -> None:
        """After ``import logbridge`` no CLI module (nor argparse, yaml) is loaded."""
        result = run_python("""
            import sys
            import logbridge
            cli = [m for m in sys.modules if m.startswith(("logbridge._cli", "logbridge.cli"))]
            heavy = [m for m in ("argparse", "yaml", "logbridge.replay")
                     if m in sys.modules]
            print(cli, heavy)
        """)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "[] []"
