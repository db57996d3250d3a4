"""Start/stop plumbing shared by the fakes: an http.server on 127.0.0.1 in a daemon thread."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Self


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
