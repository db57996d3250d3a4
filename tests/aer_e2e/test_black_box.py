"""Issue 14 "Done means", in-process flavour: a real server process driven only by its documented
interface. Two weeks of history for two orgs through ``POST /api/v1/events``, ``securitybot aer
refresh-baselines`` run as another process, then one 300-download burst per org: exactly one
anomaly, in the quiet org.

History is sent the way a back-fill tool would aggregate it: one event per user-hour with
``count`` and the hour as ``ts`` (20 users x 336 hours per org), NDJSON, so the run stays fast.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

from securitybot.demo import FakeDuo, FakeSlack
from securitybot.store.db import Database, migrate
from tests.aer_e2e.conftest import BUSY, EVENTS_AUTH, QUIET, aer_config, aer_ingest, get, history
from tests.children import die_with_parent
from tests.e2e.harness import Bot, e2e_config, free_port, wait_until
from tests.e2e.served import REPO, Server

SYNC_SECONDS = 1.0


@contextmanager
def _server_process(
    db_url: str, fs: FakeSlack, fd: FakeDuo, tmp: Path, aer: dict[str, Any]
) -> Iterator[tuple[Bot, Server]]:
    """``securitybot serve`` as a child process; the schema is migrated from here first."""
    port = free_port()
    cfg = e2e_config(db_url, fs, fd, server={"host": "127.0.0.1", "port": port},
                     logging={"level": "WARNING"}, aer=aer, ingest=aer_ingest())  # fmt: skip
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    db = Database.from_url(db_url)
    migrate(db.engine)
    server = Server(path, port, tmp / "server.log")
    with server.log.open("ab") as out:
        server.proc = subprocess.Popen(server._cli("serve"), cwd=REPO, stdout=out, stderr=out,
                                       preexec_fn=die_with_parent)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=30) as http:
            # Generous: two cores shared by many jobs can make an interpreter start slowly.
            wait_until(lambda: _healthy(http, server), timeout=90, what="the server process")
            yield Bot(base, fs, fd, db, http), server
    finally:
        server.stop()
        db.dispose()


def _healthy(http: httpx.Client, server: Server) -> bool:
    assert server.proc is not None and server.proc.poll() is None, server.log.read_text()
    try:
        return http.get("/healthz", timeout=2).is_success
    except httpx.HTTPError:
        return False


def _ndjson(bot: Bot, events: list[dict[str, Any]]) -> dict[str, Any]:
    body = "\n".join(json.dumps(e) for e in events).encode()
    headers = {**EVENTS_AUTH, "Content-Type": "application/x-ndjson"}
    resp = bot.http.post("/api/v1/events", content=body, headers=headers)
    assert resp.status_code == 202, resp.text
    out: dict[str, Any] = resp.json()
    return out


def _five_minute_burst(org: str, user: str, n: int = 300) -> list[dict[str, Any]]:
    """``n`` downloads over the last five minutes, within the current hour: volume is judged
    per hour bucket, so a burst that straddled o'clock fired once in each (2 anomalies, not
    1, for the first five minutes of every hour)."""
    now = datetime.now(UTC)
    start = max(now - timedelta(minutes=5), now.replace(minute=0, second=0, microsecond=0))
    span = (now - start).total_seconds()
    return [
        {"org": org, "user": user, "action": "file_download", "session": f"S{user}",
         "ts": (start + timedelta(seconds=i * span / n)).isoformat(), "ip": "192.0.2.10"}
        for i in range(n)
    ]  # fmt: skip


def test_backfill_refresh_and_burst_give_one_anomaly_in_the_quiet_org_only(
    db_url: str, fs: FakeSlack, fd: FakeDuo, tmp_path: Path
) -> None:
    aer = aer_config(sync_interval=SYNC_SECONDS)
    with _server_process(db_url, fs, fd, tmp_path, aer) as (bot, server):
        # 1. Back-fill: about 3 downloads an hour per user in the quiet org, about 400 in the
        #    busy one (above the cold-start default of 300): all history, nothing judged.
        for org, per_hour in ((QUIET, range(1, 6)), (BUSY, range(350, 450))):
            events = history(org, per_hour)
            out = _ndjson(bot, events)
            assert out["accepted"] == out["history"] == len(events) == 20 * 14 * 24
            assert (out["rejected"], out["anomalies"]) == ([], 0)
        # 2. Learn, from another process, as an operator would.
        cli = [sys.executable, "-m", "securitybot", "aer", "refresh-baselines",
               "--config", str(server.config)]  # fmt: skip
        done = subprocess.run(cli, cwd=REPO, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert "refreshed 2 baselines, 2 changed" in done.stdout
        time.sleep(3 * SYNC_SECONDS)  # the running server polls aer_versions every second
        # 3. The same burst in both orgs.
        quiet = _ndjson(bot, _five_minute_burst(QUIET, "UALICE"))
        busy = _ndjson(bot, _five_minute_burst(BUSY, "UCAROL"))
        assert (quiet["history"], busy["history"]) == (0, 0)
        assert (quiet["anomalies"], busy["anomalies"]) == (1, 0)
        rows = get(bot, "/api/v1/anomalies", limit=500)["anomalies"]
        assert [(r["org"], r["user"], r["type"]) for r in rows] == [
            (QUIET, "UALICE", "excessive_downloads")
        ]
        # Flagged as soon as the learned threshold (the quiet org's floor) was crossed.
        assert float(rows[0]["threshold"]) < float(rows[0]["observed"]) < 300
    # The back-fill reset nobody; the one anomaly's notice is the only Slack traffic AER made.
    assert fs.session_resets == []
