"""Batch request bodies: reading them off the connection, decompressing and parsing them.

Every way a body can be refused is a :class:`Reject`, carrying the HTTP status to answer.
"""

from __future__ import annotations

import json
import zlib
from email.message import Message
from io import BufferedIOBase
from typing import Any, Final

__all__ = ["Reject", "decode_body", "parse_batch", "read_body", "wire_limit"]

#: Bodies up to this size are read and discarded before an error answer, so the client
#: sees the answer rather than a reset; larger ones get the answer and a closed connection.
_DRAIN_LIMIT: Final = 16 * 1024 * 1024
#: The longest chunk-size or trailer line read from a chunked body.
_MAX_LINE: Final = 65537
_GZIP: Final = ("gzip", "x-gzip")


class Reject(Exception):
    """A request answered with an error status instead of being recorded."""

    def __init__(
        self, status: int, message: str, *, close: bool = False, body_bytes: int = 0
    ) -> None:
        """Answer ``status`` with ``message``; ``close`` the connection after it if set."""
        super().__init__(message)
        self.status = status
        self.message = message
        self.close = close
        self.body_bytes = body_bytes


def _too_large(limit: int, *, close: bool = False, body_bytes: int = 0) -> Reject:
    """The 413 answer for a body over ``limit`` bytes."""
    return Reject(413, f"body is over the {limit}-byte limit", close=close, body_bytes=body_bytes)


def wire_limit(max_body_bytes: int, encoding: str | None) -> int:
    """How many bytes to accept on the wire for a body of up to ``max_body_bytes``."""
    if encoding in _GZIP:  # gzip may add a little to incompressible data
        return max_body_bytes + max_body_bytes // 64 + 1024
    return max_body_bytes


def read_body(
    rfile: BufferedIOBase, headers: Message, limit: int, *, required: bool = True
) -> bytes:
    """The request body (Content-Length or chunked), refusing more than ``limit`` bytes.

    Without either header the body is empty, or refused with 411 when ``required``.
    """
    if "chunked" in (headers.get("Transfer-Encoding") or "").lower():
        return _read_chunked(rfile, limit)
    length_header = headers.get("Content-Length")
    if length_header is None:
        if required:
            raise Reject(411, "Content-Length required", close=True)
        return b""
    try:
        length = int(length_header)
    except ValueError:
        length = -1
    if length < 0:
        raise Reject(400, "bad Content-Length", close=True)
    if length > limit:
        close = length > _DRAIN_LIMIT
        if not close:
            _read_exactly(rfile, length)
        raise _too_large(limit, close=close, body_bytes=length)
    return _read_exactly(rfile, length)


def _read_exactly(rfile: BufferedIOBase, length: int) -> bytes:
    """Exactly ``length`` bytes of body; a short read means the client went away."""
    data = rfile.read(length)
    if len(data) < length:
        raise ConnectionError("client closed the connection mid-body")
    return data


def _read_chunked(rfile: BufferedIOBase, limit: int) -> bytes:
    """A chunked body, kept up to ``limit`` bytes and drained up to the drain limit."""
    parts: list[bytes] = []
    total = 0
    while True:
        line = rfile.readline(_MAX_LINE)
        if not line:
            raise ConnectionError("client closed the connection mid-body")
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            size = -1
        if size < 0:
            raise Reject(400, "bad chunked encoding", close=True)
        if size == 0:
            while rfile.readline(_MAX_LINE).strip():  # trailers, up to the blank line
                pass
            break
        total += size
        if total > _DRAIN_LIMIT:
            raise _too_large(limit, close=True, body_bytes=total)
        chunk = _read_exactly(rfile, size)
        rfile.readline(_MAX_LINE)  # the CRLF closing the chunk
        if total <= limit:
            parts.append(chunk)
    if total > limit:
        raise _too_large(limit, body_bytes=total)
    return b"".join(parts)


def decode_body(wire: bytes, encoding: str | None, limit: int) -> bytes:
    """The body as sent before ``Content-Encoding`` (gzip or none), up to ``limit`` bytes."""
    if encoding in _GZIP:
        raw = _gunzip(wire, limit)
    elif encoding in (None, "identity"):
        raw = wire
    else:
        raise Reject(415, f"unsupported Content-Encoding {encoding!r}")
    if len(raw) > limit:
        raise _too_large(limit)
    return raw


def _gunzip(data: bytes, limit: int) -> bytes:
    """Decompress (possibly multi-member) gzip ``data``, refusing more than ``limit`` bytes."""
    out: list[bytes] = []
    size = 0
    while data:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            chunk = inflater.decompress(data, limit - size + 1)
        except zlib.error as exc:
            raise Reject(400, f"body is not valid gzip: {exc}") from None
        size += len(chunk)
        if size > limit:
            raise Reject(413, f"decompressed body is over the {limit}-byte limit")
        if not inflater.eof:
            raise Reject(400, "body is not valid gzip: truncated stream")
        out.append(chunk)
        data = inflater.unused_data
    return b"".join(out)


def parse_batch(raw: bytes) -> dict[str, Any]:
    """The decoded body, which must be an object with a ``batch`` list."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise Reject(400, "body is not valid JSON") from None
    if not isinstance(body, dict):
        raise Reject(400, "body must be a JSON object")
    if not isinstance(body.get("batch"), list):
        raise Reject(400, "body must have a 'batch' list")
    return body
