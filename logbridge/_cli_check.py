"""``logbridge check CONFIG``: what a logging config sets up for logbridge, and what is wrong.

The config is loaded for real (fileConfig or dictConfig), with every AnalyticsHandler
replaced by an inert probe (:mod:`logbridge._cli_config`), so nothing is started or
sent unless ``--send-test`` asks for one test event.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

from ._cli_common import CommandError, Parser, add_define_flag, colour, defines, say
from ._cli_config import ListenerProbe, LoadedConfig, Probe, all_loggers, load_config
from ._cli_target import check_option_names
from .errors import ConfigurationError
from .options import Options

__all__ = ["add_check", "effective_options"]

EXAMPLES = """\
examples:
  logbridge check logging.ini                       a fileConfig file
  logbridge check logging.ini --define write_key=$KEY    fileConfig's defaults
  logbridge check logging.json                      a dictConfig as JSON (or .yaml)
  logbridge check myapp.settings:LOGGING            a dict in a module (Django's LOGGING)
  logbridge check logging.yaml --send-test          and deliver one test event

Exit status: 0 when no problem was found, 1 otherwise (for CI).
"""

#: Records at this level are the events; a logger or handler above it drops them.
EVENT_LEVEL = logging.INFO
#: Shown redacted: the keys, and anything named like a secret.
_SECRETS = frozenset({"write_key", "oauth_client_key"})
_SECRET_WORDS = ("secret", "token", "password")


def add_check(commands: Any) -> None:
    """The ``check`` sub-command."""
    parser: Parser = commands.add_parser(
        "check",
        help="load a logging config without sending, and list its problems",
        description="Load CONFIG as the application would, without sending anything, "
        "print each AnalyticsHandler's effective options (secrets redacted) with where "
        "each value comes from (config, environment, default), and list the problems "
        "found: unknown options, loggers whose events never reach a handler, handlers "
        "on no logger.",
        epilog=EXAMPLES,
    )
    parser.set_defaults(run=run_check)
    parser.add_argument(
        "config", metavar="CONFIG", help="an .ini (fileConfig), a .json or .yaml dictConfig, "
        "or module:ATTRIBUTE naming a dictConfig dict",
    )
    add_define_flag(parser)
    parser.add_argument(
        "--send-test", action="store_true", help="deliver one test event through each handler"
    )


def run_check(args: argparse.Namespace) -> int:
    """Run ``logbridge check``: 0 when no problem was found, 1 otherwise."""
    try:
        loaded = load_config(args.config, defaults=defines(args))
    except CommandError as exc:
        exc.code = 1  # a config that does not load is a finding: exit 1, as for CI
        raise
    say("check", f"{args.config}: loaded with {loaded.kind}, nothing sent")
    problems: list[str] = []
    for probe in loaded.probes:
        found = _report_handler(loaded, probe)
        if args.send_test and not found:
            found.extend(_send_test(probe))
        problems.extend(found)
    problems.extend(_logger_problems(loaded))
    if not loaded.probes:
        problems.append("no AnalyticsHandler in this config")
    if problems:
        print(f"\n{len(problems)} problem{'s' if len(problems) > 1 else ''}:")
        for problem in problems:
            print(colour(f"  - {problem}", "red", sys.stdout))
        return 1
    print("\nno problems found")
    return 0


def _label(probe: Probe) -> str:
    name = f"handler {probe.name!r}" if probe.name else "an unnamed handler"
    return f"the AnalyticsListener of {name}" if isinstance(probe, ListenerProbe) else name


def _report_handler(loaded: LoadedConfig, probe: Probe) -> list[str]:
    label = _label(probe)
    loggers = loaded.attached(probe)
    where = ", ".join(_logger_name(logger) for logger in loggers) or "no logger"
    print(f"\n{label} ({probe.class_path}) on {where}")
    if isinstance(probe, ListenerProbe):
        print("  (built by dictConfig's QueueHandler form: options from LOGBRIDGE_* only)")
    problems: list[str] = []
    if probe.dropped:
        problems.append(
            f"{label}: this Python drops the options {probe.dropped} of a dictConfig 'class' "
            "entry (python/cpython#118868): use the factory key '()' instead"
        )
        return problems
    try:
        check_option_names(probe.given)
        rows = effective_options(probe.given, os.environ)
    except (CommandError, ConfigurationError) as exc:
        problems.append(f"{label}: {exc}")
        rows = []
    width = max((len(name) for name, _, _ in rows), default=0)
    value_width = min(48, max((len(value) for _, value, _ in rows), default=0))
    for name, value, source in rows:
        print(f"  {name:<{width}}  {value:<{value_width}}  "
              + colour(f"({source})", "dim", sys.stdout))
    if not loggers:
        problems.append(f"{label} is attached to no logger: no record reaches it")
    if probe.level > EVENT_LEVEL:
        problems.append(
            f"{label} has level {logging.getLevelName(probe.level)}: it drops the INFO "
            "records that are events"
        )
    for logger in loggers:
        if logger.getEffectiveLevel() > EVENT_LEVEL:
            level = logging.getLevelName(logger.getEffectiveLevel())
            problems.append(
                f"logger {_logger_name(logger)} is at {level}: its INFO records (the events) "
                f"never reach {label}"
            )
    return problems


def effective_options(
    given: Mapping[str, Any], environ: Mapping[str, str]
) -> list[tuple[str, str, str]]:
    """(option, shown value, source) for each option; raises ConfigurationError.

    The source is ``config`` (given), ``environment`` (``LOGBRIDGE_*``), ``default``, or
    ``derived`` (computed from other options, like the endpoint of a destination).
    """
    options = Options.from_kwargs(**given, environ=environ)
    rows = []
    for field in dataclasses.fields(Options):
        if field.name == "sources":
            continue
        value = getattr(options, field.name)
        source = options.sources.get(field.name, "default")
        if source == "default" and value != _default(field):
            source = "derived"
        rows.append((field.name, _shown(field.name, value), source))
    return rows


def _logger_problems(loaded: LoadedConfig) -> list[str]:
    """Configured loggers whose records go nowhere, or never reach an AnalyticsHandler."""
    carrying = {id(logger) for probe in loaded.probes for logger in loaded.attached(probe)}
    carriers = [
        logger for logger in all_loggers()
        if logger is not logging.getLogger() and id(logger) in carrying
    ]
    problems = []
    for logger in loaded.loggers:
        if not logger.propagate and not logger.handlers:
            problems.append(
                f"logger {_logger_name(logger)} does not propagate and has no handler: "
                "its records go nowhere"
            )
            continue
        above = [c for c in carriers if c is not logger and logger.name.startswith(c.name + ".")]
        for carrier in above:
            if not _reaches(logger, carrier):
                problems.append(
                    f"logger {_logger_name(logger)} does not propagate to "
                    f"{_logger_name(carrier)}: its records never reach the AnalyticsHandler there"
                )
            elif logger.getEffectiveLevel() > EVENT_LEVEL:
                level = logging.getLevelName(logger.getEffectiveLevel())
                problems.append(
                    f"logger {_logger_name(logger)} is at {level}: its INFO records (the "
                    f"events) never reach the AnalyticsHandler on {_logger_name(carrier)}"
                )
    return problems


def _reaches(logger: logging.Logger, target: logging.Logger) -> bool:
    current: logging.Logger | None = logger
    while current is not None:
        if current is target:
            return True
        current = current.parent if current.propagate else None
    return False


def _send_test(probe: Probe) -> list[str]:
    from ._cli_send import send_message
    from ._cli_target import Target, describe

    label = _label(probe)
    try:
        target = Target(probe.given)
    except CommandError as exc:
        return [f"{label}: {exc}"]
    try:
        fields = {"user_id": "logbridge-check", "event": "logbridge check",
                  "properties": {"source": "logbridge check --send-test"}}
        message_id, answer = send_message(target, "track", fields)
    finally:
        target.close()
    outcome = describe(answer, target.url)
    print(f"  test event {message_id}: {outcome}")
    return [] if answer.ok else [f"{label}: the test event was not delivered: {outcome}"]


def _shown(name: str, value: Any) -> str:
    """A value for the table, secrets redacted."""
    if name in _SECRETS or any(word in name for word in _SECRET_WORDS):
        return "(not set)" if value in (None, "") else "*** (set, redacted)"
    if value is None:
        return "(not set)"
    if callable(value):
        return str(getattr(value, "__qualname__", type(value).__name__))
    if isinstance(value, Mapping):
        return json.dumps(dict(value), default=str) if name != "proxies" else "(set)"
    if name == "session":
        return type(value).__name__
    return str(value)


def _default(field: dataclasses.Field[Any]) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return MISSING


MISSING: Any = dataclasses.MISSING


def _logger_name(logger: logging.Logger) -> str:
    return "root" if logger is logging.getLogger() else repr(logger.name)


