"""Segment's batch API, and the services that speak it: RudderStack and Dreamdata.

Each preset's URL and limits live here, with their sources:

- Segment: 32 KB a message, 500 KB a request, 2,500 messages a request (more are
  answered 200 and dropped); https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/
  (US) and https://segment.com/docs/guides/regional-segment/ (EU).
- RudderStack: ``<data plane>/v1/batch``; 4,000 KB a request, its gateway's
  ``Gateway.maxReqSizeInKB`` default (rudder-server ``config/config.yaml``).
- Dreamdata: https://api.dreamdata.cloud/v1/batch, 500 KB a request
  (docs.dreamdata.io, server-side analytics APIs).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

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
    """Posts ``{"batch": [...], "sentAt": ...}`` to a Segment-compatible batch endpoint."""

    wire_format = "segment"

    def __init__(
        self,
        url: str,
        settings: HttpSettings,
        auth: Auth | None = None,
        *,
        name: str = "segment",
        limits: Limits = SEGMENT_LIMITS,
    ) -> None:
        super().__init__(url, settings, auth)
        self.name = name
        self.limits = limits

    def body(self, items: Sequence[bytes]) -> bytes:
        return encode_body(items, format_timestamp(time.time()))


def encode_body(items: Sequence[bytes], sent_at: str) -> bytes:
    """The request body ``{"batch": [...], "sentAt": ...}`` from serialised messages."""
    return b"".join(
        (b'{"batch":[', b",".join(items), b'],"sentAt":"', sent_at.encode("ascii"), b'"}')
    )


def segment_auth(options: Options) -> Auth | None:
    """OAuth 2 when a client id is configured, else Basic auth with the write key."""
    if options.oauth_client_id:
        from .oauth import OAuth

        return OAuth.from_options(options)
    return BasicAuth(options.write_key) if options.write_key else None


def _preset(name: str, url: str, limits: Limits) -> Preset:
    def build(options: Options, effective_url: str | None) -> Destination:
        return SegmentDestination(
            effective_url or url, http_settings(options), segment_auth(options),
            name=name, limits=limits,
        )

    return Preset(url, build)


PRESETS = {
    "segment": _preset("segment", SEGMENT_URL, SEGMENT_LIMITS),
    "segment-eu": _preset("segment-eu", SEGMENT_EU_URL, SEGMENT_LIMITS),
    "dreamdata": _preset("dreamdata", DREAMDATA_URL, DREAMDATA_LIMITS),
    "rudderstack": _preset("rudderstack", RUDDERSTACK_URL, RUDDERSTACK_LIMITS),
}
