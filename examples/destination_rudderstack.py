"""RudderStack through dictConfig: its write key, and your data plane's URL.

    RUDDERSTACK_WRITE_KEY=... RUDDERSTACK_DATA_PLANE_URL=https://you.dataplane.rudderstack.com \
        python examples/destination_rudderstack.py [--endpoint URL]

The data plane URL is required (the batch API is ``<data plane>/v1/batch``); ``--endpoint``
replaces the whole URL, for a local collector.
"""

from __future__ import annotations

import os
import sys

from _destinations import command_line, handler_config, logging_config, run


def main() -> int:
    """Send the example events to a RudderStack data plane."""
    args = command_line(__doc__ or "")
    config = logging_config({
        "analytics": handler_config(
            "rudderstack",
            write_key=os.environ.get("RUDDERSTACK_WRITE_KEY"),
            data_plane_url=os.environ.get("RUDDERSTACK_DATA_PLANE_URL"),
            endpoint=args.endpoint,
        ),
    })
    return run(config)


if __name__ == "__main__":
    sys.exit(main())
