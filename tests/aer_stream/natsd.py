"""A nats-server of a test's own (Debian's /usr/sbin/nats-server), with its own config file on a
free port, that the test may stop and start: never the shared one on :4222."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from bench.common import free_port
from tests.children import die_with_parent

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


def require_nats_server() -> None:
    if not os.path.exists(NATS_SERVER):
        msg = f"{NATS_SERVER} is not installed (Debian package nats-server)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(msg + " and CI=true: .ci/run installs it", pytrace=False)
        pytest.skip(msg)


class NatsServer:
    """``conf`` is added to a config that listens on 127.0.0.1:<port> with JetStream on a
    store directory that survives stop/start."""

    def __init__(self, tmp: Path, conf: str = "") -> None:
        require_nats_server()
        self.dir = tmp
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.config = tmp / "nats.conf"
        store = tmp / "jetstream"
        self.config.write_text(
            f'listen: "127.0.0.1:{self.port}"\n'
            f'jetstream {{ store_dir: "{store}" }}\n' + conf
        )  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> NatsServer:
        log = (self.dir / "nats.log").open("ab")
        self.proc = subprocess.Popen([NATS_SERVER, "-c", str(self.config)], stdout=log, stderr=log,
                                     preexec_fn=die_with_parent)  # fmt: skip
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"nats-server did not start: {(self.dir / 'nats.log').read_text()}"
                    ) from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
