"""The README's signing examples (``curl`` + ``openssl dgst``) and ``securitybot send-alert
--source`` work against a real ``securitybot serve`` (issue #24.1)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from securitybot.ingest import signing
from securitybot.store.db import Database, migrate
from tests.e2e.harness import free_port
from tests.e2e.served import REPO, Server

SECRET = "siem-secret-0123456789"
README = REPO / "README.md"


def readme_blocks() -> list[str]:
    """The README's shell examples that sign a request."""
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(), re.DOTALL)
    return [b for b in blocks if "X-Securitybot-Signature: v2=" in b]


@pytest.fixture
def served(db_url: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    cfg = {
        "database": {"url": db_url},
        "server": {"host": "127.0.0.1", "port": port},
        "ingest": {"tokens": [{"source": "siem", "hmac_secret": SECRET}]},
        "logging": {"level": "WARNING"},
        "scheduler": {"enabled": False},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    db = Database.from_url(db_url)
    migrate(db.engine)
    db.dispose()
    server = Server(path, port, tmp_path / "server.log")
    server.start()
    try:
        yield f"http://127.0.0.1:{port}", path
    finally:
        server.stop()


def test_the_worked_example_is_what_the_server_computes() -> None:
    body = b'{"user":"alice@example.com","title":"test"}'
    message = signing.string_to_sign(timestamp="1700000000", nonce="", method="POST",
                                     path="/api/v1/alerts", query="", body=body)  # fmt: skip
    assert message == b"v2\n1700000000\n\nPOST\n/api/v1/alerts\n\n" + body
    expected = signing.sign(SECRET, message)
    assert expected in README.read_text()
    assert expected == "v2=6600313bcc352a3e8a66759c52bb54a5da6b04cd8eab6d39cb6aa1bf1ff8fe17"


def test_the_readme_curl_examples_work_once(served: tuple[str, Path]) -> None:
    base, _config = served
    blocks = readme_blocks()
    assert len(blocks) == 2
    for block in blocks:
        script = block.replace("http://127.0.0.1:8000", base)
        # Once as written, then the same request again with the signature it printed.
        run = subprocess.run(["bash", "-c", script + "\necho; echo \"$SIG $TS ${NONCE:-}\""],
                             env={**os.environ, "SECRET": SECRET}, capture_output=True,
                             text=True, timeout=60)  # fmt: skip
        out = run.stdout
        assert run.returncode == 0, run.stderr
        answer = out.splitlines()[0]
        assert '"error"' not in answer and ('"created":true' in answer or '"alerts"' in answer), out
        sig, ts, *nonce = out.splitlines()[-1].split(" ")
        replay = script.replace("$(date +%s)", ts).replace(
            "$(openssl rand -hex 8)", nonce[0] if nonce else ""
        )
        again = subprocess.run(["bash", "-c", replay], env={**os.environ, "SECRET": SECRET},
                               capture_output=True, text=True, timeout=60)  # fmt: skip
        assert "replayed_signature" in again.stdout, (sig, again.stdout)


def test_send_alert_signs_with_the_sources_secret(served: tuple[str, Path]) -> None:
    base, config = served
    cli = [sys.executable, "-m", "securitybot", "send-alert", "--config", str(config),
           "--url", base, "--user", "alice@example.com"]  # fmt: skip
    signed = subprocess.run([*cli, "--source", "siem"], cwd=REPO, capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert signed.returncode == 0 and signed.stdout.startswith("HTTP 201"), signed.stdout
    assert '"source": "siem"' in signed.stdout
    wrong = subprocess.run([*cli, "--source", "siem", "--hmac-secret", "not-the-secret-0123"],
                           cwd=REPO, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert wrong.returncode == 1 and wrong.stdout.startswith("HTTP 401"), wrong.stdout
