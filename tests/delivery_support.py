"""Helpers for the delivery tests: loopback proxies, background Pythons, spool reading."""

from __future__ import annotations

import contextlib
import http.client
import os
import selectors
import sqlite3
import ssl
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from logbridge.urls import is_loopback
from tests.support import ROOT

#: Headers a forwarding proxy does not pass on (hop-by-hop, RFC 9110 7.6.1).
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authorization", "proxy-connection", "te", "trailer",
     "transfer-encoding", "upgrade"}
)


def _is_loopback(host: str) -> bool:
    return is_loopback(f"http://{host}/")


class _ForwardingHandler(BaseHTTPRequestHandler):
    """Forwards each request to a loopback target, recording the request line."""

    protocol_version = "HTTP/1.1"
    server: _ForwardingServer

    def do_POST(self) -> None:
        """Forward a POST."""
        self._forward()

    do_GET = do_POST

    def _forward(self) -> None:
        target = self.server.target or self.path  # reverse proxy, or absolute-form (proxy)
        parts = urlsplit(target)
        host = parts.hostname or ""
        if not _is_loopback(host):  # this helper never sends traffic off the machine
            self.send_error(403, "only loopback targets")
            return
        path = urlsplit(self.path).path if self.server.target else (parts.path or "/")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        with self.server.lock:
            self.server.request_lines.append(self.requestline)
        connection = http.client.HTTPConnection(host, parts.port or 80, timeout=30)
        try:
            connection.request(self.command, path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            self.send_response(response.status)
            for name, value in response.getheaders():
                if name.lower() not in _HOP_BY_HOP | {"content-length"}:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        finally:
            connection.close()

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet."""


class _ForwardingServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, target: str | None, context: ssl.SSLContext | None) -> None:
        super().__init__(("127.0.0.1", 0), _ForwardingHandler)
        self.target = target
        self.context = context
        self.lock = threading.Lock()
        self.request_lines: list[str] = []

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Do the TLS handshake (if any) on the connection's own thread."""
        if self.context is not None:
            try:
                request = self.context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)


@contextlib.contextmanager
def forwarding_server(
    target: str | None = None, *, context: ssl.SSLContext | None = None
) -> Iterator[_ForwardingServer]:
    """A forwarder on 127.0.0.1: an HTTP proxy (no ``target``) or a reverse proxy to ``target``.

    With ``context`` it speaks TLS to its clients. Its ``request_lines`` record what it got.
    """
    server = _ForwardingServer(target, context)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def self_signed_certificate(folder: Path) -> tuple[str, str]:
    """A certificate for 127.0.0.1 and its key, made with the openssl command: (cert, key)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )
    return str(cert), str(key)


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    """A server-side TLS context for ``cert``/``key``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


class Background:
    """A Python subprocess whose stdout is read line by line, with deadlines."""

    def __init__(self, code: str, *, env: Mapping[str, str] | None = None,
                 args: list[str] | None = None) -> None:
        child_env = {k: v for k, v in os.environ.items() if not k.startswith("LOGBRIDGE_")}
        child_env.update(env or {})
        command = [sys.executable, *(args or ["-c", textwrap.dedent(code)])]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=child_env, cwd=str(ROOT),
        )
        self.lines: list[str] = []

    def read_line(self, timeout: float = 30.0) -> str:
        """The next line of stdout (without its newline); AssertionError on timeout or EOF."""
        stdout = self.process.stdout
        assert stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                raise AssertionError(f"no line within {timeout}s; so far {self.lines}")
        line = stdout.readline()
        if not line:
            raise AssertionError(f"the process ended: {self.finish(5)[1]}")
        self.lines.append(line.rstrip("\n"))
        return self.lines[-1]

    def finish(self, timeout: float = 30.0) -> tuple[int, str]:
        """Wait for the exit: (return code, stderr)."""
        try:
            _, stderr = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, stderr = self.process.communicate()
        return self.process.returncode, stderr

    def __enter__(self) -> Background:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate()


def spool_rows(path: str) -> int:
    """How many messages the spool at ``path`` holds."""
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
        (count,) = db.execute("SELECT COUNT(*) FROM messages").fetchone()
    return int(count)
