"""The JSON shapes of the debugger API: events, and the requests they came in (redacted).

Secrets never leave the collector: the ``Authorization`` header is masked when the request
is recorded, and here any key-like header, the ``writeKey`` (or Amplitude ``api_key``) of a
body and every occurrence of the presented key are replaced by ``***``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import zlib
from collections.abc import Iterable, Mapping
from typing import Any, Final

from logbridge.collector.events import Event, KeptRequest, event_name, event_type, event_user
from logbridge.collector.problems import explain

__all__ = ["REDACTED", "dumps", "event_json", "request_json"]

REDACTED: Final = "***"
#: Body fields that carry a key: Segment's and Amplitude's.
_SECRET_FIELDS: Final = ("writeKey", "api_key")
#: Header names that carry a secret, by a part of the lower-cased name.
_SECRET_HEADER_PARTS: Final = ("authorization", "key", "token", "secret", "cookie")
#: Secrets shorter than this are replaced only where they are a whole JSON string.
_MIN_BARE_SECRET: Final = 8


def dumps(value: object) -> str:
    """Compact JSON that browsers can parse: NaN and infinities become strings."""
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:
        return json.dumps(_finite(value), ensure_ascii=False, separators=(",", ":"))


def _finite(value: object) -> object:
    """``value`` with every non-finite float replaced by its name (``"NaN"``, ``"Infinity"``)."""
    if isinstance(value, float) and not math.isfinite(value):
        return json.dumps(value)
    if isinstance(value, Mapping):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def _iso(seconds: float) -> str:
    """``seconds`` since the epoch as ISO-8601 UTC with milliseconds."""
    moment = dt.datetime.fromtimestamp(seconds, dt.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_json(event: Event) -> dict[str, Any]:
    """One event for the API: what the row shows, its problems, and the message itself."""
    msg = event.message
    timestamp = msg.get("timestamp", msg.get("time")) if isinstance(msg, Mapping) else None
    if isinstance(timestamp, (int, float)) and not isinstance(timestamp, bool):
        with contextlib.suppress(OverflowError, OSError, ValueError):
            timestamp = _iso(timestamp / 1000)  # Amplitude's time: milliseconds since the epoch
    users = event_user(event)
    return {
        "id": event.id,
        "received_at": _iso(event.received_at),
        "request_id": event.request_id,
        "format": event.format,
        "type": event_type(event),
        "name": event_name(event),
        "user": users[0] if users else None,
        "timestamp": timestamp,
        "valid": event.valid,
        "problems": [explain(problem).as_json() for problem in event.problems],
        "message": msg,
    }


def request_json(request: KeptRequest, secrets: Iterable[str | None]) -> dict[str, Any]:
    """One kept request: method, path, status, headers and the body as sent, all redacted."""
    record = request.record
    known = [secret for secret in (record.auth_user, *secrets) if secret]
    headers = {
        name: REDACTED if _is_secret_header(name) and name.lower() != "authorization"
        else _redact_text(value, known)
        for name, value in record.headers.items()
    }
    body, note = _body_text(request.wire, record.content_encoding, known)
    return {
        "id": request.id,
        "received_at": _iso(request.received_at),
        "method": record.method,
        "path": record.path,
        "status": record.status,
        "content_encoding": record.content_encoding,
        "body_bytes": record.body_bytes,
        "message_count": record.message_count,
        "events": [request.first_event, request.last_event],
        "headers": headers,
        "body": body,
        "body_note": note,
    }


def _is_secret_header(name: str) -> bool:
    """Whether a header of this name may carry a secret."""
    lowered = name.lower()
    return any(part in lowered for part in _SECRET_HEADER_PARTS)


def _body_text(wire: bytes, encoding: str | None, secrets: list[str]) -> tuple[str, str | None]:
    """The body as text (gunzipped), with secrets redacted; and a note on what was changed."""
    raw = wire
    note: str | None = None
    if (encoding or "").strip().lower() in ("gzip", "x-gzip"):
        try:
            raw = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(wire)
            note = f"gzip, {len(wire)} bytes on the wire, shown decompressed"
        except zlib.error:
            return "", "the gzip body could not be decompressed again"
    text = raw.decode("utf-8", "replace")
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict) and any(field in body for field in _SECRET_FIELDS):
        for field in _SECRET_FIELDS:
            if field in body:
                body[field] = REDACTED
        text = json.dumps(body, ensure_ascii=False, indent=2)
        note = "re-serialised to redact the key in the body" + (f"; {note}" if note else "")
    return _redact_text(text, secrets), note


def _redact_text(text: str, secrets: list[str]) -> str:
    """``text`` with each secret replaced (only as a whole JSON string when it is short)."""
    for secret in secrets:
        quoted = json.dumps(secret, ensure_ascii=False)
        text = text.replace(quoted, json.dumps(REDACTED))
        if len(secret) >= _MIN_BARE_SECRET:
            text = text.replace(secret, REDACTED)
    return text
