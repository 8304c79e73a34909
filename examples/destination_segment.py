"""Segment through dictConfig: the write key, and the region (``segment`` or ``segment-eu``).

    SEGMENT_WRITE_KEY=... python examples/destination_segment.py [--endpoint URL] [--region eu]
"""

from __future__ import annotations

import os
import sys

from _destinations import command_line, handler_config, logging_config, run


def main() -> int:
    """Send the example events to Segment (US, or EU with ``--region eu``)."""
    args = command_line(__doc__ or "", region="us (default) or eu")
    destination = "segment-eu" if args.region == "eu" else "segment"
    config = logging_config({
        "analytics": handler_config(
            destination,
            write_key=os.environ.get("SEGMENT_WRITE_KEY"),
            endpoint=args.endpoint,  # leave out to send to Segment itself
        ),
    })
    return run(config)


if __name__ == "__main__":
    sys.exit(main())
