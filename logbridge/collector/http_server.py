"""The collector's HTTP server: binds without listening, stops promptly, drops connections.

Binding and listening are separate so the collector can hold its port while "down"
(a bound socket that does not listen refuses connections).
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import socketserver
import sys
import threading
from http.server import ThreadingHTTPServer
from typing import Any

from logbridge.collector.handler import RequestHandler, Service

__all__ = ["CollectorHTTPServer"]


class CollectorHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that tracks its connections so it can drop them."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], service: Service) -> None:
        """Bind ``address`` (reserving the port) without listening yet."""
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.service = service
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._wake_receiver, self._wake_sender = socket.socketpair()
        try:
            super().__init__(address, RequestHandler, bind_and_activate=False)
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
