"""Amplitude's answers to an events request, event by event: pure functions.

From the Response sections of https://amplitude.com/docs/apis/analytics/http-v2 and
https://amplitude.com/docs/apis/analytics/batch-event-upload, and what the official SDK
does with them (``amplitude-analytics``, ``processor.py``): a bad key or ``missing_field``
fails the request; ``events_with_invalid_fields``, ``events_with_missing_fields``,
``events_with_invalid_id_lengths`` and ``silenced_events`` name the events to drop, the
rest are resent; ``throttled_events`` (or the events of ``throttled_users`` and
``throttled_devices``) wait 30 s, "pause sending events for that user or device for a
period of 30 seconds"; the events of ``exceeded_daily_quota_users``/``_devices`` are dropped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from ..errors import DeliveryError
from .base import Outcome

__all__ = ["THROTTLE_PAUSE", "read_bad_request", "read_throttled"]

#: How long Amplitude asks to pause a throttled user or device.
THROTTLE_PAUSE: Final = 30.0


def read_bad_request(answer: Mapping[str, Any], count: int, items: Sequence[bytes]) -> Outcome:
    """A 400: a bad key or request fails the batch; bad events are refused, the rest resent."""
    error_text = str(answer.get("error") or "invalid request")
    if error_text.lower().startswith("invalid api key"):
        return Outcome(DeliveryError("invalid API key", status=400))
    missing = answer.get("missing_field")
    if missing:
        return Outcome(DeliveryError(f"request missing required field {missing!r}", status=400))
    refused: dict[int, str] = {}
    for key, reason in (
        ("events_with_invalid_fields", "invalid field"),
        ("events_with_missing_fields", "missing field"),
        ("events_with_invalid_id_lengths", "id too short"),
    ):
        fields = answer.get(key)
        if isinstance(fields, Mapping):
            for field, indices in fields.items():
                for index in _indices(indices, count):
                    refused.setdefault(index, f"Amplitude: {reason} {field!r}")
    for index in _indices(answer.get("silenced_events"), count):
        refused.setdefault(index, "Amplitude: events silenced for this device_id")
    refused.update(_over_quota(answer, items))
    if not refused:
        return Outcome(DeliveryError(f"Amplitude: {error_text}", status=400))
    error = DeliveryError(f"Amplitude refused {len(refused)} event(s)", status=400, retryable=True)
    return Outcome(error, refused=refused, unavailable=True)


def read_throttled(
    answer: Mapping[str, Any], count: int, items: Sequence[bytes], pause: float = THROTTLE_PAUSE
) -> Outcome | None:
    """A 429: throttled users' events wait ``pause`` (30 s), over-quota ones are refused, the
    rest are resent.

    None when the answer names no event: the status alone says what to do.
    """
    throttled = set(_indices(answer.get("throttled_events"), count))
    users = answer.get("throttled_users")
    devices = answer.get("throttled_devices")
    if isinstance(users, Mapping) or isinstance(devices, Mapping):
        for index, (user_id, device_id) in enumerate(_ids(items)):
            if (isinstance(users, Mapping) and user_id in users) or (
                isinstance(devices, Mapping) and device_id in devices
            ):
                throttled.add(index)
    refused = _over_quota(answer, items)
    deferred = {index: pause for index in throttled if index not in refused}
    if not refused and not deferred:
        return None
    error = DeliveryError("Amplitude throttled some users or devices", status=429, retryable=True)
    return Outcome(error, refused=refused, deferred=deferred, unavailable=True)


def _over_quota(answer: Mapping[str, Any], items: Sequence[bytes]) -> dict[int, str]:
    """The events of users or devices over Amplitude's daily quota, with that reason."""
    users = answer.get("exceeded_daily_quota_users")
    devices = answer.get("exceeded_daily_quota_devices")
    if not (users or devices):
        return {}
    users = users if isinstance(users, Mapping) else {}
    devices = devices if isinstance(devices, Mapping) else {}
    refused: dict[int, str] = {}
    for index, (user_id, device_id) in enumerate(_ids(items)):
        if user_id in users:
            refused[index] = "Amplitude: exceeded_daily_quota_users"
        elif device_id in devices:
            refused[index] = "Amplitude: exceeded_daily_quota_devices"
    return refused


def _ids(items: Sequence[bytes]) -> list[tuple[Any, Any]]:
    """The ``(user_id, device_id)`` of each serialised event."""
    ids = []
    for item in items:
        try:
            event = json.loads(item)
        except ValueError:
            event = None
        if isinstance(event, dict):
            ids.append((event.get("user_id"), event.get("device_id")))
        else:
            ids.append((None, None))
    return ids


def _indices(value: Any, count: int) -> list[int]:
    """The valid event indices in an answer's list (anything else is ignored)."""
    if not isinstance(value, list):
        return []
    return [i for i in value if isinstance(i, int) and not isinstance(i, bool) and 0 <= i < count]
