"""The collector's Amplitude side: ``/2/httpapi``, ``/batch`` and ``/usermap``.

Requests are checked as Amplitude documents it (http-v2.md, batch-event-upload.md and
user-mapping.md in amplitude/amplitude-docs) and answered with its bodies:

- 200 ``{code, events_ingested, payload_size_bytes, server_upload_time}``;
- 400 ``{code, error, missing_field}`` for a bad request or key
  (``"Invalid API key: ..."``, the form the official SDK looks for), or
  ``events_with_invalid_fields`` / ``events_with_missing_fields`` /
  ``events_with_invalid_id_lengths`` (field -> indices) for bad events; nothing of the
  request is recorded then, as nothing is ingested;
- 413 ``{"code": 413, "error": "Payload too large"}`` past 1 MB or 2,000 events
  (``/batch``: 20 MB);
- 429 with ``throttled_users``/``throttled_devices``/``throttled_events``, or
  ``exceeded_daily_quota_users``/``_devices``, for the ids named by the faults.

``/batch`` is also Segment's path: a body with ``api_key`` and ``events`` is Amplitude's.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import parse_qs

from logbridge.collector.amplitude_validate import DEFAULT_MIN_ID_LENGTH, validate_event
from logbridge.collector.batch import _same_key
from logbridge.collector.body import Reject, decode_body
from logbridge.collector.echo import mask_key
from logbridge.collector.faults import FaultInjector, FaultKind

__all__ = [
    "AMPLITUDE_PATHS",
    "OWN_PATHS",
    "Answer",
    "Request",
    "answer",
    "body_limit",
    "debugger_events",
    "echo_lines",
    "error_body",
    "format_amplitude_event",
    "parse",
]

HTTP_PATH: Final = "/2/httpapi"
BATCH_PATH: Final = "/batch"
USERMAP_PATH: Final = "/usermap"
AMPLITUDE_PATHS: Final = frozenset({HTTP_PATH, BATCH_PATH, USERMAP_PATH})
#: The paths only Amplitude uses (``/batch`` is Segment's too).
OWN_PATHS: Final = frozenset({HTTP_PATH, USERMAP_PATH})

#: "Under 1 MB with fewer than 2000 events" (HTTP V2; the User Mapping API alike).
HTTP_MAX_BYTES: Final = 1_000_000
HTTP_MAX_EVENTS: Final = 1_999
#: "Must not exceed 20MB", "2000 events" (Batch Event Upload).
BATCH_MAX_BYTES: Final = 20_000_000
BATCH_MAX_EVENTS: Final = 2_000


def body_limit(path: str, max_body_bytes: int) -> int:
    """The most bytes to read for a request on ``path`` (``/batch`` may be Amplitude's)."""
    if path == BATCH_PATH:
        return max(max_body_bytes, BATCH_MAX_BYTES)
    if path in (HTTP_PATH, USERMAP_PATH):
        return HTTP_MAX_BYTES
    return max_body_bytes


@dataclasses.dataclass(frozen=True)
class Request:
    """An Amplitude request, decoded: its path, its body, or the error that refuses it."""

    path: str
    body: Mapping[str, Any]
    size: int
    error: tuple[int, dict[str, Any]] | None = None


@dataclasses.dataclass(frozen=True)
class Answer:
    """What to answer, and what was ingested."""

    status: int
    payload: dict[str, Any]
    events: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    mappings: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    problems: list[tuple[int, str]] = dataclasses.field(default_factory=list)


def parse(path: str, wire: bytes, encoding: str | None, query: str = "") -> Request | None:
    """The Amplitude request in ``wire``, or None when it is Segment's (``/batch`` only).

    ``/usermap`` takes its fields from the form body or, as its documentation's examples
    send them, from the query string.
    """
    if path not in AMPLITUDE_PATHS:
        return None
    limit = BATCH_MAX_BYTES if path == BATCH_PATH else HTTP_MAX_BYTES
    try:
        raw = decode_body(wire, encoding, limit)
    except Reject as reject:
        status = 413 if reject.status == 413 else 400
        if path == BATCH_PATH and status == 413:
            return None  # too large for either: Segment's rules answer it
        error = "Payload too large" if status == 413 else "Invalid request body"
        return Request(path, {}, len(wire), (status, _error(status, error)))
    if path == USERMAP_PATH:
        return Request(path, {**_form(query.encode()), **_form(raw)}, len(raw))
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        body = None
    if path == BATCH_PATH and not (isinstance(body, dict) and "events" in body):
        return None
    if not isinstance(body, dict):
        return Request(path, {}, len(raw), (400, _error(400, "Invalid JSON request body")))
    return Request(path, body, len(raw))


def answer(request: Request, write_key: str | None, injector: FaultInjector,
           fault: FaultKind | None) -> Answer:
    """Check ``request`` as Amplitude does and say what it answers (faults included)."""
    if request.error is not None:
        return Answer(*request.error)
    body = request.body
    api_key = body.get("api_key")
    if not api_key:
        return Answer(400, _missing("api_key"))
    if write_key is not None and not _same_key(api_key, write_key):
        return Answer(400, _error(400, f"Invalid API key: {mask_key(str(api_key))}"))
    if fault is not None:
        return Answer(*_injected(injector.response_status(fault), body.get("events")))
    if request.path == USERMAP_PATH:
        return _usermap(body)
    return _events(request, injector)


def _events(request: Request, injector: FaultInjector) -> Answer:
    """Validate and ingest the events of an HTTP V2 or Batch request."""
    body = request.body
    events = body.get("events")
    if not isinstance(events, list):
        return Answer(400, _missing("events"))
    batch = request.path == BATCH_PATH
    if request.size > (BATCH_MAX_BYTES if batch else HTTP_MAX_BYTES) or len(events) > (
        BATCH_MAX_EVENTS if batch else HTTP_MAX_EVENTS
    ):
        return Answer(413, _error(413, "Payload too large"))
    options = body.get("options")
    min_length = DEFAULT_MIN_ID_LENGTH
    if isinstance(options, Mapping) and options.get("min_id_length") is not None:
        min_length = options["min_id_length"]
        if isinstance(min_length, bool) or not isinstance(min_length, int) or min_length < 1:
            return Answer(400, {**_error(400, "Invalid field values on some events"),
                                "invalid_field": "options.min_id_length"})
    invalid: dict[str, list[int]] = {}
    missing: dict[str, list[int]] = {}
    short: dict[str, list[int]] = {}
    problems: list[tuple[int, str]] = []
    for index, event in enumerate(events):
        for kind, field, text in validate_event(event, min_length):
            {"invalid": invalid, "missing": missing, "short": short}[kind].setdefault(
                field, []
            ).append(index)
            problems.append((index, text))
    if problems:
        payload = _error(400, "Invalid field values on some events")
        for key, fields in (
            ("events_with_invalid_fields", invalid),
            ("events_with_missing_fields", missing),
            ("events_with_invalid_id_lengths", short),
        ):
            if fields:
                payload[key] = fields
        return Answer(400, payload, problems=problems)
    limited = _limited(events, injector)
    if limited is not None:
        return Answer(429, limited)
    return Answer(200, {
        "code": 200,
        "events_ingested": len(events),
        "payload_size_bytes": request.size,
        "server_upload_time": int(time.time() * 1000),
    }, events=list(events))


def _usermap(body: Mapping[str, Any]) -> Answer:
    """The User Mapping API: ``mapping`` is one object or a list of them."""
    try:
        mapping = json.loads(body.get("mapping") or "")
    except (TypeError, ValueError):
        return Answer(400, _missing("mapping"))
    mappings = mapping if isinstance(mapping, list) else [mapping]
    if len(mappings) > 2_000:
        return Answer(413, _error(413, "Payload too large"))
    for item in mappings:
        if not (
            isinstance(item, Mapping)
            and isinstance(item.get("user_id"), str)
            and (isinstance(item.get("global_user_id"), str) or item.get("unmap") is True)
        ):
            return Answer(400, _error(400, "Invalid mapping: needs user_id and global_user_id"))
    return Answer(200, {"code": 200}, mappings=list(mappings))


def _limited(events: list[Any], injector: FaultInjector) -> dict[str, Any] | None:
    """A 429 body when the faults throttle, or put over quota, a user or device of ``events``."""
    faults = injector.faults
    if not (faults.over_quota_ids or faults.throttle_ids):
        return None
    quota: dict[str, dict[str, int]] = {"users": {}, "devices": {}}
    throttled: dict[str, dict[str, int]] = {"users": {}, "devices": {}}
    over_at: list[int] = []
    throttled_at: list[int] = []
    for index, event in enumerate(events):
        match = _match(event, faults.over_quota_ids)
        if match is not None:
            quota[match[0]][match[1]] = 500_001
            over_at.append(index)
            continue
        match = _match(event, faults.throttle_ids)
        if match is not None:
            throttled[match[0]][match[1]] = 31
            throttled_at.append(index)
    if throttled_at and not injector.take_throttle():
        throttled, throttled_at = {"users": {}, "devices": {}}, []
    if not (over_at or throttled_at):
        return None
    payload = {
        **_error(429, "Too many requests for some devices and users"),
        "eps_threshold": 30,
        "throttled_users": throttled["users"],
        "throttled_devices": throttled["devices"],
        # The SDK reads quota from the throttled events too.
        "throttled_events": sorted(over_at + throttled_at),
    }
    if over_at:
        payload["exceeded_daily_quota_users"] = quota["users"]
        payload["exceeded_daily_quota_devices"] = quota["devices"]
    return payload


def _match(event: Mapping[str, Any], ids: frozenset[str]) -> tuple[str, str] | None:
    """Whether ``event``'s user (first) or device is in ``ids``: ``("users", id)`` or so."""
    if not ids:
        return None
    user, device = event.get("user_id"), event.get("device_id")
    if isinstance(user, str) and user in ids:
        return "users", user
    if isinstance(device, str) and device in ids:
        return "devices", device
    return None


def _injected(status: int, events: Any) -> tuple[int, dict[str, Any]]:
    """Amplitude's body for an injected fault with ``status``."""
    if status == 413:
        return status, _error(413, "Payload too large")
    if status == 429:
        count = len(events) if isinstance(events, list) else 0
        return status, {
            **_error(429, "Too many requests for some devices and users"),
            "eps_threshold": 30,
            "throttled_events": list(range(count)),
        }
    return status, _error(status, "injected fault")


def debugger_events(
    request: Request, answer: Answer
) -> tuple[list[Any], list[tuple[Any, list[str]]]]:
    """What the debugger shows of a request: the events ingested, or the ones refused.

    A 400 ingests nothing: its bad events are shown with their problems, the others not.
    """
    if answer.events or not answer.problems:
        return answer.events, []
    events = request.body.get("events")
    if not isinstance(events, list):
        return [], []
    problems: dict[int, list[str]] = {}
    for index, text in answer.problems:
        problems.setdefault(index, []).append(text)
    shown = [events[index] for index in problems]
    return shown, [(events[index], texts) for index, texts in problems.items()]


def echo_lines(answer: Answer) -> list[str]:
    """One readable line per ingested event or mapping, and per problem found."""
    lines = [format_amplitude_event(event) for event in answer.events]
    lines.extend(
        f"usermap   user={_clean(m.get('user_id'))}  -> {_clean(m.get('global_user_id'))}"
        for m in answer.mappings
    )
    lines.extend(f"! invalid amplitude event #{index}: {text}" for index, text in answer.problems)
    return lines


def format_amplitude_event(event: Mapping[str, Any]) -> str:
    """A short line describing an Amplitude event: type, who, and its properties' keys."""
    who = (
        f"user={_clean(event.get('user_id'))}"
        if event.get("user_id") is not None
        else f"device={_clean(event.get('device_id'))}"
    )
    parts = [f"amplitude  {_clean(event.get('event_type'))}", who]
    for field in ("event_properties", "user_properties", "group_properties", "groups"):
        value = event.get(field)
        if isinstance(value, Mapping) and value:
            parts.append(f"{field}={{{', '.join(_clean(k) for k in list(value)[:4])}}}")
    return "  ".join(parts)


def _clean(value: Any, limit: int = 40) -> str:
    text = "?" if value is None else str(value)
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _form(raw: bytes) -> dict[str, Any]:
    """A form-encoded body's fields (the first value of each)."""
    fields = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
    return {key: values[0] for key, values in fields.items()}


def error_body(status: int, error: str) -> dict[str, Any]:
    """Amplitude's error body: ``{"code": status, "error": ...}``."""
    return _error(status, "Payload too large" if status == 413 else error)


def _error(status: int, error: str) -> dict[str, Any]:
    return {"code": status, "error": error}


def _missing(field: str) -> dict[str, Any]:
    return {**_error(400, "Request missing required field"), "missing_field": field}
