"""`securitybot serve` as a real subprocess, for tests that kill, stop or restart it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.children import die_with_parent

REPO = Path(__file__).resolve().parents[2]


class Server:
    """`securitybot serve` in a subprocess; start() again after kill() to restart it."""

    def __init__(self, config: Path, port: int, log: Path) -> None:
        self.config, self.port, self.log = config, port, log
        self.proc: subprocess.Popen[bytes] | None = None

    def _cli(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "securitybot", *args, "--config", str(self.config)]

    def migrate(self) -> None:
        subprocess.run(self._cli("migrate"), cwd=REPO, check=True, capture_output=True)

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self._cli("serve"), cwd=REPO, stdout=out, stderr=out,
                                         preexec_fn=die_with_parent)  # fmt: skip
        deadline = time.monotonic() + 60  # start-up takes seconds; far more on a loaded machine
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
