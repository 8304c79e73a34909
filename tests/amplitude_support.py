"""What the Amplitude tests share: spec messages built as logbridge builds them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from logbridge.encoding import Encoder
from logbridge.message import build_message

KEY = "amp-secret-key-42"
STAMP = "2026-11-22T06:30:00.123Z"
STAMP_MS = 1_795_329_000_123


def message(kind: str, **fields: Any) -> dict[str, Any]:
    """A spec message of ``kind`` built by logbridge from logging ``extra`` fields."""
    fields.setdefault("user_id", "user-123")
    fields.setdefault("timestamp", STAMP)
    fields.setdefault("message_id", "msg-0001")
    event = fields.pop("event", "Signed Up") if kind == "track" else None
    built, _ = build_message(kind, fields, event=event)
    return built


def encode(events: Sequence[Mapping[str, Any]]) -> list[bytes]:
    """Events serialised as the pipeline does."""
    encoder = Encoder()
    return [encoder.encode(event) for event in events]
