"""Amplitude: the HTTP V2 API, the Batch Event Upload API and the User Mapping API.

What this module relies on, and where each fact comes from:

- HTTP V2 API, https://amplitude.com/docs/apis/analytics/http-v2 (amplitude-docs
  ``content/collections/api/en/http-v2.md``): ``https://api2.amplitude.com/2/httpapi``,
  EU ``https://api.eu.amplitude.com/2/httpapi``; body ``{api_key, events, options}`` as
  ``application/json``; requests "under 1 MB with fewer than 2000 events" (else 413);
  strings cut at 1,024 characters; ``time`` in ms; ids of 5 characters or more unless
  ``options.min_id_length``; the responses read by :meth:`AmplitudeDestination.read`
  (400 ``missing_field`` / ``events_with_invalid_fields`` / ``events_with_missing_fields``
  / silenced devices, 413, 429 ``throttled_users``/``throttled_devices``/``throttled_events``:
  "pause sending events for that user or device for a period of 30 seconds", 500/502/504
  "may not have been accepted" so retried with the same ``insert_id``, 503 safe to retry).
- Batch Event Upload API, https://amplitude.com/docs/apis/analytics/batch-event-upload
  (``batch-event-upload.md``): ``https://api2.amplitude.com/batch``, EU
  ``https://api.eu.amplitude.com/batch``; "must not exceed 20MB", "2000 events" a batch;
  429 with ``exceeded_daily_quota_users``/``_devices`` past 500,000 events a day.
- User Mapping API, https://amplitude.com/docs/apis/analytics/user-mapping
  (``user-mapping.md``): ``https://api.amplitude.com/usermap``, form fields ``api_key`` and
  ``mapping`` (a JSON list of ``{user_id, global_user_id}``), 2,000 mappings and 1 MB a
  request; EU ``https://api.eu.amplitude.com/usermap`` from Segment's Amplitude destination
  (``regional-endpoints.ts``), which sends the same form.
- Amplitude's ingestion takes gzip bodies: its Swift and Kotlin SDKs gzip every upload
  (amplitude/Amplitude-Swift#364, amplitude/Amplitude-Kotlin#348).

The event mapping is :mod:`logbridge.destinations.amplitude_events`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlencode, urlsplit, urlunsplit

from ..errors import ConfigurationError
from .amplitude_answers import THROTTLE_PAUSE, read_bad_request, read_throttled
from .amplitude_events import USERMAP_KEY, map_message
from .base import Limits, Outcome
from .http import HttpDestination, HttpSettings, http_settings, outcome_for_status
from .registry import Preset

if TYPE_CHECKING:
    from ..options import Options

__all__ = [
    "BATCH_LIMITS",
    "HTTP_LIMITS",
    "PRESETS",
    "AmplitudeDestination",
    "build",
]

HTTP_URL: Final = "https://api2.amplitude.com/2/httpapi"
HTTP_EU_URL: Final = "https://api.eu.amplitude.com/2/httpapi"
BATCH_URL: Final = "https://api2.amplitude.com/batch"
BATCH_EU_URL: Final = "https://api.eu.amplitude.com/batch"
USERMAP_URL: Final = "https://api.amplitude.com/usermap"
USERMAP_EU_URL: Final = "https://api.eu.amplitude.com/usermap"
_BATCH_URLS: Final = {HTTP_URL: BATCH_URL, HTTP_EU_URL: BATCH_EU_URL}
_USERMAP_URLS: Final = {
    HTTP_URL: USERMAP_URL, BATCH_URL: USERMAP_URL,
    HTTP_EU_URL: USERMAP_EU_URL, BATCH_EU_URL: USERMAP_EU_URL,
}

#: "Under 1 MB with fewer than 2000 events" (HTTP V2). No per-event limit is documented:
#: an event may fill a request.
HTTP_LIMITS: Final = Limits(
    max_message_bytes=1_000_000, max_request_bytes=1_000_000, max_request_count=1_999
)
#: "Must not exceed 20MB", "The limit per batch is 2000 events" (Batch Event Upload).
BATCH_LIMITS: Final = Limits(
    max_message_bytes=20_000_000, max_request_bytes=20_000_000, max_request_count=2_000
)


class AmplitudeDestination(HttpDestination):
    """Posts ``{"api_key", "events", "options"}`` to Amplitude; aliases to its User Mapping API.

    The API key travels in the body only: it is in no header, log, repr or error.
    """

    wire_format = "amplitude"

    def __init__(
        self,
        url: str,
        settings: HttpSettings,
        api_key: str,
        *,
        batch_api: bool = False,
        group_type: str = "company",
        min_id_length: int | None = None,
        usermap_url: str | None = None,
        name: str = "amplitude",
        throttle_pause: float = THROTTLE_PAUSE,
    ) -> None:
        super().__init__(url, settings)
        self.name = name
        self._api_key = api_key
        self.group_type = group_type
        self.min_id_length = min_id_length
        self.throttle_pause = throttle_pause
        options = b"" if min_id_length is None else (
            b',"options":{"min_id_length":%d}' % min_id_length
        )
        self._head = b'{"api_key":' + json.dumps(api_key).encode() + b',"events":['
        self._tail = b"]" + options + b"}"
        limits = BATCH_LIMITS if batch_api else HTTP_LIMITS
        envelope = len(self._head) + len(self._tail)
        self.limits = dataclasses.replace(
            limits,
            max_message_bytes=limits.max_request_bytes - envelope,
            envelope_bytes=envelope,
        )
        self._usermap: _UserMapping | None = None
        if usermap_url is not None:
            self._usermap = _UserMapping(usermap_url, self, api_key)
        self._in_flight: Sequence[bytes] = ()

    def __repr__(self) -> str:
        return f"AmplitudeDestination(url={self.url!r}, gzip={self.settings.gzip})"

    # The events ----------------------------------------------------------------------

    def map_message(self, message: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
        return map_message(
            message,
            group_type=self.group_type,
            min_id_length=self.min_id_length,
            usermap=self._usermap is not None,
        )

    def body(self, items: Sequence[bytes]) -> bytes:
        return b"".join((self._head, b",".join(items), self._tail))

    def send(self, items: Sequence[bytes], *, timeout: float) -> Outcome:
        """POST the events, and the User Mappings (aliases) among them to ``/usermap``."""
        mapping_at = [i for i, item in enumerate(items) if item.startswith(_USERMAP_PREFIX)]
        if not mapping_at or self._usermap is None:
            return self._send_events(items, timeout)
        mapped_set = set(mapping_at)
        event_at = [i for i in range(len(items)) if i not in mapped_set]
        mapped = self._usermap.send([items[i] for i in mapping_at], timeout=timeout)
        if not event_at:
            return mapped
        events = self._send_events([items[i] for i in event_at], timeout)
        return _merge(events, event_at, mapped, mapping_at)

    def _send_events(self, items: Sequence[bytes], timeout: float) -> Outcome:
        # read() needs the events' ids to tell whose events were throttled; a destination
        # sends from one thread only.
        self._in_flight = items
        try:
            return super().send(items, timeout=timeout)
        finally:
            self._in_flight = ()

    # The answers ---------------------------------------------------------------------

    def read(self, status: int, headers: Mapping[str, str], text: str, count: int) -> Outcome:
        """Amplitude's documented answers, event by event."""
        if self._api_key and self._api_key in text:  # an answer quoting the key: not in errors
            text = text.replace(self._api_key, "***")
        if status not in (400, 429):
            return outcome_for_status(status, headers, text)
        try:
            answer = json.loads(text)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            return outcome_for_status(status, headers, text)
        if status == 400:
            return read_bad_request(answer, count, self._in_flight)
        throttled = read_throttled(answer, count, self._in_flight, self.throttle_pause)
        return throttled or outcome_for_status(status, headers, text)

    # Lifecycle -----------------------------------------------------------------------

    def warm_up(self) -> None:
        super().warm_up()
        if self._usermap is not None:
            self._usermap.warm_up()

    def reset_after_fork(self) -> None:
        super().reset_after_fork()
        if self._usermap is not None:
            self._usermap.reset_after_fork()

    def close(self) -> None:
        super().close()
        if self._usermap is not None:
            self._usermap.close()


_USERMAP_PREFIX: Final = b'{"' + USERMAP_KEY.encode() + b'"'


class _UserMapping(HttpDestination):
    """The User Mapping API: ``api_key`` and ``mapping`` as a form."""

    name = "amplitude-usermap"
    content_type = "application/x-www-form-urlencoded"

    def __init__(self, url: str, events: AmplitudeDestination, api_key: str) -> None:
        # Not gzipped: the API is documented with form fields only. A session of its own
        # (unless the user gave one): its host is not the events' host.
        super().__init__(url, dataclasses.replace(events.settings, gzip=False))
        self._api_key = api_key
        self._options = (
            None if events.min_id_length is None
            else json.dumps({"min_id_length": events.min_id_length})
        )

    def __repr__(self) -> str:
        return f"_UserMapping(url={self.url!r})"

    def body(self, items: Sequence[bytes]) -> bytes:
        mappings = [json.loads(item)[USERMAP_KEY] for item in items]
        fields = {"api_key": self._api_key, "mapping": json.dumps(mappings)}
        if self._options is not None:
            fields["options"] = self._options
        return urlencode(fields).encode("ascii")


def _merge(events: Outcome, event_at: list[int], mapped: Outcome, mapping_at: list[int]) -> Outcome:
    """One outcome for items sent as two requests (events, then User Mappings).

    A mapping refused for good is refused alone, whatever the events gave; when either
    request is to be retried, both are (Amplitude drops a resent event by its insert_id
    and a mapping is idempotent).
    """
    refused = {event_at[i]: reason for i, reason in events.refused.items()}
    deferred = {event_at[i]: pause for i, pause in events.deferred.items()}
    refused.update({mapping_at[i]: reason for i, reason in mapped.refused.items()})
    deferred.update({mapping_at[i]: pause for i, pause in mapped.deferred.items()})
    error = events.error
    if mapped.error is not None:
        if mapped.error.retryable or mapped.error.status == 413:
            error = error if error is not None and not error.retryable else mapped.error
        else:
            for index in mapping_at:
                refused.setdefault(index, f"User Mapping API: {mapped.error}")
    return Outcome(
        error,
        refused=refused,
        deferred=deferred,
        retry_after=events.retry_after or mapped.retry_after,
        unavailable=events.unavailable and (mapped.error is None or mapped.unavailable),
        wire_bytes=events.wire_bytes + mapped.wire_bytes,
    )


# The presets ---------------------------------------------------------------------------


def build(options: Options, url: str | None) -> AmplitudeDestination:
    """An :class:`AmplitudeDestination` from the validated options and the effective URL.

    ``amplitude_api="batch"`` turns a preset's HTTP V2 URL into its Batch API URL, and
    an ``endpoint`` ending in ``/2/httpapi`` (as one given without a path is completed)
    into the same base with ``/batch``.
    """
    api_key = options.write_key
    if not api_key:
        raise ConfigurationError(
            "write_key is required for destination 'amplitude': it is the Amplitude API key"
        )
    batch = options.amplitude_api == "batch"
    target = url or HTTP_URL
    if batch:
        target = _BATCH_URLS.get(target) or _with_suffix(target, "/2/httpapi", "/batch")
    return AmplitudeDestination(
        target,
        http_settings(options),
        api_key,
        batch_api=batch,
        group_type=options.amplitude_group_type,
        min_id_length=options.min_id_length,
        usermap_url=usermap_url_for(target) if options.amplitude_usermap else None,
    )


def usermap_url_for(url: str) -> str:
    """The User Mapping URL beside an events URL: Amplitude's own, or ``/usermap`` there."""
    known = _USERMAP_URLS.get(url)
    if known is not None:
        return known
    for suffix in ("/2/httpapi", "/batch"):
        if urlsplit(url).path.rstrip("/").endswith(suffix):
            return _with_suffix(url, suffix, "/usermap")
    return _with_suffix(url, "", "/usermap")


def _with_suffix(url: str, old: str, new: str) -> str:
    """``url`` with its path's ending ``old`` replaced by ``new`` (unchanged without it)."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if not path.endswith(old):
        return url
    path = path[: len(path) - len(old)] + new
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


PRESETS = {
    "amplitude": Preset(HTTP_URL, build, default_path="/2/httpapi"),
    "amplitude-eu": Preset(HTTP_EU_URL, build, default_path="/2/httpapi"),
}
