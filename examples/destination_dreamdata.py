"""Dreamdata through dictConfig: the source API key of its Server Side Analytics source.

    DREAMDATA_API_KEY=... python examples/destination_dreamdata.py [--endpoint URL]

Dreamdata speaks Segment's batch API (https://api.dreamdata.cloud/v1/batch, 500 KB a
request); logbridge keeps its batches under that.
"""

from __future__ import annotations

import os
import sys

from _destinations import command_line, handler_config, logging_config, run


def main() -> int:
    """Send the example events to Dreamdata."""
    args = command_line(__doc__ or "")
    config = logging_config({
        "analytics": handler_config(
            "dreamdata",
            write_key=os.environ.get("DREAMDATA_API_KEY"),
            endpoint=args.endpoint,
        ),
    })
    return run(config)


if __name__ == "__main__":
    sys.exit(main())
