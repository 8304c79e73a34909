"""The collector's HTTP request handler: batches, stats, messages, health and the debugger.

Each batch request is read, checked (size, auth, spec) and handed to the :class:`Recorder`
and the debugger's :class:`EventLog` in one piece; faults from the :class:`FaultInjector`
are injected before it is parsed. The debugger's paths are answered by
:mod:`logbridge.collector.debugger`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import struct
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from logbridge.collector import amplitude, debugger
from logbridge.collector.batch import basic_user, open_batch, sort_messages
from logbridge.collector.body import Reject, read_body, wire_limit
from logbridge.collector.events import DEFAULT_MAX_EVENTS, EventLog
from logbridge.collector.faults import FaultInjector, FaultKind, Faults
from logbridge.collector.oauth import TOKEN_PATH, TokenIssuer, bearer_token
from logbridge.collector.recorder import Recorder, RequestRecord, compact_json

if TYPE_CHECKING:
    from logbridge.collector.http_server import CollectorHTTPServer

__all__ = ["RequestHandler", "Service"]

_INFO_PATHS: Final = frozenset({"/health", "/stats", "/messages"})
_IDLE_TIMEOUT: Final = 30.0


class Service:
    """The collector's settings and state, shared by the request handlers."""

    def __init__(
        self,
        write_key: str | None,
        faults: Faults,
        max_body_bytes: int,
        max_message_bytes: int,
        oauth: TokenIssuer | None = None,
        *,
        max_events: int = DEFAULT_MAX_EVENTS,
        max_messages: int | None = None,
    ) -> None:
        """Bundle what the handlers need."""
        self.write_key = write_key
        self.oauth = oauth
        self.injector = FaultInjector(faults)
        self.max_body_bytes = max_body_bytes
        self.max_message_bytes = max_message_bytes
        self.recorder = Recorder(max_messages)
        self.events = EventLog(max_events)
        self.stopping = threading.Event()

    def stats(self) -> dict[str, Any]:
        """What ``/stats`` answers: the recorder's counts and the debugger's."""
        return {**self.recorder.stats(), **self.events.stats()}


def _is_batch_path(path: str) -> bool:
    """Whether ``path`` takes batches: ``.../v1/batch``, ``.../batch`` or Amplitude's paths."""
    return path.endswith("/batch") or path in amplitude.AMPLITUDE_PATHS


def _allowed_methods(path: str) -> str | None:
    """The ``Allow`` header value for a known ``path``; None for an unknown one."""
    if _is_batch_path(path):
        return "POST"
    return "GET, HEAD" if path in _INFO_PATHS else debugger.allowed_methods(path)


class RequestHandler(BaseHTTPRequestHandler):
    """Answers one connection's requests: batches, stats, messages and health."""

    protocol_version = "HTTP/1.1"
    server_version = "logbridge-collect"
    sys_version = ""
    timeout = _IDLE_TIMEOUT
    server: CollectorHTTPServer

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
        elif path == TOKEN_PATH and self.server.service.oauth is not None:
            self._token(self.server.service.oauth)
        else:
            self._refuse(path)

    def do_GET(self) -> None:
        """Serve ``/health``, ``/stats``, ``/messages`` and the debugger."""
        path = self._path()
        recorder = self.server.service.recorder
        if path == "/health":
            self._reply(200, {"ok": True})
        elif path in ("/stats", "/messages") and not debugger.host_allowed(self):
            self._reply_error(403, "unexpected Host header")  # a rebound DNS name
        elif path == "/stats":
            self._reply(200, self.server.service.stats())
        elif path == "/messages":
            self._reply(200, recorder.messages())
        elif debugger.handles(path):
            debugger.serve(self, path, urlsplit(self.path).query)
        else:
            self._refuse(path)

    do_HEAD = do_GET

    def _other(self) -> None:
        """Refuse any other method: 405 on known paths, 404 elsewhere."""
        self._refuse(self._path())

    def do_DELETE(self) -> None:
        """Clear the debugger's events (``DELETE /events``); refuse other paths."""
        path = self._path()
        if debugger.handles(path):
            debugger.serve(self, path, "")
        else:
            self._refuse(path)

    do_PUT = do_PATCH = do_OPTIONS = _other

    # -- batches

    def _batch(self, path: str) -> None:
        """Read, check and record one batch request, or inject a fault."""
        recorder = self.server.service.recorder
        recorder.batch_started()
        try:
            self._take_batch(path)
        finally:
            recorder.batch_ended()

    def _take_batch(self, path: str) -> None:
        service = self.server.service
        latency = service.injector.faults.latency
        if latency and service.stopping.wait(latency):
            self.close_connection = True
            return
        encoding = (self.headers.get("Content-Encoding") or "").strip().lower() or None
        try:
            limit = amplitude.body_limit(path, service.max_body_bytes)
            wire = read_body(self.rfile, self.headers, wire_limit(limit, encoding))
        except Reject as reject:
            self._reject(path, reject, body_bytes=reject.body_bytes)
            return
        fault = service.injector.decide()
        request = amplitude.parse(path, wire, encoding, urlsplit(self.path).query)
        if request is not None and fault != "reset":
            self._amplitude(path, request, fault, wire)
            return
        if fault is not None:
            self._inject(path, fault, len(wire))
            return
        token = bearer_token(self.headers.get("Authorization"))
        if token is not None:  # OAuth: the token, then the body's writeKey (if one is set)
            problem = service.oauth.check(token) if service.oauth else "no token endpoint here"
            if problem is not None:
                self._reject(path, Reject(401, problem), body_bytes=len(wire))
                return
        try:
            body = open_batch(
                wire,
                encoding,
                user=basic_user(self.headers.get("Authorization")),
                write_key=service.write_key,
                max_body_bytes=service.max_body_bytes,
            )
        except Reject as reject:
            self._reject(path, reject, body_bytes=len(wire))
            return
        batch = body["batch"]
        recorder = service.recorder
        messages, invalid, lines = sort_messages(
            batch, service.max_message_bytes, echo=recorder.echoing
        )
        record = self._make_record(path, 200, len(wire), len(batch))
        recorder.record_batch(record, messages, invalid, lines)
        service.events.add_batch(record, wire, batch, invalid)
        self._reply(200, {"success": True})

    def _amplitude(
        self, path: str, request: amplitude.Request, fault: FaultKind | None, wire: bytes
    ) -> None:
        """Answer an Amplitude request (see :mod:`logbridge.collector.amplitude`)."""
        service = self.server.service
        answer = amplitude.answer(request, service.write_key, service.injector, fault)
        record = self._make_record(path, answer.status, len(wire), len(answer.events), fault=fault)
        recorder = service.recorder
        lines = amplitude.echo_lines(answer) if recorder.echoing else []
        record = dataclasses.replace(record, format="amplitude")
        recorder.record_amplitude(record, answer.events, answer.mappings, lines)
        shown, invalid = amplitude.debugger_events(request, answer)
        if shown:
            service.events.add_batch(record, wire, shown, invalid)
        retry_after = service.injector.retry_after(answer.status) if fault else None
        headers = {"Retry-After": retry_after} if retry_after else {}
        self._reply(answer.status, answer.payload, headers)

    def _token(self, issuer: TokenIssuer) -> None:
        """Answer ``POST /token``: a bearer token for a good client assertion."""
        try:
            body = read_body(self.rfile, self.headers, 64 * 1024)
        except Reject as reject:
            self._reject(TOKEN_PATH, reject, body_bytes=reject.body_bytes)
            return
        # The aud the client signed is the auth server it was given: this collector's URL.
        address, port = self.server.server_address[:2]
        address = address if isinstance(address, str) else address.decode()
        name = f"[{address}]" if ":" in address else address
        audiences = [f"http://{name}:{port}"]
        host = self.headers.get("Host")
        if host:
            audiences.append(f"http://{host}")
        status, payload, headers = issuer.answer(body, self.headers.get("Content-Type"), audiences)
        self._record_request(TOKEN_PATH, status, len(body))
        self._reply(status, payload, headers)

    def _inject(self, path: str, fault: FaultKind, body_bytes: int) -> None:
        """Answer a request hit by ``fault``: an error status, or a reset connection."""
        if fault == "reset":
            self._record_request(path, 0, body_bytes, fault=fault)
            self._reset_connection()
            return
        injector = self.server.service.injector
        status = injector.response_status(fault)
        retry_after = injector.retry_after(status)
        self._record_request(path, status, body_bytes, fault=fault)
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self._reply_error(status, f"injected fault ({fault})", headers)

    def _reset_connection(self) -> None:
        """Close the connection with a TCP reset (SO_LINGER 0) instead of answering."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()
        self.connection.close()

    # -- refusals

    def _refuse(self, path: str) -> None:
        """Answer 405 (with ``Allow``) on a known path, else 404; record it."""
        try:
            body = read_body(
                self.rfile, self.headers, self.server.service.max_body_bytes, required=False
            )
            body_bytes = len(body)
        except Reject:
            body_bytes, self.close_connection = 0, True
        allow = _allowed_methods(path)
        self._record_request(path, 405 if allow else 404, body_bytes)
        if allow:
            self._reply_error(405, f"method {self.command} not allowed", {"Allow": allow})
        else:
            self._reply_error(404, f"no such path: {path}")

    def _reject(self, path: str, reject: Reject, *, body_bytes: int) -> None:
        """Record and answer a refused batch request."""
        self._record_request(path, reject.status, body_bytes)
        headers: dict[str, str] = {}
        if reject.status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="logbridge collect"'
        if reject.close:
            headers["Connection"] = "close"
        if path in amplitude.OWN_PATHS:
            self._reply(reject.status, amplitude.error_body(reject.status, reject.message), headers)
        else:
            self._reply_error(reject.status, reject.message, headers)

    # -- records and answers

    def _path(self) -> str:
        """The request path, without query string or trailing slash."""
        path = urlsplit(self.path).path
        return path.rstrip("/") or "/"

    def _record_request(
        self, path: str, status: int, body_bytes: int, *, fault: FaultKind | None = None
    ) -> None:
        """Record this request, which delivered no messages."""
        record = self._make_record(path, status, body_bytes, 0, fault=fault)
        self.server.service.recorder.record_request(record)

    def _make_record(
        self,
        path: str,
        status: int,
        body_bytes: int,
        message_count: int,
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
            auth_user=basic_user(self.headers.get("Authorization")),
            body_bytes=body_bytes,
            message_count=message_count,
            user_agent=self.headers.get("User-Agent"),
            headers=headers,
            method=self.command,
            fault=fault,
        )

    def _reply_error(
        self, status: int, error: str, headers: Mapping[str, str] | None = None
    ) -> None:
        """Send a JSON error answer: ``{"success": false, "error": ...}``."""
        self._reply(status, {"success": False, "error": error}, headers)

    def _reply(
        self, status: int, payload: object, headers: Mapping[str, str] | None = None
    ) -> None:
        """Send ``payload`` as a JSON response (no body for HEAD)."""
        body = compact_json(payload).encode("utf-8")
        self.send_payload(status, "application/json", body, headers)

    def send_payload(
        self, status: int, content_type: str, body: bytes, headers: Mapping[str, str] | None = None
    ) -> None:
        """Send ``body`` as a response of ``content_type`` (no body for HEAD)."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The Date header, on the token endpoint's clock when it has one (tests move it)."""
        oauth = self.server.service.oauth
        if timestamp is None and oauth is not None:
            timestamp = oauth.clock()
        return super().date_time_string(timestamp)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the collector reports through its echo stream, not stderr."""
