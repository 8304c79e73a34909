"""No network at all: events on the console and in a JSON-lines file, for development.

    python examples/destination_local.py --jsonl-path events.jsonl

Two handlers on the same logger: ``console`` prints a readable line per event on stderr,
``jsonl`` appends each event to the file as a JSON line. Both batch, retry and count as
the network destinations do.
"""

from __future__ import annotations

import sys

from _destinations import command_line, handler_config, logging_config, run


def main() -> int:
    """Send the example events to the console and to a file."""
    args = command_line(__doc__ or "", jsonl_path="the file to append to (default events.jsonl)")
    config = logging_config({
        "console": handler_config("console"),
        "archive": handler_config("jsonl", jsonl_path=args.jsonl_path or "events.jsonl"),
    })
    return run(config)


if __name__ == "__main__":
    sys.exit(main())
