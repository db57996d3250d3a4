"""PostgreSQL ``LISTEN aer_versions``: wakes the sync loop the moment shared AER state changes.

Runs in a daemon thread with its own connection (a pooled one would be held forever). Losing the
connection only costs latency: the periodic version check still runs, and this reconnects.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from sqlalchemy.engine import URL

from securitybot.aer.shared import CHANNEL

logger = logging.getLogger(__name__)
_RECONNECT_SECONDS = 5.0


def conninfo(url: URL) -> str:
    """The libpq URI of a SQLAlchemy ``postgresql+psycopg`` URL (password kept: never log it)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class VersionListener:
    def __init__(self, url: URL, on_change: Callable[[str], None]) -> None:
        self._info = conninfo(url)
        self._on_change = on_change
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="aer-listen", daemon=True)
        self.listening = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._info, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            self._on_change(note.payload)
            except psycopg.Error as exc:
                self.listening.clear()
                logger.warning("AER LISTEN connection lost (%s); retrying", type(exc).__name__)
                self._stop.wait(_RECONNECT_SECONDS)
