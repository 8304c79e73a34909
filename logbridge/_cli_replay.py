"""``logbridge replay PATH``: deliver a dead letter, an archive or a spool again, once."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from types import FrameType
from typing import Any

from ._cli_common import (
    PROG,
    CommandError,
    Parser,
    add_handler_flags,
    config_options,
    handler_kwargs,
    say,
)

__all__ = ["add_replay"]

EXAMPLES = """\
examples:
  LOGBRIDGE_WRITE_KEY=... logbridge replay dead.jsonl --destination segment
  logbridge replay archive.jsonl --endpoint http://127.0.0.1:8765 --rate 50
  logbridge replay spool.db --config logging.ini --dead-letter still-dead.jsonl
  logbridge replay dead.jsonl --endpoint URL --state /tmp/dead.state   resumable

PATH is a dead letter (the dead_letter option), a JSON-lines archive of messages
(the jsonl destination, AnalyticsFormatter, 'logbridge collect --output') or a spool
(the spool option's SQLite file, read only). Messages keep their messageId and
timestamp. What is delivered is recorded in the state file (default: PATH.replayed)
before the next request, so after Ctrl-C the same command resumes and sends nothing
twice; --fresh starts over. Exit status: 0 all delivered, 1 some not, 2 a mistake in
the command, 130 interrupted.
"""


def add_replay(commands: Any) -> None:
    """The ``replay`` sub-command."""
    parser: Parser = commands.add_parser(
        "replay",
        help="deliver a dead letter, archive or spool again, resumably",
        description="Deliver every message of PATH again, in batches, keeping each "
        "message's messageId and timestamp, and say what was delivered, what failed "
        "and why, and what was skipped.",
        epilog=EXAMPLES,
    )
    parser.set_defaults(run=run_replay)
    parser.add_argument("path", metavar="PATH", help="a dead letter, JSON-lines archive or spool")
    add_handler_flags(parser, request_timeout=False)
    how = parser.add_argument_group("how")
    how.add_argument("--rate", type=float, metavar="N", help="at most N messages a second")
    how.add_argument(
        "--batch-size", type=int, default=100, metavar="N",
        help="messages per request, within the destination's limits (default: %(default)s)",
    )
    how.add_argument(
        "--timeout", type=float, default=60.0, metavar="S",
        help="give up on what is not delivered after S seconds (default: %(default)s)",
    )
    how.add_argument(
        "--state", metavar="FILE",
        help="where delivered messageIds are kept (default: PATH.replayed)",
    )
    how.add_argument("--fresh", action="store_true", help="forget an earlier run's state")
    how.add_argument(
        "--dead-letter", metavar="FILE", help="write what fails for good to this new dead letter"
    )
    how.add_argument("--quiet", action="store_true", help="no progress bar")


def run_replay(args: argparse.Namespace) -> int:
    """Run ``logbridge replay``; 0 all delivered, 1 some not, 2 usage, 130 interrupted."""
    from ._cli_progress import ProgressBar
    from ._cli_target import Target, describe
    from ._replay_input import count_entries, input_kind, read_entries
    from .replay import Replayer, ReplayState

    _check_numbers(args)
    path = args.path
    state_path = args.state or f"{path}.replayed"
    for other, flag in ((state_path, "--state"), (args.dead_letter, "--dead-letter")):
        if other is not None and os.path.abspath(other) == os.path.abspath(path):
            raise CommandError(f"{flag} must not be the file being replayed")
    try:
        kind = input_kind(path)
        total = count_entries(path)
    except (OSError, ValueError) as exc:
        raise CommandError(f"cannot read {path}: {_why(exc)}") from None
    target = Target(handler_kwargs(args, config_options(args)))
    try:
        state = ReplayState(state_path, fresh=args.fresh)
    except OSError as exc:
        raise CommandError(f"cannot keep the state in {state_path}: {_why(exc)} "
                           "(choose another file with --state)") from None
    dead_letter = _dead_letter(args.dead_letter)
    bar = ProgressBar(total, sys.stderr, enabled=False if args.quiet else None)
    stop = threading.Event()
    limits = target.limits
    replayer = Replayer(
        target, state, describe=lambda answer: describe(answer, target.url),
        batch_size=min(args.batch_size, limits.max_request_count),
        max_request_bytes=limits.max_request_bytes - limits.envelope_bytes,
        rate=args.rate, give_up_after=args.timeout, stop=stop,
        failed=dead_letter.failed if dead_letter else None,
        progress=lambda s: bar.update(
            s.processed, s.delivered, sum(s.failed.values()),
            sum(s.skipped.values()) + s.already,
        ),
    )
    started = time.monotonic()
    try:
        with _stop_on_signals(stop):
            summary = replayer.run(read_entries(path))
    except (OSError, ValueError) as exc:
        raise CommandError(f"cannot read {path}: {_why(exc)}") from None
    finally:
        bar.close()
        state.close()
        target.close()
        if dead_letter:
            dead_letter.close()
    summary.interrupted = stop.is_set()
    return _report(args, kind, summary, state_path, time.monotonic() - started, target.url)


def _report(
    args: argparse.Namespace, kind: str, summary: Any, state_path: str, elapsed: float, url: str
) -> int:
    path = args.path
    failed = sum(summary.failed.values())
    say("replay", f"{path} ({kind}): delivered {summary.delivered} of {summary.messages} "
                  f"messages to {url} in {elapsed:.1f}s")
    if summary.already:
        say("replay", f"skipped {summary.already} delivered by an earlier run "
                      f"(state: {state_path}; --fresh to send them again)")
    if summary.skipped:
        reasons = ", ".join(f"{why}: {n}" for why, n in summary.skipped.most_common())
        say("replay", f"skipped {sum(summary.skipped.values())} lines with no message "
                      f"({reasons})", error=True)
    if failed:
        reasons = "; ".join(f"{why}: {n}" for why, n in summary.failed.most_common())
        where = f", written to {args.dead_letter}" if args.dead_letter else ""
        say("replay", f"{failed} not delivered ({reasons}){where}", error=True)
    if summary.interrupted:
        say("replay", f"interrupted: {summary.left} not sent yet; run the same command "
                      "again to send them (nothing is sent twice)", error=True)
        return 130
    if summary.left:
        say("replay", f"{summary.left} not sent: out of time (--timeout {args.timeout:g}); "
                      "run the same command again to send them", error=True)
    if not summary.messages:
        say("replay", f"{path} holds no message to replay", error=True)
        return 1
    return 1 if failed or summary.left else 0


def _check_numbers(args: argparse.Namespace) -> None:
    if not args.timeout > 0:
        raise CommandError("--timeout must be greater than 0")
    if args.rate is not None and not args.rate > 0:
        raise CommandError("--rate must be greater than 0")
    if args.batch_size < 1:
        raise CommandError("--batch-size must be at least 1")


class _DeadLetter:
    """The new dead letter for what fails again."""

    def __init__(self, path: str) -> None:
        from .delivery.deadletter import DeadLetter

        self.file = DeadLetter(path)

    def failed(self, items: list[bytes], reason: str, answer: Any) -> None:
        from .stats import DropReason

        self.file.write(items, DropReason(reason), answer.error)

    def close(self) -> None:
        self.file.close()


def _dead_letter(path: str | None) -> _DeadLetter | None:
    if path is None:
        return None
    try:
        return _DeadLetter(path)
    except OSError as exc:
        raise CommandError(f"cannot write --dead-letter {path}: {_why(exc)}") from None


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """The first SIGINT/SIGTERM asks the replay to stop after the request in flight.

    Stopping between requests, never inside one, is what makes a resumed replay send
    nothing twice: the batch in flight is answered and recorded first. A second
    signal stops at once.
    """

    notice = ("\n" if sys.stderr.isatty() else "") + (
        f"{PROG} replay: stopping after the request in flight (again to stop at once)\n"
    )

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        # A raw write: the main thread may be inside a buffered write to stderr.
        with contextlib.suppress(OSError):
            os.write(2, notice.encode())

    previous: dict[int, Any] = {}
    for signum in (signal.SIGINT, getattr(signal, "SIGTERM", signal.SIGINT)):
        with contextlib.suppress(ValueError):  # not the main thread
            previous[signum] = signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def _why(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc)
