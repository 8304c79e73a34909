"""A minimal, fast counting receiver for Segment-style and PostHog batches.

It runs in its own process (``python -m benchmarks.receiver --port 0`` prints
``PORT <n>``), so it never shares a GIL with the client being measured, and it does as
little as it can per request: read the body, gunzip it, parse it with orjson and put each
message's id in a set. Nothing is validated or kept beyond the ids, so it is not what
limits a client's throughput (``logbridge.collector.Collector`` validates and stores every
message on a thread per connection: right for tests, too slow to measure a fast client).

Batch paths: ``POST .../v1/batch`` (Segment, RudderStack, logbridge; ids are ``messageId``)
and ``POST /batch/`` (PostHog; ids are ``uuid``), plain or ``Content-Encoding: gzip``.
Control paths: ``GET /stats``, ``POST /reset`` (JSON body ``{"latency": seconds}`` sets a
delay before every batch answer), ``GET /health``.

Times are ``time.monotonic()``: CLOCK_MONOTONIC is system-wide on Linux, so a client
process can subtract its own start time from ``last_new_at``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
import zlib
from collections.abc import Callable
from typing import Any

try:
    import orjson

    _loads: Callable[[bytes], Any] = orjson.loads
    _dumps: Callable[[Any], bytes] = orjson.dumps
except ImportError:  # pragma: no cover - the bench venv has orjson
    _loads = json.loads

    def _dumps(value: Any) -> bytes:
        return json.dumps(value).encode()


_OK = b'{"success":true}'
_BAD = b'{"success":false}'
_REASONS = {200: b"OK", 400: b"Bad Request", 404: b"Not Found"}
_GZIP_WBITS = 16 + zlib.MAX_WBITS


class Counts:
    """What arrived since the last reset. Touched by the event loop's thread only."""

    def __init__(self) -> None:
        self.reset()

    def reset(self, latency: float = 0.0) -> None:
        """Forget everything; answer each batch after ``latency`` seconds from now on."""
        self.latency = latency
        self.seen: set[str] = set()
        self.requests = 0
        self.messages = 0
        self.without_id = 0
        self.wire_bytes = 0
        self.body_bytes = 0
        self.decoded_bytes = 0
        self.errors = 0
        self.other_paths: dict[str, int] = {}
        self.first_at: float | None = None
        self.last_new_at: float | None = None
        self.reset_at = time.monotonic()
        self.cpu_at_reset = time.process_time()

    def take_batch(self, head_bytes: int, body: bytes, encoding: str) -> tuple[int, bytes]:
        """Count one batch request; return the status and body to answer with."""
        self.requests += 1
        self.wire_bytes += head_bytes + len(body)
        self.body_bytes += len(body)
        try:
            raw = zlib.decompress(body, _GZIP_WBITS) if encoding == "gzip" else body
            batch = _loads(raw)["batch"]
        except Exception:
            self.errors += 1
            return 400, _BAD
        self.decoded_bytes += len(raw)
        seen = self.seen
        before = len(seen)
        missing = 0
        for message in batch:
            ident = message.get("messageId") or message.get("uuid")
            if ident is None:
                missing += 1
            else:
                seen.add(ident)
        self.messages += len(batch)
        self.without_id += missing
        now = time.monotonic()
        if self.first_at is None:
            self.first_at = now
        if len(seen) > before:
            self.last_new_at = now
        return 200, _OK

    def stats(self) -> dict[str, Any]:
        """The counters as plain JSON values."""
        unique = len(self.seen)
        return {
            "requests": self.requests,
            "messages": self.messages,
            "unique": unique,
            "duplicates": self.messages - self.without_id - unique,
            "without_id": self.without_id,
            "wire_bytes": self.wire_bytes,
            "body_bytes": self.body_bytes,
            "decoded_bytes": self.decoded_bytes,
            "errors": self.errors,
            "other_paths": dict(self.other_paths),
            "first_at": self.first_at,
            "last_new_at": self.last_new_at,
            "latency": self.latency,
            "cpu_seconds": time.process_time() - self.cpu_at_reset,
            "seconds_since_reset": time.monotonic() - self.reset_at,
        }


class Receiver:
    """The HTTP/1.1 keep-alive server around a :class:`Counts`."""

    def __init__(self) -> None:
        self.counts = Counts()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer one connection's requests until the client closes it."""
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                method, path, headers = _parse_head(head)
                if "chunked" in headers.get("transfer-encoding", ""):
                    body = await _read_chunked(reader)
                else:
                    body = await reader.readexactly(int(headers.get("content-length") or 0))
                status, payload = self._dispatch(method, path, headers, len(head), body)
                if status == 200 and path.endswith("/batch") and self.counts.latency:
                    await asyncio.sleep(self.counts.latency)
                reason = _REASONS.get(status, b"Error")
                writer.write(
                    b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (status, reason, len(payload), payload)
                )
                await writer.drain()
                if headers.get("connection", "") == "close":
                    return
        except (ConnectionError, asyncio.LimitOverrunError, ValueError):
            return
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    def _dispatch(
        self, method: str, path: str, headers: dict[str, str], head_bytes: int, body: bytes
    ) -> tuple[int, bytes]:
        counts = self.counts
        if method == "POST" and path.endswith("/batch"):
            return counts.take_batch(head_bytes, body, headers.get("content-encoding", ""))
        if path == "/stats":
            return 200, _dumps(counts.stats())
        if method == "POST" and path == "/reset":
            options = _loads(body) if body else {}
            counts.reset(float(options.get("latency", 0.0)))
            return 200, _OK
        if path == "/health":
            return 200, _OK
        counts.other_paths[path] = counts.other_paths.get(path, 0) + 1
        return 404, _BAD


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    """Method, path (no query, no trailing slash) and lower-cased headers of a request."""
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip().lower()
    path = target.split("?", 1)[0].rstrip("/") or "/"
    return method, path, headers


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readline()).split(b";", 1)[0].strip(), 16)
        if size == 0:
            while (await reader.readline()).strip():
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readline()


async def _main(host: str, port: int, max_seconds: float) -> None:
    receiver = Receiver()
    server = await asyncio.start_server(receiver.serve, host, port, limit=1 << 20, backlog=256)
    bound = server.sockets[0].getsockname()[1]
    print(f"PORT {bound}", flush=True)
    parent = os.getppid()
    deadline = time.monotonic() + max_seconds
    async with server:
        # Bounded: stop when the parent is gone or after max_seconds, whichever is first.
        while time.monotonic() < deadline and os.getppid() == parent:
            await asyncio.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", choices=["127.0.0.1", "localhost"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=3 * 3600.0)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args.host, args.port, args.max_seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
