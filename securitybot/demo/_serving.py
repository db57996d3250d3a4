"""Serving plumbing shared by the fakes: an http.server on 127.0.0.1 (HTTPS with a throwaway
CA where the real service is HTTPS-only) in a daemon thread, started and stopped the same way."""

from __future__ import annotations

import contextlib
import logging
import select
import shutil
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self

log = logging.getLogger(__name__)


class ServedFake:
    """Base for fakes that serve over a real socket; subclasses build the server in start()."""

    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        self._stop_serving()

    def _serve_in_thread(self, server: ThreadingHTTPServer, name: str) -> None:
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{name}-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def _stop_serving(self) -> bool:
        """Stop and join the server thread; False if it was not running."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return False
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        self._server = self._thread = None
        return True

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return int(self._server.server_address[1])


class Handler(BaseHTTPRequestHandler):
    """Hands every GET and POST to the fake's ``_serve(handler)``."""

    server: FakeServer
    # An answer goes out in two writes (headers, then body); with Nagle's algorithm on, a
    # kept-alive connection's body waits ~40 ms for the client's delayed ACK, which the
    # benchmarks would measure as the bot's latency.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        with self.server.busy(self.connection):
            self.server.serve(self)

    def do_POST(self) -> None:
        with self.server.busy(self.connection):
            self.server.serve(self)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(f"{self.server.name}: " + format, *args)


class FakeServer(ThreadingHTTPServer):
    """A fake's server on 127.0.0.1 (HTTPS when given a TLS context).

    ``keep_alive`` answers HTTP/1.1 and keeps connections open ``idle`` seconds, as the real
    service does (a client that reuses connections can show it: ``connections`` counts them);
    otherwise HTTP/1.0, one request per connection. Stopping ends idle kept-alive connections
    so it never waits out their timeout.
    """

    # Handler threads are joined on close so tests never leak threads.
    daemon_threads = False
    block_on_close = True
    # socketserver's default listen backlog of 5 drops SYNs in a burst, and the client's
    # connection then stalls for a 1 s retransmit: that would measure the fake, not the bot.
    request_queue_size = 1024

    def __init__(
        self,
        name: str,
        serve: Callable[[BaseHTTPRequestHandler], None],
        *,
        keep_alive: bool = False,
        idle: float = 10.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        handler = type(
            "Handler",
            (Handler,),
            {"protocol_version": "HTTP/1.1" if keep_alive else "HTTP/1.0", "timeout": idle},
        )
        super().__init__(("127.0.0.1", 0), handler)
        self.name, self.serve, self.idle = name, serve, idle
        self.tls = tls is not None
        if tls is not None:
            # Handshake in the handler thread, so one bad client cannot stall accept().
            self.socket = tls.wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False
            )
        self.connections = 0  # connections accepted
        self._open: set[Any] = set()
        self._busy: set[Any] = set()  # answering a request (not idle between requests)
        self._open_lock = threading.Lock()

    @contextlib.contextmanager
    def busy(self, conn: Any) -> Iterator[None]:
        with self._open_lock:
            self._busy.add(conn)
        try:
            yield
        finally:
            with self._open_lock:
                self._busy.discard(conn)

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(self.idle)
        with self._open_lock:
            self.connections += 1
            self._open.add(request)
        try:
            if self.tls:
                try:
                    request.do_handshake()
                except (ssl.SSLError, OSError) as exc:
                    log.debug("%s: TLS handshake failed: %s", self.name, exc)
                    return
            super().finish_request(request, client_address)
        finally:
            with self._open_lock:
                self._open.discard(request)

    def open_connections(self) -> list[Any]:
        """The connections open now (kept alive between requests, or answering one)."""
        with self._open_lock:
            return list(self._open)

    def close_idle(self) -> None:
        """End idle kept-alive connections (their handler threads wait for a next request)."""
        with self._open_lock:
            conns = list(self._open - self._busy)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def server_close(self) -> None:
        self.close_idle()
        super().server_close()


def write_reply(req: BaseHTTPRequestHandler, status: int, data: bytes,
                ctype: str | None = "application/json",
                headers: Mapping[str, str] | None = None) -> None:  # fmt: skip
    """Answer ``req``: ``status``, ``data`` with its length, ``ctype`` (None: no body type),
    and ``headers`` (a vendor's own: rate limits, request ids)."""
    req.send_response(status)
    if ctype is not None:
        req.send_header("Content-Type", ctype)
    req.send_header("Content-Length", str(len(data)))
    for name, value in (headers or {}).items():
        req.send_header(name, value)
    req.end_headers()
    req.wfile.write(data)


class HungUp(Exception):
    """The client closed the connection while its request was held: nothing is answered."""


def peer_gone(conn: Any) -> bool:
    """Whether the client of ``conn`` (a socket, TLS or not, between its request and our answer)
    has closed it: its end of file, or a TLS alert (close_notify), is waiting to be read. An
    HTTP/1.1 client sends nothing else while it waits for an answer."""
    try:
        readable, _, _ = select.select([conn], [], [], 0)
        if not readable:
            return False
        # Beneath TLS: peek at the raw bytes, consuming nothing.
        data = socket.socket.recv(conn, 1, socket.MSG_PEEK)
    except BlockingIOError:
        return False
    except (OSError, ValueError):
        return True
    return data in (b"", b"\x15")  # end of file, or a TLS alert record


def hold(changed: threading.Condition, done: Callable[[], bool], seconds: float, conn: Any,
         every: float | None = None) -> None:  # fmt: skip
    """Wait (``changed``'s lock held) until ``done()`` or ``seconds`` pass, as a long-poll holds
    a request; HungUp if the client closed the connection meanwhile. That is looked at when the
    wait ends (an answer is never spent on a connection nobody reads), and every ``every``
    seconds if given (None: like a real server, the hold notices only when it ends)."""
    end = time.monotonic() + max(0.0, seconds)
    while True:
        left = end - time.monotonic()
        finished = changed.wait_for(done, timeout=max(0.0, left if every is None else
                                                      min(left, every)))  # fmt: skip
        if conn is not None and peer_gone(conn):
            raise HungUp
        if finished or time.monotonic() >= end:
            return


class TLSFake(ServedFake):
    """A fake served over HTTPS with a throwaway CA (``ca_path``) for ``localhost``."""

    _tmpdir: Path | None = None

    def _serve_tls(self, name: str, serve: Callable[[BaseHTTPRequestHandler], None],
                   **options: Any) -> None:  # fmt: skip
        import trustme  # dev-only dependency; keep `import securitybot.demo` light

        ca = trustme.CA()
        # duo_client matches DNS SANs only, so an IP-address certificate would be rejected.
        cert = ca.issue_cert("localhost")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        self._tmpdir = Path(tempfile.mkdtemp(prefix=f"{name}-"))
        ca.cert_pem.write_to_path(str(self._tmpdir / "ca.pem"))
        self._serve_in_thread(FakeServer(name, serve, tls=context, **options), name)

    def stop(self) -> None:
        if isinstance(self._server, FakeServer):
            self._server.close_idle()
        self._stop_serving()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    @property
    def ca_path(self) -> str:
        if self._tmpdir is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return str(self._tmpdir / "ca.pem")
