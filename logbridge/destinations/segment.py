"""Segment's batch API, and the services that speak it: RudderStack and Dreamdata.

Each preset's URL and limits live here, with their sources:

- Segment: 32 KB a message and 500 KB a request ("Max request size"), at most 2,500
  messages a request (more are answered 200 and dropped: "Errors", segment-docs #7023);
  https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/ (US)
  and https://segment.com/docs/guides/regional-segment/ (EU).
- RudderStack: ``<data plane>/v1/batch``; 4,000 KB a request, its gateway's
  ``Gateway.maxReqSizeInKB: 4000`` default (rudder-server ``config/config.yaml``), read as
  ``* 1024`` bytes by the gateway. The 32 KB and 2,500-message caps are Segment's, kept
  as a safe bound: RudderStack documents none lower.
- Dreamdata: https://api.dreamdata.cloud/v1/batch, "batch events of up to 500kb worth of
  data (the total size of the body of the request)"
  (https://docs.dreamdata.io/article/tvjra874l2-server-side-analytics-apis); no message
  or count limit is documented, so Segment's are kept.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import ConfigurationError
from ..message import format_timestamp
from .base import Destination, Limits
from .http import Auth, BasicAuth, HttpDestination, HttpSettings, http_settings
from .registry import Preset

if TYPE_CHECKING:
    from ..options import Options

__all__ = [
    "DREAMDATA_LIMITS",
    "RUDDERSTACK_LIMITS",
    "SEGMENT_LIMITS",
    "SegmentDestination",
    "encode_body",
]

#: The envelope around the messages: ``{"batch":[...],"sentAt":"..."}``.
ENVELOPE_BYTES = len(b'{"batch":[],"sentAt":"2026-11-22T06:30:00.123Z"}')

SEGMENT_LIMITS = Limits(
    max_message_bytes=32 * 1024, max_request_bytes=500_000, max_request_count=2_500,
    envelope_bytes=ENVELOPE_BYTES,
)
DREAMDATA_LIMITS = SEGMENT_LIMITS
RUDDERSTACK_LIMITS = Limits(
    max_message_bytes=32 * 1024, max_request_bytes=4_000 * 1024, max_request_count=2_500,
    envelope_bytes=ENVELOPE_BYTES,
)

SEGMENT_URL = "https://api.segment.io/v1/batch"
SEGMENT_EU_URL = "https://events.eu1.segmentapis.com/v1/batch"
DREAMDATA_URL = "https://api.dreamdata.cloud/v1/batch"
#: Filled with the validated ``data_plane_url``.
RUDDERSTACK_URL = "{data_plane_url}/v1/batch"


class SegmentDestination(HttpDestination):
    """Posts ``{"batch": [...], "sentAt": ...}`` to a Segment-compatible batch endpoint.

    With ``write_key`` the body also carries ``"writeKey"``: under OAuth the bearer token
    names the app and the write key still names the source ("Include the access token in
    the Authorization header as a Bearer token along with your project's write key in the
    payload", Segment's HTTP API docs; analytics-python does the same).
    """

    wire_format = "segment"
    concurrent_sends = True  # nothing of a request is kept between send() and read()

    def __init__(
        self,
        url: str,
        settings: HttpSettings,
        auth: Auth | None = None,
        *,
        name: str = "segment",
        limits: Limits = SEGMENT_LIMITS,
        write_key: str | None = None,
    ) -> None:
        super().__init__(url, settings, auth)
        self.name = name
        self._key_field = b"" if write_key is None else b',"writeKey":' + json.dumps(
            write_key
        ).encode("utf-8")
        self.limits = dataclasses.replace(
            limits, envelope_bytes=limits.envelope_bytes + len(self._key_field)
        )

    def body(self, items: Sequence[bytes]) -> bytes:
        return encode_body(items, format_timestamp(time.time()), self._key_field)


def encode_body(items: Sequence[bytes], sent_at: str, key_field: bytes = b"") -> bytes:
    """The request body ``{"batch": [...], "sentAt": ...}`` from serialised messages.

    ``key_field`` (``,"writeKey":"..."``) is added inside the object when given.
    """
    return b"".join(
        (b'{"batch":[', b",".join(items), b'],"sentAt":"', sent_at.encode("ascii"), b'"',
         key_field, b"}")
    )


def segment_auth(options: Options) -> Auth | None:
    """OAuth 2 when any ``oauth_*`` option is set, else Basic auth with the write key.

    ``OAuth.from_options`` checks the OAuth options as a whole (a key id without a client
    id is a mistake too) and the key, at start-up.
    """
    from .oauth import OAuth

    oauth = OAuth.from_options(options)
    if oauth is not None:
        return oauth
    return BasicAuth(options.write_key) if options.write_key else None


def _preset(name: str, url: str, limits: Limits, *, oauth: bool = True) -> Preset:
    def build(options: Options, effective_url: str | None) -> Destination:
        auth = segment_auth(options)
        if not oauth and auth is not None and not isinstance(auth, BasicAuth):
            raise ConfigurationError(
                f"destination {name!r} takes a write key, not OAuth: drop the oauth_* options"
            )
        # Basic auth carries the write key; a bearer token does not, so the body does.
        key_in_body = None if isinstance(auth, BasicAuth) else options.write_key
        return SegmentDestination(
            effective_url or url, http_settings(options), auth,
            name=name, limits=limits, write_key=key_in_body,
        )

    return Preset(url, build)


PRESETS = {
    "segment": _preset("segment", SEGMENT_URL, SEGMENT_LIMITS),
    "segment-eu": _preset("segment-eu", SEGMENT_EU_URL, SEGMENT_LIMITS),
    "dreamdata": _preset("dreamdata", DREAMDATA_URL, DREAMDATA_LIMITS),
    "rudderstack": _preset("rudderstack", RUDDERSTACK_URL, RUDDERSTACK_LIMITS, oauth=False),
}
