"""`securitybot serve` as a real subprocess, for tests that kill, stop or restart it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from securitybot.store.db import Database, migrate
from tests.children import die_with_parent

REPO = Path(__file__).resolve().parents[2]


class Server:
    """`securitybot serve` in a subprocess; start() again after kill() to restart it.

    ``patience``: how long start-up may take. It takes seconds alone, but an import and the
    schema check can pass 20 s when other test workers share the machine's two cores."""

    def __init__(self, config: Path, port: int, log: Path, *, patience: float = 90.0) -> None:
        self.config, self.port, self.log, self.patience = config, port, log, patience
        self.proc: subprocess.Popen[bytes] | None = None

    def _cli(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "securitybot", *args, "--config", str(self.config)]

    def migrate(self) -> None:
        """The schema, migrated in this process: what `securitybot migrate` does, without paying
        a second interpreter's start-up (the CLI itself is tested in tests/unit)."""
        db = Database.from_url(yaml.safe_load(self.config.read_text())["database"]["url"])
        try:
            migrate(db.engine)
        finally:
            db.dispose()

    def start(self) -> None:
        self.launch()
        self.wait_started()

    def launch(self) -> None:
        """Start the process without waiting for it to serve (see start_together)."""
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self._cli("serve"), cwd=REPO, stdout=out, stderr=out,
                                         preexec_fn=die_with_parent)  # fmt: skip

    def wait_started(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self.patience
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.log.read_text()}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).is_success:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {self.log.read_text()}")
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        assert self.proc.wait(timeout=10) == -signal.SIGKILL

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_together(*servers: Server) -> None:
    """Start replicas side by side: their start-ups overlap instead of adding up."""
    for server in servers:
        server.launch()
    for server in servers:
        server.wait_started()
