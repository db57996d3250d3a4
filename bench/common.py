"""Shared benchmark plumbing: a real `securitybot serve` subprocess on a throwaway database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import httpx
import sqlalchemy as sa
import yaml

PG_URL = os.environ.get(
    "SECURITYBOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
TOKEN = "bench-token-0123456789abcdef"
# The signing source of `bench/ingest.py --signed` (HMAC, ingest.tokens[].hmac_secret).
HMAC_SOURCE = "bench-signed"
HMAC_SECRET = "bench-hmac-secret-0123456789abcdef"


def ingest_config(*, events: bool = False) -> dict[str, object]:
    """The load generator's source, far above the default per-source rate limit; ``events``:
    it may also post AER events, for any org (the bench workloads span many)."""
    token: dict[str, object] = {"source": "bench", "token": TOKEN}
    if events:
        token |= {"scopes": ["ingest", "events"], "orgs": ["*"]}
    signed = {"source": HMAC_SOURCE, "hmac_secret": HMAC_SECRET}
    return {"tokens": [token, signed], "rate_limit": {"rate": 1_000_000, "burst": 1_000_000}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    idx = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[idx]


@contextmanager
def database(backend: str) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.db"
        return
    schema = "bench_" + uuid.uuid4().hex[:10]
    base = "postgresql+psycopg://" + PG_URL.split("://", 1)[1]
    eng = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{base}?options={quote(f'-csearch_path={schema}')}"
    finally:
        with eng.connect() as c:
            c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        eng.dispose()


@contextmanager
def server(db_url: str, extra: dict[str, object] | None = None) -> Iterator[str]:
    """Migrate, start `securitybot serve` in a subprocess, yield its base URL, stop it."""
    port = free_port()
    cfg: dict[str, object] = {
        "database": {"url": db_url},
        "server": {"host": "127.0.0.1", "port": port},
        "ingest": ingest_config(),
        "logging": {"level": "WARNING"},
    }
    for key, value in (extra or {}).items():
        cfg[key] = value
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_text(yaml.safe_dump(cfg))
        exe = [sys.executable, "-m", "securitybot"]
        subprocess.run([*exe, "migrate", "--config", str(path)], check=True, capture_output=True)
        proc = subprocess.Popen([*exe, "serve", "--config", str(path)])
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + 60
            while time.time() < deadline:
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            else:
                raise RuntimeError("server did not become healthy")
            yield base
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def wait_healthy(base: str, proc: subprocess.Popen[bytes]) -> None:
    """Until ``base``/healthz answers 200; RuntimeError if the server exits or 60 s pass."""
    deadline = time.time() + 60
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.time() > deadline or proc.poll() is not None:
            raise RuntimeError("server did not become healthy")
        time.sleep(0.1)


@contextmanager
def minimal_server(db_url: str) -> Iterator[str]:
    """The minimal-insert app (bench/minimal.py) on a migrated schema; yields its base URL."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_text(yaml.safe_dump({"database": {"url": db_url}}))
        exe = [sys.executable, "-m", "securitybot"]
        subprocess.run([*exe, "migrate", "--config", str(path)], check=True, capture_output=True)
    repo = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.minimal", "--db", db_url, "--port", str(port)], cwd=repo
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)
