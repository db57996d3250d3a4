"""`securitybot serve --workers N`: N processes on one port, sharing the work like replicas."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from bench.common import free_port
from securitybot.demo import FakeDuo, FakeSlack
from securitybot.store.db import Database, migrate
from tests.children import die_with_parent
from tests.dbs import postgres_schema_url
from tests.e2e.harness import TOKEN, wait_until

REPO = Path(__file__).resolve().parents[2]
ALERTS = 60


def _children(pid: int) -> list[int]:
    raw = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(p) for p in raw]


def test_two_worker_processes_serve_one_port_and_dm_every_alert_once(
    fs: FakeSlack, fd: FakeDuo, tmp_path: Path
) -> None:
    for i in range(ALERTS):
        fs.add_user(f"UW{i:03d}", f"w{i}@example.com")
    port = free_port()
    with postgres_schema_url() as url:
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump({
            "database": {"url": url, "pool_size": 8},
            "server": {"host": "127.0.0.1", "port": port},
            "ingest": {"tokens": [{"source": "test", "token": TOKEN}]},
            "slack": {"bot_token": "xoxb-test", "signing_secret": "s" * 32,
                      "api_url": fs.base_url, "security_channel": "CSEC"},
            "duo": {"ikey": fd.ikey, "skey": fd.skey, "api_host": fd.api_host,
                    "ca_certs": fd.ca_path},
            "policy": {"ack_timeout": 3600},
            "storm": {"max_people": ALERTS},  # one detection for 60 people: not a storm here
        }))  # fmt: skip
        cli = [sys.executable, "-m", "securitybot"]
        # Migrated here rather than by `securitybot migrate`: one interpreter start-up less.
        db = Database.from_url(url)
        migrate(db.engine)
        db.dispose()
        log = (tmp_path / "serve.log").open("wb")
        proc = subprocess.Popen([*cli, "serve", "--config", str(config), "--workers", "2"],
                                cwd=REPO, stdout=log, stderr=log,
                                preexec_fn=die_with_parent)  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda: _healthy(base), 60, "the workers to start")
            assert len(_children(proc.pid)) == 2
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
                for i in range(ALERTS):
                    resp = c.post("/api/v1/alerts", json={
                        "kind": "default", "user": f"w{i}@example.com", "title": f"alert {i}",
                        "dedup_key": f"w-{i}"})  # fmt: skip
                    assert resp.status_code == 201, resp.text
            wait_until(lambda: len(_dm_channels(fs)) >= ALERTS, 60, "a DM per alert")
            time.sleep(1.0)  # room for a duplicate to show up
            dms = [c for c in fs.calls_to("chat.postMessage") if _is_dm(c.status, c.response)]
            assert len(dms) == ALERTS  # exactly once each, across both processes
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
            log.close()
        # A stop that was asked for is not a worker failing.
        assert "exited with" not in (tmp_path / "serve.log").read_text()


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _is_dm(status: int, response: dict[str, object]) -> bool:
    return status == 200 and str(response.get("channel", "")).startswith("D")


def _dm_channels(fs: FakeSlack) -> set[str]:
    posts = fs.calls_to("chat.postMessage")
    return {str(c.response.get("channel")) for c in posts if _is_dm(c.status, c.response)}
