"""The ``logbridge`` command line: ``collect`` runs a local receiver; ``send``, ``check``
and ``replay`` live in the ``_cli_*`` modules beside this one."""

from __future__ import annotations

import argparse
import ipaddress
import os
import platform
import signal
import sys
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

from ._cli_check import add_check
from ._cli_common import CommandError, Parser, print_error, unknown_arguments_error
from ._cli_replay import add_replay
from ._cli_send import add_send
from ._version import __version__

__all__ = ["build_parser", "main"]

_PROG = "logbridge"
_DEFAULT_PORT = 8765
_DEFAULT_MAX_EVENTS = 10_000  # the collector's own default, without importing it here


def main(argv: list[str] | None = None) -> int:
    """Run the ``logbridge`` command line with ``argv`` (default: ``sys.argv[1:]``)."""
    parser: Parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        unknown_arguments_error(getattr(args, "command_parser", None) or parser, extras)
    command: Callable[[argparse.Namespace], int] | None = getattr(args, "run", None)
    if command is None:
        parser.print_help(sys.stderr)
        return 2
    name = f"{_PROG} {args.command_parser.prog.split()[-1]}"
    if os.getcwd() not in sys.path:
        # The application's own modules (a destination class, a callback, a settings
        # module) are found from the installed script as ``python -m`` finds them; last,
        # so nothing installed is shadowed.
        sys.path.append(os.getcwd())
    try:
        return command(args)
    except CommandError as exc:
        print_error(f"{name}: error: {exc}")
        return exc.code
    except KeyboardInterrupt:
        print_error(f"{name}: interrupted")
        return 130
    except BrokenPipeError:  # ``logbridge check ... | head``: the reader has gone
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:  # a bug: one line, the traceback only when asked for
        if os.environ.get("LOGBRIDGE_DEBUG"):
            raise
        print_error(f"{name}: internal error: {type(exc).__name__}: {exc} "
                    "(set LOGBRIDGE_DEBUG=1 for the traceback)")
        return 1


def build_parser() -> Parser:
    """The argument parser for ``logbridge`` and its sub-commands."""
    parser = Parser(
        prog=_PROG,
        description="Product analytics from Python's standard logging: a local collector "
        "to watch events arrive, and commands to send, check and replay.",
        epilog=_EXAMPLES,
    )
    parser.add_argument(
        "--version", action="version",
        version=f"{_PROG} {__version__} (Python {platform.python_version()})",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    collect = commands.add_parser(
        "collect",
        help="run a local Segment-compatible batch receiver",
        description="Receive Segment batches on a local HTTP endpoint, check them against "
        "the spec and print them, optionally injecting faults. The debugger page at "
        "http://HOST:PORT/ shows the events live; /events, /stats and DELETE /events are "
        "its JSON API.",
        epilog="examples:\n"
        "  logbridge collect --open            watch events in the browser\n"
        "  logbridge collect --write-key KEY   refuse other keys (401)\n"
        "  logbridge collect --status 503 --status-count 3   fail the first 3 batches",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    collect.set_defaults(run=_collect)
    where = collect.add_argument_group("where")
    where.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    where.add_argument(
        "--port", type=int, default=_DEFAULT_PORT, help="port, 0 for any (default: %(default)s)"
    )
    where.add_argument(
        "--allow-remote", action="store_true", help="allow a --host that is not a loopback address"
    )
    what = collect.add_argument_group("what")
    what.add_argument("--write-key", metavar="KEY", help="require this write key (HTTP Basic user)")
    what.add_argument("--output", metavar="FILE.jsonl", help="append each message as a JSON line")
    what.add_argument("--quiet", action="store_true", help="do not print a line per event")
    what.add_argument(
        "--max-events",
        type=int,
        default=_DEFAULT_MAX_EVENTS,
        metavar="N",
        help="keep the last N events for the page and the API (default: %(default)s)",
    )
    what.add_argument("--open", action="store_true", help="open the debugger page in a browser")
    what.add_argument(
        "--max-body-bytes",
        type=int,
        default=500_000,
        metavar="N",
        help="413 for bodies over N bytes, decompressed (default: %(default)s)",
    )
    what.add_argument(
        "--max-message-bytes",
        type=int,
        default=32_768,
        metavar="N",
        help="messages over N bytes of JSON are invalid (default: %(default)s)",
    )
    oauth = collect.add_argument_group("oauth")
    oauth.add_argument(
        "--oauth-public-key",
        metavar="PEM",
        help="serve POST /token for client assertions signed with this key's private half, "
        "and accept the bearer tokens it issues (needs logbridge[oauth])",
    )
    oauth.add_argument("--oauth-client-id", metavar="ID", help="accept only this client id")
    oauth.add_argument(
        "--oauth-token-lifetime",
        type=float,
        default=3600.0,
        metavar="S",
        help="expires_in of the issued tokens (default: %(default)s)",
    )
    faults = collect.add_argument_group("faults")
    faults.add_argument(
        "--fail-rate",
        type=float,
        default=0.0,
        metavar="F",
        help="fraction of batch requests answered 500",
    )
    faults.add_argument(
        "--status",
        type=int,
        metavar="CODE",
        help="answer the first --status-count batch requests with CODE",
    )
    faults.add_argument("--status-count", type=int, metavar="N", help="default: 1")
    faults.add_argument("--retry-after", metavar="V", help="Retry-After value sent with 429/503")
    faults.add_argument(
        "--latency",
        type=float,
        default=0.0,
        metavar="S",
        help="seconds to wait before answering each batch request",
    )
    faults.add_argument(
        "--reset-rate",
        type=float,
        default=0.0,
        metavar="F",
        help="fraction of batch requests whose connection is reset",
    )
    faults.add_argument(
        "--down-for",
        type=float,
        default=0.0,
        metavar="S",
        help="refuse connections for S seconds after starting",
    )
    faults.add_argument("--seed", type=int, metavar="N", help="seed for the random faults")
    faults.add_argument(
        "--throttle-id",
        action="append",
        default=[],
        metavar="ID",
        help="Amplitude: answer 429 throttling this user or device id (repeatable)",
    )
    faults.add_argument(
        "--throttle-count", type=int, default=1, metavar="N",
        help="how many requests --throttle-id throttles (default: %(default)s)",
    )
    faults.add_argument(
        "--over-quota-id",
        action="append",
        default=[],
        metavar="ID",
        help="Amplitude: answer 429 exceeded_daily_quota for this id (repeatable)",
    )
    add_send(commands)
    add_check(commands)
    add_replay(commands)
    for command in commands.choices.values():
        command.set_defaults(command_parser=command)
    return parser


_EXAMPLES = """\
examples:
  logbridge collect                      watch events arrive on http://127.0.0.1:8765
  logbridge send track --user-id u1 --event Test --endpoint http://127.0.0.1:8765
  logbridge check logging.ini            what the config sets up, and what is wrong
  logbridge replay dead-letter.jsonl     deliver what failed, once

'logbridge COMMAND --help' tells more about each command.
"""

def _is_loopback(host: str) -> bool:
    """Whether ``host`` names a loopback address (no DNS lookup is made)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _say(text: str, *, error: bool = False) -> None:
    """Print one status line, flushed at once (stdout may be a pipe)."""
    print(f"{_PROG} collect: {text}", file=sys.stderr if error else sys.stdout, flush=True)


class _StopRequested(Exception):
    """Raised by the SIGINT/SIGTERM handler to end the main wait."""


def _request_stop(signum: int, frame: FrameType | None) -> None:
    """Signal handler: stop the collector."""
    raise _StopRequested(signum)


def _collect(args: argparse.Namespace) -> int:
    """Run ``logbridge collect`` until SIGINT or SIGTERM; print a summary."""
    from logbridge.collector.faults import Faults
    from logbridge.collector.server import Collector, mask_key
    from logbridge.collector.terminal import EventPrinter, summary_lines, wants_colour

    if not args.allow_remote and not _is_loopback(args.host):
        _say(
            f"refusing to listen on non-loopback host {args.host!r} "
            "(pass --allow-remote to do it anyway)",
            error=True,
        )
        return 2
    if args.max_events < 1:
        _say("--max-events must be at least 1", error=True)
        return 2
    if args.status_count is not None and args.status is None:
        _say("--status-count needs --status", error=True)
        return 2
    try:
        fault_options: dict[str, Any] = {
            "fail_rate": args.fail_rate,
            "status": args.status,
            "retry_after": args.retry_after,
            "latency": args.latency,
            "reset_rate": args.reset_rate,
            "down_for": args.down_for,
            "seed": args.seed,
            "throttle_ids": frozenset(args.throttle_id),
            "throttle_count": args.throttle_count,
            "over_quota_ids": frozenset(args.over_quota_id),
        }
        if args.status_count is not None:
            fault_options["status_count"] = args.status_count
        faults = Faults(**fault_options)
        oauth = None
        if args.oauth_public_key:
            from logbridge.collector.oauth import TokenIssuer

            oauth = TokenIssuer(
                args.oauth_public_key,
                client_id=args.oauth_client_id,
                token_lifetime=args.oauth_token_lifetime,
            )
        collector = Collector(
            args.host,
            args.port,
            write_key=args.write_key,
            output=args.output,
            faults=faults,
            max_body_bytes=args.max_body_bytes,
            max_message_bytes=args.max_message_bytes,
            oauth=oauth,
            max_events=args.max_events,
            max_messages=args.max_events,
        )
    except ValueError as exc:
        _say(str(exc), error=True)
        return 2

    colour = wants_colour(sys.stdout)
    if not args.quiet:
        collector.events.subscribe(EventPrinter(sys.stdout, colour=colour))
    previous = _install_handlers()
    try:
        try:
            collector.start()
        except OSError as exc:
            _say(f"cannot listen on {args.host}:{args.port}: {exc}", error=True)
            return 1
        _say(f"listening on {collector.endpoint}")
        _say(f"Amplitude: {collector.url}/2/httpapi, /batch and /usermap")
        page = collector.url + "/"
        _say(f"debugger page: {page} (keeps the last {args.max_events:,} events)")
        if args.write_key:
            _say(f"write key required: {mask_key(args.write_key)}")
        if oauth is not None:
            _say(f"OAuth tokens at {collector.url}/token (oauth_auth_server={collector.url})")
        if faults.active:
            _say(f"faults: {faults.describe()}")
        if args.output:
            _say(f"appending messages to {args.output}")
        _say("press Ctrl-C to stop")
        if args.open:
            import webbrowser

            if not webbrowser.open(page):
                _say(f"no browser found: open {page} yourself", error=True)
        try:
            while True:
                time.sleep(3600)
        except (_StopRequested, KeyboardInterrupt):
            pass
    finally:
        _restore_handlers(previous)
        collector.stop()
    stats = collector.stats()
    faulted = sum(stats["faults"].values())
    amplitude = stats["amplitude"]
    received_amplitude = (
        f", amplitude events {amplitude['events']}, usermaps {amplitude['usermaps']}"
        if amplitude["events"] or amplitude["usermaps"]
        else ""
    )
    _say(
        f"stopped: received {stats['received']}, unique {stats['unique']}, "
        f"duplicates {stats['duplicates']}, invalid {stats['invalid']}, "
        f"requests {stats['requests']}, faults {faulted}{received_amplitude}"
    )
    print("\n".join(summary_lines(collector.events.summary(), stats, colour=colour)), flush=True)
    return 0


_SignalHandler = Callable[[int, FrameType | None], Any] | int | None


def _install_handlers() -> dict[int, _SignalHandler]:
    """Route SIGINT and SIGTERM to :func:`_request_stop`; the previous handlers, to restore."""
    previous: dict[int, _SignalHandler] = {}
    for signum in _stop_signals():
        try:
            previous[signum] = signal.signal(signum, _request_stop)
        except ValueError:  # not the main thread: rely on KeyboardInterrupt
            break
    return previous


def _restore_handlers(previous: dict[int, _SignalHandler]) -> None:
    """Put back the signal handlers replaced by :func:`_install_handlers`."""
    for signum, handler in previous.items():
        signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


def _stop_signals() -> Sequence[int]:
    """The signals that stop the collector on this platform."""
    return [signal.SIGINT] + ([signal.SIGTERM] if hasattr(signal, "SIGTERM") else [])
