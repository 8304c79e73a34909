"""``logbridge send TYPE``: one message, delivered now, and the answer in plain words."""

from __future__ import annotations

import argparse
import re
import time
import uuid
from typing import Any

from ._cli_common import (
    CommandError,
    Parser,
    add_handler_flags,
    config_options,
    flag_words,
    handler_kwargs,
    parse_json_object,
    say,
)
from ._cli_target import Answer, Target, describe

__all__ = ["add_send", "send_message"]

TYPES = ("track", "identify", "page", "screen", "group", "alias")

EXAMPLES = """\
examples:
  logbridge send track --user-id u1 --event "Test" --properties '{"a": 1}'
  logbridge send identify --user-id u1 --traits '{"plan": "pro"}' --destination segment
  logbridge send page --anonymous-id a1 --name Home --endpoint http://127.0.0.1:8765
  logbridge send alias --previous-id a1 --user-id u1 --config logging.ini
  LOGBRIDGE_WRITE_KEY=... logbridge send group --user-id u1 --group-id acme

It prints "delivered", or what went wrong ("401: the write key was rejected",
"400: <what the server said>", "could not connect to <url>: ..."), and exits 1 when
the message was not delivered, 2 for a mistake in the command.
"""


def add_send(commands: Any) -> None:
    """The ``send`` sub-command."""
    parser: Parser = commands.add_parser(
        "send",
        help="deliver one message now: a connectivity check",
        description="Deliver one message of TYPE now, with the same options as the "
        "AnalyticsHandler (flags, LOGBRIDGE_* environment or --config), and say what "
        "the destination answered.",
        epilog=EXAMPLES,
    )
    parser.set_defaults(run=run_send)
    parser.add_argument("type", metavar="TYPE", choices=TYPES, help=", ".join(TYPES))
    who = parser.add_argument_group("the message")
    who.add_argument("--user-id", metavar="ID", help="the user's id (userId)")
    who.add_argument("--anonymous-id", metavar="ID", help="an anonymous id (anonymousId)")
    who.add_argument("--event", metavar="NAME", help="the event name (track)")
    who.add_argument("--name", metavar="NAME", help="the page or screen name")
    who.add_argument("--category", metavar="NAME", help="the page or screen category")
    who.add_argument("--group-id", metavar="ID", help="the group (group)")
    who.add_argument("--previous-id", metavar="ID", help="the identity merged (alias)")
    who.add_argument("--properties", metavar="JSON", help="a JSON object")
    who.add_argument("--traits", metavar="JSON", help="a JSON object")
    who.add_argument("--context", metavar="JSON", help="a JSON object")
    who.add_argument("--message-id", metavar="ID", help="default: a new UUID")
    who.add_argument("--timestamp", metavar="ISO8601", help="default: now")
    add_handler_flags(parser)


def run_send(args: argparse.Namespace) -> int:
    """Run ``logbridge send``: 0 when delivered, 1 when not, 2 for a usage mistake."""
    fields = _fields(args)
    target = Target(handler_kwargs(args, config_options(args)))
    if target.options.disabled:
        where = target.options.sources.get("disabled", "config")
        say("send", f"note: disabled is set ({where}): the handler would send nothing; "
                    "sending anyway, as asked")
    try:
        message_id, answer = send_message(target, args.type, fields)
    finally:
        target.close()
    outcome = describe(answer, target.url)
    if answer.ok:
        say("send", f"{args.type} {message_id}: {outcome} to {target.url}")
        return 0
    say("send", f"{args.type} {message_id}: {outcome}", error=True)
    return 1


def send_message(target: Target, kind: str, fields: dict[str, Any]) -> tuple[str, Answer]:
    """Build the ``kind`` message of ``fields`` and send it once: its messageId, the answer."""
    from .errors import InvalidEvent
    from .message import build_message

    fields.setdefault("message_id", str(uuid.uuid4()))
    try:
        message, _ = build_message(
            kind, fields, created=time.time(), context=target.options.context
        )
        items = target.items(message)
    except InvalidEvent as exc:
        raise CommandError(
            f"not a valid {kind} message: {flag_words(_in_flags(exc.reason))}"
        ) from None
    return str(message["messageId"]), target.send(items)


def _fields(args: argparse.Namespace) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name in ("user_id", "anonymous_id", "event", "category", "group_id", "previous_id",
                 "message_id", "timestamp"):
        value = getattr(args, name)
        if value is not None:
            fields[name] = value
    if args.name is not None:
        fields["screen_name" if args.type == "screen" else "page_name"] = args.name
    for name in ("properties", "traits", "context"):
        value = parse_json_object(f"--{name}", getattr(args, name))
        if value is not None:
            fields[name] = value
    if args.type == "track" and "event" not in fields:
        raise CommandError("track needs --event NAME")
    return fields


def _in_flags(reason: str) -> str:
    """A spec rule in flag words: ``user_id`` or ``userId`` -> ``--user-id``."""
    for flag in ("--anonymous-id", "--previous-id", "--group-id", "--user-id"):
        snake = flag[2:].replace("-", "_")
        camel = snake.split("_")[0] + "".join(w.title() for w in snake.split("_")[1:])
        reason = re.sub(rf"\b({snake}|{camel})\b", flag, reason)
    return reason
