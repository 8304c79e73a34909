"""OAuth 2 instead of a write key, for Segment or Dreamdata (``pip install 'logbridge[oauth]'``).

    WRITE_KEY=... OAUTH_CLIENT_ID=... OAUTH_KEY_ID=... OAUTH_CLIENT_KEY=private.pem \
        python examples/destination_oauth.py [--destination dreamdata] \
        [--endpoint URL --auth-server URL]

The private key signs a short-lived assertion; the authorisation server answers with a
bearer token, refreshed at half its lifetime. The write key still names the source: it
travels in the request body. Against a local collector::

    logbridge collect --oauth-public-key public.pem
    python examples/destination_oauth.py --endpoint http://127.0.0.1:8765 \
        --auth-server http://127.0.0.1:8765
"""

from __future__ import annotations

import os
import sys

from _destinations import command_line, handler_config, logging_config, run


def main() -> int:
    """Send the example events with an OAuth bearer token."""
    args = command_line(
        __doc__ or "",
        destination="segment (default), segment-eu or dreamdata",
        auth_server="the token server (default: Segment's US one, https://oauth2.segment.io)",
    )
    config = logging_config({
        "analytics": handler_config(
            args.destination or "segment",
            write_key=os.environ.get("WRITE_KEY"),  # the source's; sent in the body
            oauth_client_id=os.environ.get("OAUTH_CLIENT_ID"),
            oauth_client_key=os.environ.get("OAUTH_CLIENT_KEY"),  # a PEM text or a path
            oauth_key_id=os.environ.get("OAUTH_KEY_ID"),
            oauth_auth_server=args.auth_server,  # EU: https://oauth2.eu1.segmentapis.com
            endpoint=args.endpoint,
        ),
    })
    return run(config)


if __name__ == "__main__":
    sys.exit(main())
