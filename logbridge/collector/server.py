"""The collector: a local Segment-compatible batch endpoint that records what it receives.

:class:`Collector` owns the lifecycle (start, stop, go down for a while) of a
:class:`~logbridge.collector.http_server.CollectorHTTPServer` serving on a daemon thread,
and reads back what its :class:`~logbridge.collector.recorder.Recorder` recorded.
"""

from __future__ import annotations

import os
import threading
from types import TracebackType
from typing import Any, TextIO

from logbridge.collector.echo import format_event, format_problems, mask_key
from logbridge.collector.events import DEFAULT_MAX_EVENTS, EventLog
from logbridge.collector.faults import Faults
from logbridge.collector.handler import Service
from logbridge.collector.http_server import CollectorHTTPServer
from logbridge.collector.oauth import TokenIssuer
from logbridge.collector.recorder import RequestRecord
from logbridge.collector.validate import MAX_MESSAGE_BYTES

__all__ = ["Collector", "RequestRecord", "format_event", "format_problems", "mask_key"]


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
        oauth: TokenIssuer | None = None,
        max_events: int = DEFAULT_MAX_EVENTS,
        max_messages: int | None = None,
    ) -> None:
        """Configure the collector; nothing is bound until :meth:`start`.

        With ``oauth``, ``POST /token`` issues bearer tokens, which the batch paths accept.
        The debugger page and ``/events`` keep the last ``max_events`` events;
        :attr:`messages`, :attr:`invalid` and :attr:`requests` keep everything, or the last
        ``max_messages`` of each when it is given.
        """
        if max_body_bytes <= 0 or max_message_bytes <= 0:
            raise ValueError("max_body_bytes and max_message_bytes must be positive")
        self.host = host
        self.faults = faults if faults is not None else Faults()
        self.output = os.fspath(output) if output is not None else None
        self._requested_port = port
        self._port: int | None = None
        self._echo = echo
        self._service = Service(
            write_key, self.faults, max_body_bytes, max_message_bytes, oauth,
            max_events=max_events, max_messages=max_messages,
        )
        self._recorder = self._service.recorder
        self._lifecycle = threading.RLock()
        self._server: CollectorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None
        self._generation = 0  # bumped to void a pending delayed start
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
    def oauth(self) -> TokenIssuer | None:
        """The token endpoint (``url + "/token"``), if the collector has one."""
        return self._service.oauth

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
            server = self._bind(self._port or self._requested_port)
            self._port = server.server_address[1]
            try:
                output = open(self.output, "a", encoding="utf-8") if self.output else None  # noqa: SIM115
            except OSError:
                server.server_close()
                raise
            self._server = server
            self._service.stopping.clear()
            self._service.events.open()
            self._recorder.attach(output, self._echo)
            self._schedule_up(self.faults.down_for)
        return self

    def stop(self) -> None:
        """Stop serving, drop open connections and close the socket and the output file."""
        with self._lifecycle:
            server = self._server
            if server is None:
                return
            self._service.stopping.set()
            self._service.events.close()
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
                    self._server = self._bind(self.port)
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

    def _bind(self, port: int) -> CollectorHTTPServer:
        """A server bound to ``port`` on our host, not listening yet."""
        return CollectorHTTPServer((self.host, port), self._service)

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

    def _take_down(self, server: CollectorHTTPServer) -> None:
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
        output = self._recorder.detach_output()
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
        return self._recorder.messages()

    @property
    def amplitude_events(self) -> list[dict[str, Any]]:
        """Every Amplitude event ingested (``/2/httpapi``, ``/batch``), in arrival order."""
        return self._recorder.amplitude_events()

    @property
    def usermaps(self) -> list[dict[str, Any]]:
        """Every Amplitude User Mapping received on ``/usermap``."""
        return self._recorder.usermaps()

    def wait_for_amplitude(self, count: int, timeout: float = 10.0) -> bool:
        """Block until ``count`` Amplitude events and mappings arrived; False on timeout."""
        return self._recorder.wait_for_amplitude(count, timeout)

    @property
    def invalid(self) -> list[tuple[Any, list[str]]]:
        """Each invalid message with its problems, in arrival order."""
        return self._recorder.invalid()

    @property
    def events(self) -> EventLog:
        """The debugger's log of recent events (what the page and ``/events`` show)."""
        return self._service.events

    @property
    def requests(self) -> list[RequestRecord]:
        """A record of every request answered, except ``GET`` of the info paths."""
        return self._recorder.requests()

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        """Block until at least ``count`` messages arrived; False if ``timeout`` ran out first."""
        return self._recorder.wait_for_messages(count, timeout)

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> bool:
        """Block until at least ``count`` requests were recorded; False on timeout."""
        return self._recorder.wait_for_requests(count, timeout)

    def reset(self) -> None:
        """Forget everything received (fault progress, such as ``status_count``, is kept)."""
        self._recorder.reset()
        self._service.events.reset()

    def stats(self) -> dict[str, Any]:
        """Counts of received, unique, duplicate and invalid messages, requests and faults.

        Also per type (``by_type``) and event name (``by_event``), and the debugger's window
        (``events``: kept, max_events, evicted, per_second), as ``GET /stats`` answers.
        """
        return self._service.stats()
