"""What every ``logbridge`` command shares: the parser, one-line errors, the handler's flags.

Only the command line imports this module (``import logbridge`` does not), and it
imports nothing outside the standard library and logbridge.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NoReturn, TextIO

__all__ = [
    "PROG",
    "CommandError",
    "Parser",
    "add_handler_flags",
    "colour",
    "flag_words",
    "handler_kwargs",
    "parse_json_object",
    "say",
]

PROG = "logbridge"


class CommandError(Exception):
    """A mistake the user can fix: printed as one line on stderr, with an exit code."""

    def __init__(self, message: str, *, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


class HelpFormatter(argparse.HelpFormatter):
    """Wraps one-paragraph text (descriptions); keeps text with line breaks as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line, with the option probably meant.

    argparse prints the usage and then the error; a user who mistyped wants the one
    line that says what is wrong, and the right spelling when there is one close by.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        """Print ``prog: error: message (did you mean ...?)`` and exit with status 2."""
        print_error(f"{self.prog}: error: {self._explained(message)}; see '{self.prog} --help'")
        raise SystemExit(2)

    def suggest_option(self, word: str) -> str | None:
        """The option string of this parser closest to ``word`` (``--write-kye``), if any."""
        name = word.split("=", 1)[0]
        options = [o for action in self._actions for o in action.option_strings]
        close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
        return close[0] if close else None

    def _explained(self, message: str) -> str:
        """argparse's ``message``, with the choice probably meant for an invalid one."""
        choice = re.search(r"invalid choice: '([^']*)'", message)
        if choice is None:
            return message
        word = choice.group(1)
        names = [str(c) for action in self._actions for c in (action.choices or ())]
        if message.startswith("argument COMMAND:"):
            return f"unknown command {word!r}{closest(word, names)}; the commands are " + (
                ", ".join(names)
            )
        return message + closest(word, names)


def unknown_arguments_error(parser: Parser, extras: Sequence[str]) -> NoReturn:
    """Refuse arguments nobody took, suggesting the option closest to the first one."""
    first = extras[0]
    close = parser.suggest_option(first) if first.startswith("-") else None
    hint = f" (did you mean {close}?)" if close else ""
    kind = "option" if first.startswith("-") else "argument"
    print_error(f"{parser.prog}: error: unknown {kind} {first}{hint}; see '{parser.prog} --help'")
    raise SystemExit(2)


def print_error(line: str) -> None:
    """Print one error line on stderr (red on a terminal)."""
    print(colour(line, "red", sys.stderr), file=sys.stderr, flush=True)


def say(command: str, text: str, *, error: bool = False, stream: TextIO | None = None) -> None:
    """Print one status line for ``command``, flushed at once (stdout may be a pipe)."""
    out = stream or (sys.stderr if error else sys.stdout)
    line = f"{PROG} {command}: {text}"
    print(colour(line, "red", out) if error else line, file=out, flush=True)


_COLOURS = {"red": "31", "green": "32", "yellow": "33", "dim": "2", "bold": "1"}


def colour(text: str, name: str, stream: TextIO) -> str:
    """``text`` in colour ``name`` when ``stream`` is a terminal and ``NO_COLOR`` is unset."""
    if os.environ.get("NO_COLOR") or not _isatty(stream):
        return text
    return f"\033[{_COLOURS[name]}m{text}\033[0m"


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


# The handler's options as flags -------------------------------------------------------

#: Flag -> the AnalyticsHandler option it sets; errors name the flag, not the option.
FLAG_OPTIONS: dict[str, str] = {
    "--write-key": "write_key",
    "--destination": "destination",
    "--endpoint": "endpoint",
    "--data-plane-url": "data_plane_url",
    "--timeout": "timeout",
}


def add_handler_flags(
    parser: argparse.ArgumentParser, *, config: bool = True, request_timeout: bool = True
) -> None:
    """The flags that set AnalyticsHandler options, as ``send`` and ``replay`` take them.

    ``request_timeout``: whether ``--timeout`` is the handler's ``timeout`` option (replay
    has its own ``--timeout``, for the whole run).
    """
    group = parser.add_argument_group(
        "where to send (as the handler's options; LOGBRIDGE_* fills what is not given)"
    )
    if config:
        group.add_argument(
            "--config", metavar="FILE",
            help="take the AnalyticsHandler's options from a logging config (.ini, .json, "
            ".yaml, or module:ATTRIBUTE); the flags below override them",
        )
        group.add_argument(
            "--handler", metavar="NAME",
            help="which handler of --config, when it has more than one AnalyticsHandler",
        )
        add_define_flag(group)
    group.add_argument("--write-key", metavar="KEY", help="the write key (env LOGBRIDGE_WRITE_KEY)")
    group.add_argument(
        "--destination", metavar="NAME",
        help="a destination by name (segment, rudderstack, ...) or a URL "
        "(env LOGBRIDGE_DESTINATION)",
    )
    group.add_argument(
        "--endpoint", metavar="URL", help="send to this URL instead (env LOGBRIDGE_ENDPOINT)"
    )
    group.add_argument(
        "--data-plane-url", metavar="URL",
        help="the data plane URL, for rudderstack (env LOGBRIDGE_DATA_PLANE_URL)",
    )
    parser.set_defaults(request_timeout=request_timeout)
    if request_timeout:
        group.add_argument(
            "--timeout", type=float, metavar="S",
            help="seconds to wait for the answer (default: 10)",
        )
    group.add_argument(
        "--option", action="append", default=[], metavar="NAME=VALUE",
        help="any other handler option, e.g. --option gzip=false (repeatable)",
    )


def add_define_flag(group: Any) -> None:
    """``--define NAME=VALUE``: fileConfig's defaults, for ``%(NAME)s`` in an .ini."""
    group.add_argument(
        "--define", action="append", default=[], metavar="NAME=VALUE",
        help="a fileConfig default, for %%(NAME)s in an .ini config (repeatable)",
    )


def defines(args: argparse.Namespace) -> dict[str, str]:
    """The ``--define`` pairs as a dict."""
    pairs: dict[str, str] = {}
    for text in args.define:
        name, sep, value = text.partition("=")
        if not sep or not name.strip():
            raise CommandError(f"--define takes NAME=VALUE, got {text!r}")
        pairs[name.strip()] = value
    return pairs


def config_options(args: argparse.Namespace) -> dict[str, Any]:
    """The AnalyticsHandler options of ``--config`` (none without it)."""
    if not getattr(args, "config", None):
        return {}
    from ._cli_config import load_config

    loaded = load_config(args.config, defaults=defines(args))
    return dict(loaded.choose(args.handler, args.config).given)


def handler_kwargs(
    args: argparse.Namespace, base: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The handler options the flags give, over ``base`` (from ``--config``)."""
    kwargs = dict(base or {})
    if getattr(args, "destination", None) is not None:
        kwargs.pop("endpoint", None)  # the config's URL was for its own destination
    for text in args.option:
        name, sep, value = text.partition("=")
        if not sep or not name.strip():
            raise CommandError(f"--option takes NAME=VALUE, got {text!r}")
        kwargs[name.strip()] = value
    flags = FLAG_OPTIONS if args.request_timeout else {
        flag: option for flag, option in FLAG_OPTIONS.items() if option != "timeout"
    }
    for option in flags.values():
        value = getattr(args, option, None)
        if value is not None:
            kwargs[option] = value
    return kwargs


def flag_words(message: str) -> str:
    """A library message in the command line's words: ``write_key=...`` -> ``--write-key``."""
    for flag, option in FLAG_OPTIONS.items():
        message = re.sub(rf"\b{option}=\.\.\.", f"{flag} ...", message)
        message = re.sub(rf"(?<![-\w]){option}\b", flag, message)
    # An option without a flag of its own is given with --option NAME=VALUE; names with
    # an underscore are unmistakable (``min_id_length``), other words stay words.
    from .options import OPTION_NAMES

    def as_option(found: re.Match[str]) -> str:
        name = found.group(1)
        return f"--option {found.group(0)}" if name in OPTION_NAMES else found.group(0)

    message = re.sub(r"(?<![-\w])([a-z]+_[a-z_]+)(=\S+)?(?![\w])", as_option, message)
    # The way to turn a handler off means nothing to a command that is asked to send.
    return re.sub(r" \(or disabled=True[^)]*\)", "", message)


def parse_json_object(flag: str, text: str | None) -> dict[str, Any] | None:
    """``text`` read as a JSON object, for ``flag``; CommandError when it is not one."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(f"{flag} is not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(value, dict):
        raise CommandError(f"{flag} must be a JSON object, like '{{\"plan\": \"pro\"}}'")
    return value


def closest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean X?)`` for the choice closest to ``word``, or an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]}?)" if close else ""
