"""Turning a batch request into messages: the write-key check, decoding and validation.

These are pure functions of the request; the handler does the HTTP around them.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Any

from logbridge.collector.body import Reject, decode_body, parse_batch
from logbridge.collector.echo import format_event, format_problems
from logbridge.collector.validate import validate_message

__all__ = ["basic_user", "open_batch", "sort_messages"]

#: A batch's messages as recorded: the dict ones, the invalid ones with their problems,
#: and the echo lines describing them.
SortedMessages = tuple[list[dict[str, Any]], list[tuple[Any, list[str]]], list[str]]


def basic_user(header: str | None) -> str | None:
    """The user name of an HTTP Basic ``Authorization`` header ("" if unreadable)."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return ""
    return decoded.partition(":")[0]


def open_batch(
    wire: bytes,
    encoding: str | None,
    *,
    user: str | None,
    write_key: str | None,
    max_body_bytes: int,
) -> dict[str, Any]:
    """The decoded batch body, once its write key (Basic ``user`` or ``writeKey``) checks out.

    A request without any credentials gets 401 before anything is said about its body.
    """
    if write_key is not None and user is not None and not _same_key(user, write_key):
        raise Reject(401, "invalid write key")
    try:
        body = parse_batch(decode_body(wire, encoding, max_body_bytes))
    except Reject:
        if write_key is not None and user is None:  # no credentials: say nothing else
            raise Reject(401, "missing write key") from None
        raise
    if write_key is not None and user is None and not _same_key(body.get("writeKey"), write_key):
        raise Reject(401, "invalid write key" if "writeKey" in body else "missing write key")
    return body


def sort_messages(batch: list[Any], max_message_bytes: int, *, echo: bool) -> SortedMessages:
    """Validate each message of ``batch``; with ``echo``, describe each one on a line too."""
    messages: list[dict[str, Any]] = []
    invalid: list[tuple[Any, list[str]]] = []
    lines: list[str] = []
    for msg in batch:
        if isinstance(msg, dict):
            messages.append(msg)
            problems = validate_message(msg, max_message_bytes=max_message_bytes)
            if echo:
                lines.append(format_event(msg))
        else:
            problems = [f"message must be a JSON object, got {type(msg).__name__}"]
        if problems:
            invalid.append((msg, problems))
            if echo:
                lines.extend(format_problems(msg, problems))
    return messages, invalid, lines


def _same_key(presented: object, expected: str) -> bool:
    """Constant-time comparison of a presented write key with the expected one."""
    return isinstance(presented, str) and hmac.compare_digest(
        presented.encode("utf-8", "surrogatepass"), expected.encode("utf-8")
    )
