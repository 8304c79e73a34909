"""Amplitude through dictConfig: the project's API key, the region and the API.

    AMPLITUDE_API_KEY=... python examples/destination_amplitude.py [--endpoint URL]
        [--region eu] [--api batch]

The same logging calls become Amplitude events (``docs/amplitude.md`` has the mapping):
the HTTP V2 API by default (under 1 MB and fewer than 2,000 events a request), the
Batch Event Upload API with ``--api batch`` (20 MB, 2,000 events). Aliases go to
Amplitude's User Mapping API (``amplitude_usermap``).
"""

from __future__ import annotations

import os
import sys

from _destinations import command_line, handler_config, logging_config, run


def main() -> int:
    """Send the example events to Amplitude (US, or EU with ``--region eu``)."""
    args = command_line(__doc__ or "", region="us (default) or eu", api="http (default) or batch")
    config = logging_config({
        "analytics": handler_config(
            "amplitude-eu" if args.region == "eu" else "amplitude",
            write_key=os.environ.get("AMPLITUDE_API_KEY"),
            endpoint=args.endpoint,  # leave out to send to Amplitude itself
            amplitude_api=args.api or "http",
            amplitude_usermap=True,  # an alias maps the previous id onto the user id
            amplitude_group_type="company",  # a group call's type when it names none
        ),
    })
    return run(config)


if __name__ == "__main__":
    sys.exit(main())
