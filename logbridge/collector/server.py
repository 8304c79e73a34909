"""The collector: a local Segment-compatible batch endpoint that records what it receives.

:class:`Collector` runs a stdlib :class:`~http.server.ThreadingHTTPServer` on a daemon
thread. Each batch request is parsed, checked (auth, size, spec) and recorded under one
lock, so counting stays cheap enough for benchmarks; faults from :class:`Faults` are
injected before any of that.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import json
import os
import selectors
import socket
import socketserver
import struct
import sys
import threading
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import IO, Any, Final, TextIO
from urllib.parse import urlsplit

from logbridge.collector.faults import FAULT_KINDS, FaultInjector, FaultKind, Faults
from logbridge.collector.validate import MAX_MESSAGE_BYTES, validate_message

__all__ = ["Collector", "RequestRecord", "format_event", "format_problems", "mask_key"]

#: Bodies up to this size are read and discarded before an error answer, so the client
#: sees the answer rather than a reset; larger ones get the answer and a closed connection.
_DRAIN_LIMIT: Final = 16 * 1024 * 1024
_INFO_PATHS: Final = frozenset({"/health", "/stats", "/messages"})
_IDLE_TIMEOUT: Final = 30.0


def _compact(value: object) -> str:
    """``value`` as compact JSON text."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def mask_key(key: str | None) -> str:
    """A write key made safe to print: its first two characters and asterisks."""
    if not key:
        return "(none)"
    return key[:2] + "*" * 6 if len(key) > 4 else "*" * 6


@dataclass(frozen=True)
class RequestRecord:
    """One request the collector answered (or reset), without its body."""

    path: str
    status: int  # 0 when the connection was reset without an answer
    content_encoding: str | None
    auth_user: str | None = field(repr=False)  # the Basic user name: a secret write key
    body_bytes: int  # raw length on the wire
    message_count: int
    user_agent: str | None
    headers: dict[str, str] = field(hash=False)  # Authorization masked
    method: str = "POST"
    fault: FaultKind | None = None


class _Reject(Exception):
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


# -- echo lines -------------------------------------------------------------------------


def _clean(text: str, limit: int = 40) -> str:
    """``text`` on one printable line, cut to ``limit`` characters."""
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _brief_value(value: object) -> str:
    """A short rendering of one property value."""
    if isinstance(value, str):
        return _clean(value, 32)
    if isinstance(value, Mapping):
        return "{...}" if value else "{}"
    if isinstance(value, list):
        return f"[{len(value)} items]"
    try:
        return _clean(json.dumps(value), 32)
    except (TypeError, ValueError):
        return "?"


def _brief_object(obj: Mapping[str, Any], max_items: int = 4) -> str:
    """``{key: value, ...}`` for the first few items of ``obj``, then how many more."""
    items = [f"{_clean(str(k), 24)}: {_brief_value(v)}" for k, v in list(obj.items())[:max_items]]
    if len(obj) > max_items:
        items.append(f"+{len(obj) - max_items} more")
    return "{" + ", ".join(items) + "}"


def _ident(value: object) -> str:
    """An id (or event name) for an echo line; ``?`` when missing."""
    if value is None:
        return "?"
    return _clean(value, 40) if isinstance(value, str) else _brief_value(value)


def format_event(msg: Mapping[str, Any]) -> str:
    """One short readable line describing a received message."""
    kind = msg.get("type")
    label = kind if isinstance(kind, str) else "?"
    if msg.get("userId") is not None:
        who = f"user={_ident(msg['userId'])}"
    elif msg.get("anonymousId") is not None:
        who = f"anon={_ident(msg['anonymousId'])}"
    else:
        who = "user=?"
    parts = [f"{_clean(label, 12):<8}", who]
    if kind == "track":
        parts.append(f'"{_ident(msg.get("event"))}"')
    elif kind in ("page", "screen") and isinstance(msg.get("name"), str):
        parts.append(f'"{_clean(msg["name"])}"')
    elif kind == "group":
        parts.append(f"group={_ident(msg.get('groupId'))}")
    elif kind == "alias":
        parts.append(f"previous={_ident(msg.get('previousId'))}")
    properties, traits = msg.get("properties"), msg.get("traits")
    if kind in ("track", "page", "screen") and isinstance(properties, Mapping) and properties:
        parts.append(_brief_object(properties))
    elif kind in ("identify", "group") and isinstance(traits, Mapping) and traits:
        parts.append("traits=" + _brief_object(traits))
    return "  ".join(parts)


def format_problems(msg: object, problems: list[str]) -> list[str]:
    """One ``! invalid ...`` line per problem of an invalid message."""
    kind, message_id = "?", "-"
    if isinstance(msg, Mapping):
        kind = _clean(str(msg.get("type", "?")), 12)
        if isinstance(msg.get("messageId"), str) and msg["messageId"]:
            message_id = _clean(msg["messageId"], 64)
    return [f"! invalid {kind} {message_id}: {problem}" for problem in problems]


# -- recording --------------------------------------------------------------------------


class _Recorder:
    """Everything received, behind one lock per request; wakes up ``wait_for`` callers."""

    def __init__(self) -> None:
        """Start empty, with no output file and no echo stream."""
        self.cond = threading.Condition()
        self.output: IO[str] | None = None
        self.echo: TextIO | None = None
        self.clear()

    def clear(self) -> None:
        """Forget everything recorded (the caller holds the lock or owns the recorder)."""
        self.messages: list[dict[str, Any]] = []
        self.invalid: list[tuple[Any, list[str]]] = []
        self.requests: list[RequestRecord] = []
        self.id_counts: dict[str, int] = {}
        self.repeated: dict[str, int] = {}
        self.without_id = 0
        self.batches = 0
        self.faults: dict[str, int] = dict.fromkeys(FAULT_KINDS, 0)

    def record_request(self, record: RequestRecord) -> None:
        """Record a request that delivered no messages (an error, a fault, a 404...)."""
        with self.cond:
            self.requests.append(record)
            if record.fault is not None:
                self.faults[record.fault] += 1
            self.cond.notify_all()

    def record_batch(
        self,
        record: RequestRecord,
        messages: list[dict[str, Any]],
        invalid: list[tuple[Any, list[str]]],
        lines: list[str],
    ) -> None:
        """Record an accepted batch: its messages, its problems, the request and the sinks."""
        with self.cond:
            self.requests.append(record)
            self.batches += 1
            self.messages.extend(messages)
            self.invalid.extend(invalid)
            counts, repeated = self.id_counts, self.repeated
            for msg in messages:
                message_id = msg.get("messageId")
                if isinstance(message_id, str) and message_id:
                    seen = counts.get(message_id, 0) + 1
                    counts[message_id] = seen
                    if seen > 1:
                        repeated[message_id] = seen
                else:
                    self.without_id += 1
            self._write(messages, lines)
            self.cond.notify_all()

    def _write(self, messages: list[dict[str, Any]], lines: list[str]) -> None:
        """Append to the output file and the echo stream; a broken sink must not stop us."""
        if self.output is not None and messages:
            self.output.write("".join(_compact(msg) + "\n" for msg in messages))
            self.output.flush()
        if self.echo is not None and lines:
            try:
                self.echo.write("".join(line + "\n" for line in lines))
                self.echo.flush()
            except (OSError, ValueError):
                self.echo = None

    def stats(self) -> dict[str, Any]:
        """Counts of what was received; ``by_message_id`` only for ids seen more than once."""
        with self.cond:
            received = len(self.messages)
            unique = len(self.id_counts) + self.without_id
            return {
                "received": received,
                "unique": unique,
                "duplicates": received - unique,
                "invalid": len(self.invalid),
                "requests": len(self.requests),
                "batches": self.batches,
                "faults": dict(self.faults),
                "by_message_id": dict(self.repeated),
            }


# -- HTTP -------------------------------------------------------------------------------


class _Service:
    """The collector's settings and state, shared by the request handlers."""

    def __init__(
        self,
        write_key: str | None,
        faults: Faults,
        max_body_bytes: int,
        max_message_bytes: int,
    ) -> None:
        """Bundle what the handlers need."""
        self.write_key = write_key
        self.injector = FaultInjector(faults)
        self.max_body_bytes = max_body_bytes
        self.max_message_bytes = max_message_bytes
        self.recorder = _Recorder()
        self.stopping = threading.Event()


def _basic_user(header: str | None) -> str | None:
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


def _same_key(presented: object, expected: str) -> bool:
    """Constant-time comparison of a presented write key with the expected one."""
    return isinstance(presented, str) and hmac.compare_digest(
        presented.encode("utf-8", "surrogatepass"), expected.encode("utf-8")
    )


def _gunzip(data: bytes, limit: int) -> bytes:
    """Decompress (possibly multi-member) gzip ``data``, refusing more than ``limit`` bytes."""
    out: list[bytes] = []
    size = 0
    while data:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            chunk = inflater.decompress(data, limit - size + 1)
        except zlib.error as exc:
            raise _Reject(400, f"body is not valid gzip: {exc}") from None
        size += len(chunk)
        if size > limit:
            raise _Reject(413, f"decompressed body is over the {limit}-byte limit")
        if not inflater.eof:
            raise _Reject(400, "body is not valid gzip: truncated stream")
        out.append(chunk)
        data = inflater.unused_data
    return b"".join(out)


def _parse_batch(raw: bytes) -> dict[str, Any]:
    """The decoded body, which must be an object with a ``batch`` list."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise _Reject(400, "body is not valid JSON") from None
    if not isinstance(body, dict):
        raise _Reject(400, "body must be a JSON object")
    if not isinstance(body.get("batch"), list):
        raise _Reject(400, "body must have a 'batch' list")
    return body


def _is_batch_path(path: str) -> bool:
    """Whether ``path`` is a batch endpoint (``.../v1/batch`` or ``.../batch``)."""
    return path.endswith("/batch")


class _Handler(BaseHTTPRequestHandler):
    """Answers one connection's requests: batches, stats, messages and health."""

    protocol_version = "HTTP/1.1"
    server_version = "logbridge-collect"
    sys_version = ""
    timeout = _IDLE_TIMEOUT
    server: _Server

    def setup(self) -> None:
        """Prepare the connection; no Nagle delay between the header and body writes."""
        super().setup()
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # -- dispatch

    def do_POST(self) -> None:
        """Take a batch, or refuse other paths."""
        path = self._path()
        if _is_batch_path(path):
            self._batch(path)
        else:
            self._refuse(path, allow="GET, HEAD" if path in _INFO_PATHS else None)

    def do_GET(self) -> None:
        """Serve ``/health``, ``/stats`` and ``/messages``."""
        path = self._path()
        recorder = self.server.service.recorder
        if path == "/health":
            self._reply(200, {"ok": True})
        elif path == "/stats":
            self._reply(200, recorder.stats())
        elif path == "/messages":
            with recorder.cond:
                messages = list(recorder.messages)
            self._reply(200, messages)
        else:
            self._refuse(path, allow="POST" if _is_batch_path(path) else None)

    do_HEAD = do_GET

    def _other(self) -> None:
        """Refuse any other method: 405 on known paths, 404 elsewhere."""
        path = self._path()
        allow = "POST" if _is_batch_path(path) else "GET, HEAD" if path in _INFO_PATHS else None
        self._refuse(path, allow=allow)

    do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _other

    # -- batches

    def _batch(self, path: str) -> None:
        """Read, check and record one batch request, or inject a fault."""
        service = self.server.service
        injector = service.injector
        if injector.faults.latency and service.stopping.wait(injector.faults.latency):
            self.close_connection = True
            return
        encoding = (self.headers.get("Content-Encoding") or "").strip().lower() or None
        wire_limit = service.max_body_bytes
        if encoding in ("gzip", "x-gzip"):  # gzip may add a little to incompressible data
            wire_limit += service.max_body_bytes // 64 + 1024
        try:
            wire = self._read_body(wire_limit)
        except _Reject as reject:
            self._reject(path, reject, body_bytes=reject.body_bytes)
            return
        fault = injector.decide()
        if fault is not None:
            self._inject(path, fault, len(wire))
            return
        try:
            self._accept(path, wire, encoding)
        except _Reject as reject:
            self._reject(path, reject, body_bytes=len(wire))

    def _accept(self, path: str, wire: bytes, encoding: str | None) -> None:
        """Authenticate, decode, validate and record a batch, then answer 200."""
        service = self.server.service
        user = _basic_user(self.headers.get("Authorization"))
        key = service.write_key
        if key is not None and user is not None and not _same_key(user, key):
            raise _Reject(401, "invalid write key")
        try:
            if encoding in ("gzip", "x-gzip"):
                raw = _gunzip(wire, service.max_body_bytes)
            elif encoding in (None, "identity"):
                raw = wire
            else:
                raise _Reject(415, f"unsupported Content-Encoding {encoding!r}")
            if len(raw) > service.max_body_bytes:
                raise _Reject(413, f"body is over the {service.max_body_bytes}-byte limit")
            body = _parse_batch(raw)
        except _Reject:
            if key is not None and user is None:  # no credentials: say nothing else
                raise _Reject(401, "missing write key") from None
            raise
        if key is not None and user is None and not _same_key(body.get("writeKey"), key):
            raise _Reject(401, "invalid write key" if "writeKey" in body else "missing write key")

        messages: list[dict[str, Any]] = []
        invalid: list[tuple[Any, list[str]]] = []
        lines: list[str] = []
        echo = service.recorder.echo is not None
        limit = service.max_message_bytes
        for msg in body["batch"]:
            if isinstance(msg, dict):
                messages.append(msg)
                problems = validate_message(msg, max_message_bytes=limit)
                if echo:
                    lines.append(format_event(msg))
            else:
                problems = [f"message must be a JSON object, got {type(msg).__name__}"]
            if problems:
                invalid.append((msg, problems))
                if echo:
                    lines.extend(format_problems(msg, problems))
        record = self._record(path, 200, len(wire), len(body["batch"]), user)
        service.recorder.record_batch(record, messages, invalid, lines)
        self._reply(200, {"success": True})

    def _inject(self, path: str, fault: FaultKind, body_bytes: int) -> None:
        """Answer a request hit by ``fault``: an error status, or a reset connection."""
        injector = self.server.service.injector
        recorder = self.server.service.recorder
        user = _basic_user(self.headers.get("Authorization"))
        if fault == "reset":
            recorder.record_request(self._record(path, 0, body_bytes, 0, user, fault=fault))
            self._reset_connection()
            return
        status = injector.response_status(fault)
        headers: dict[str, str] = {}
        retry_after = injector.retry_after(status)
        if retry_after is not None:
            headers["Retry-After"] = retry_after
        recorder.record_request(self._record(path, status, body_bytes, 0, user, fault=fault))
        self._reply(status, {"success": False, "error": f"injected fault ({fault})"}, headers)

    def _reset_connection(self) -> None:
        """Close the connection with a TCP reset (SO_LINGER 0) instead of answering."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()
        self.connection.close()

    # -- bodies

    def _read_body(self, limit: int, *, required: bool = True) -> bytes:
        """The request body (Content-Length or chunked), refusing more than ``limit`` bytes."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked(limit)
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            if required:
                raise _Reject(411, "Content-Length required", close=True)
            return b""
        try:
            length = int(length_header)
        except ValueError:
            length = -1
        if length < 0:
            raise _Reject(400, "bad Content-Length", close=True)
        if length > limit:
            close = length > _DRAIN_LIMIT
            if not close:
                self._read_exactly(length)
            message = f"body is over the {limit}-byte limit"
            raise _Reject(413, message, close=close, body_bytes=length)
        return self._read_exactly(length)

    def _read_exactly(self, length: int) -> bytes:
        """Exactly ``length`` bytes of body; a short read means the client went away."""
        data = self.rfile.read(length)
        if len(data) < length:
            raise ConnectionError("client closed the connection mid-body")
        return data

    def _read_chunked(self, limit: int) -> bytes:
        """A chunked body, kept up to ``limit`` bytes and drained up to the drain limit."""
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(65537)
            if not line:
                raise ConnectionError("client closed the connection mid-body")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                size = -1
            if size < 0:
                raise _Reject(400, "bad chunked encoding", close=True)
            if size == 0:
                while self.rfile.readline(65537).strip():  # trailers, up to the blank line
                    pass
                break
            total += size
            if total > _DRAIN_LIMIT:
                raise _Reject(
                    413, f"body is over the {limit}-byte limit", close=True, body_bytes=total
                )
            chunk = self._read_exactly(size)
            self.rfile.readline(65537)  # the CRLF closing the chunk
            if total <= limit:
                parts.append(chunk)
        if total > limit:
            raise _Reject(413, f"body is over the {limit}-byte limit", body_bytes=total)
        return b"".join(parts)

    # -- answers

    def _path(self) -> str:
        """The request path, without query string or trailing slash."""
        path = urlsplit(self.path).path
        return path.rstrip("/") or "/"

    def _refuse(self, path: str, *, allow: str | None) -> None:
        """Answer 405 (with ``Allow``) when ``allow`` is given, else 404; record it."""
        try:
            body_bytes = len(self._read_body(self.server.service.max_body_bytes, required=False))
        except _Reject:
            body_bytes, self.close_connection = 0, True
        status = 405 if allow else 404
        error = f"method {self.command} not allowed" if allow else f"no such path: {path}"
        user = _basic_user(self.headers.get("Authorization"))
        self.server.service.recorder.record_request(self._record(path, status, body_bytes, 0, user))
        self._reply(status, {"success": False, "error": error}, {"Allow": allow} if allow else {})

    def _reject(self, path: str, reject: _Reject, *, body_bytes: int = 0) -> None:
        """Record and answer a refused batch request."""
        user = _basic_user(self.headers.get("Authorization"))
        self.server.service.recorder.record_request(
            self._record(path, reject.status, body_bytes, 0, user)
        )
        headers: dict[str, str] = {}
        if reject.status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="logbridge collect"'
        if reject.close:
            headers["Connection"] = "close"
        self._reply(reject.status, {"success": False, "error": reject.message}, headers)

    def _record(
        self,
        path: str,
        status: int,
        body_bytes: int,
        message_count: int,
        user: str | None,
        *,
        fault: FaultKind | None = None,
    ) -> RequestRecord:
        """A record of this request, with the Authorization header masked."""
        headers = dict(self.headers.items())
        for name in headers:
            if name.lower() == "authorization":
                headers[name] = headers[name].split(" ", 1)[0] + " ***"
        return RequestRecord(
            path=path,
            status=status,
            content_encoding=self.headers.get("Content-Encoding"),
            auth_user=user,
            body_bytes=body_bytes,
            message_count=message_count,
            user_agent=self.headers.get("User-Agent"),
            headers=headers,
            method=self.command,
            fault=fault,
        )

    def _reply(
        self, status: int, payload: object, headers: Mapping[str, str] | None = None
    ) -> None:
        """Send ``payload`` as a JSON response (no body for HEAD)."""
        body = _compact(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the collector reports through its echo stream, not stderr."""


class _Server(ThreadingHTTPServer):
    """A threading HTTP server that tracks its connections so it can drop them."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], service: _Service) -> None:
        """Bind ``address`` (reserving the port) without listening yet."""
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.service = service
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._wake_receiver, self._wake_sender = socket.socketpair()
        try:
            super().__init__(address, _Handler, bind_and_activate=False)
            self.server_bind()
        except BaseException:
            for sock in (self._wake_receiver, self._wake_sender, getattr(self, "socket", None)):
                if sock is not None:
                    sock.close()
            raise

    def server_bind(self) -> None:
        """Bind without the reverse DNS lookup ``HTTPServer`` does for ``server_name``."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def server_activate(self) -> None:
        """Listen, without blocking in accept() (so a vanished connection cannot hang us)."""
        super().server_activate()
        self.socket.setblocking(False)

    def serve_until_woken(self) -> None:
        """Accept connections until :meth:`wake` is called (no polling, so stops are prompt)."""
        with selectors.DefaultSelector() as selector:
            selector.register(self.socket, selectors.EVENT_READ)
            selector.register(self._wake_receiver, selectors.EVENT_READ)
            while True:
                ready = selector.select()
                if any(key.fileobj is self._wake_receiver for key, _ in ready):
                    return
                self.handle_request()

    def wake(self) -> None:
        """Make :meth:`serve_until_woken` return."""
        with contextlib.suppress(OSError):
            self._wake_sender.send(b"\0")

    def server_close(self) -> None:
        """Close the listening socket and the wake-up pair."""
        super().server_close()
        self._wake_receiver.close()
        self._wake_sender.close()

    def process_request(self, request: Any, client_address: Any) -> None:
        """Track the connection, then handle it on its own thread."""
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        """Forget and close a finished connection."""
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut down every open connection, waking up the threads handling them."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore clients that went away (socket errors); report anything else."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


# -- the collector ----------------------------------------------------------------------


class Collector:
    """A local Segment-compatible batch endpoint that records every message it receives."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        write_key: str | None = None,
        output: str | os.PathLike[str] | None = None,
        echo: TextIO | None = None,
        faults: Faults | None = None,
        max_body_bytes: int = 500_000,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        """Configure the collector; nothing is bound until :meth:`start`."""
        if max_body_bytes <= 0 or max_message_bytes <= 0:
            raise ValueError("max_body_bytes and max_message_bytes must be positive")
        self.host = host
        self.faults = faults if faults is not None else Faults()
        self.output = os.fspath(output) if output is not None else None
        self._requested_port = port
        self._port: int | None = None
        self._echo = echo
        self._service = _Service(write_key, self.faults, max_body_bytes, max_message_bytes)
        self._lifecycle = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None
        self._generation = 0
        self._up = threading.Event()

    def __repr__(self) -> str:
        """The address and state, never the write key."""
        state = "up" if self._up.is_set() else "started" if self._server else "stopped"
        where = self.url if self._port is not None else f"{self.host}:{self._requested_port}"
        return f"<Collector {where} {state} write_key={mask_key(self._service.write_key)}>"

    # -- address

    @property
    def port(self) -> int:
        """The bound port (the ephemeral one chosen for ``port=0`` once started)."""
        if self._port is None:
            if self._requested_port:
                return self._requested_port
            raise RuntimeError("the collector has not been started")
        return self._port

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:54321``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def endpoint(self) -> str:
        """The batch endpoint URL: ``url + "/v1/batch"``."""
        return self.url + "/v1/batch"

    @property
    def write_key(self) -> str | None:
        """The write key requests must present, if any."""
        return self._service.write_key

    # -- lifecycle

    def start(self) -> Collector:
        """Bind the port and serve on a daemon thread (after ``faults.down_for``, if set)."""
        with self._lifecycle:
            if self._server is not None:
                raise RuntimeError("the collector is already started")
            server = _Server((self.host, self._port or self._requested_port), self._service)
            self._server = server
            self._port = server.server_address[1]
            self._service.stopping.clear()
            recorder = self._service.recorder
            try:
                output = open(self.output, "a", encoding="utf-8") if self.output else None  # noqa: SIM115
            except OSError:
                self._server = None
                server.server_close()
                raise
            with recorder.cond:
                recorder.output, recorder.echo = output, self._echo
            self._schedule_up(self.faults.down_for)
        return self

    def stop(self) -> None:
        """Stop serving, drop open connections and close the socket and the output file."""
        with self._lifecycle:
            server = self._server
            if server is None:
                return
            self._service.stopping.set()
            self._cancel_timer()
            self._server = None
            try:
                self._take_down(server)
            finally:
                self._close_output()

    def down(self, seconds: float) -> None:
        """Refuse connections for ``seconds`` (dropping open ones), then serve on the same port."""
        if not seconds >= 0:
            raise ValueError(f"seconds must be >= 0, got {seconds!r}")
        with self._lifecycle:
            server = self._server
            if server is None:
                raise RuntimeError("the collector has not been started")
            self._cancel_timer()
            if self._up.is_set():
                self._server = None
                try:
                    self._take_down(server)
                    # A bound but not listening socket keeps the port and refuses connections.
                    self._server = _Server((self.host, self.port), self._service)
                except BaseException:
                    self._close_output()
                    raise
            self._schedule_up(seconds)

    @property
    def is_up(self) -> bool:
        """Whether the collector is accepting connections right now."""
        return self._up.is_set()

    def wait_until_up(self, timeout: float = 10.0) -> bool:
        """Block until the collector accepts connections; False if ``timeout`` ran out first."""
        return self._up.wait(timeout)

    def __enter__(self) -> Collector:
        """Start the collector."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the collector."""
        self.stop()

    def _schedule_up(self, delay: float) -> None:
        """Start listening now, or after ``delay`` seconds on a timer thread."""
        self._generation += 1
        if delay <= 0:
            self._go_up()
            return
        timer = threading.Timer(delay, self._go_up_later, args=(self._generation,))
        timer.daemon = True
        self._timer = timer
        timer.start()

    def _go_up_later(self, generation: int) -> None:
        """The timer's job: listen, unless stopped or rescheduled meanwhile."""
        with self._lifecycle:
            if generation == self._generation and self._server is not None:
                self._go_up()

    def _go_up(self) -> None:
        """Listen and serve on a new daemon thread (the lifecycle lock is held)."""
        server = self._server
        if server is None or self._up.is_set():
            return
        server.server_activate()
        thread = threading.Thread(
            target=server.serve_until_woken,
            name=f"logbridge-collector-{self._port}",
            daemon=True,
        )
        thread.start()
        self._thread = thread
        self._up.set()

    def _take_down(self, server: _Server) -> None:
        """Stop serving, close the listening socket and drop open connections."""
        self._up.clear()
        thread, self._thread = self._thread, None
        if thread is not None:
            server.wake()
            thread.join()
        server.server_close()
        server.close_connections()

    def _close_output(self) -> None:
        """Close the output file, if any."""
        recorder = self._service.recorder
        with recorder.cond:
            output, recorder.output = recorder.output, None
        if output is not None:
            output.close()

    def _cancel_timer(self) -> None:
        """Cancel a pending delayed start."""
        self._generation += 1
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- what was received

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Every received message, in arrival order (invalid ones included)."""
        recorder = self._service.recorder
        with recorder.cond:
            return list(recorder.messages)

    @property
    def invalid(self) -> list[tuple[Any, list[str]]]:
        """Each invalid message with its problems, in arrival order."""
        recorder = self._service.recorder
        with recorder.cond:
            return list(recorder.invalid)

    @property
    def requests(self) -> list[RequestRecord]:
        """A record of every request answered, except ``GET`` of the info paths."""
        recorder = self._service.recorder
        with recorder.cond:
            return list(recorder.requests)

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        """Block until at least ``count`` messages arrived; False if ``timeout`` ran out first."""
        recorder = self._service.recorder
        with recorder.cond:
            return recorder.cond.wait_for(lambda: len(recorder.messages) >= count, timeout)

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> bool:
        """Block until at least ``count`` requests were recorded; False on timeout."""
        recorder = self._service.recorder
        with recorder.cond:
            return recorder.cond.wait_for(lambda: len(recorder.requests) >= count, timeout)

    def reset(self) -> None:
        """Forget everything received (fault progress, such as ``status_count``, is kept)."""
        recorder = self._service.recorder
        with recorder.cond:
            recorder.clear()
            recorder.cond.notify_all()

    def stats(self) -> dict[str, Any]:
        """Counts of received, unique, duplicate and invalid messages, requests and faults."""
        return self._service.recorder.stats()
