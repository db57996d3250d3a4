"""Issue 14 "Done means", distributed flavour: the black-box scenario of
``tests/aer_e2e/test_black_box.py`` on PostgreSQL + NATS JetStream, with detection in two
``securitybot aer worker`` processes, one of them SIGKILLed while it works off the back-fill.

Two weeks of history for two orgs through ``POST /api/v1/events`` (published to JetStream),
``securitybot aer refresh-baselines`` as another process, then the same 300-download burst in
both orgs: exactly one anomaly, in the quiet org, and no reset.
"""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from bench.aer_cluster import wait_drained
from securitybot.aer.stream import partition
from securitybot.demo import FakeDuo, FakeSlack
from tests.aer_e2e.conftest import BUSY, QUIET, aer_config, get, history
from tests.aer_e2e.test_black_box import _five_minute_burst, _ndjson, _server_process
from tests.aer_stream.conftest import drop_stream as _drop
from tests.aer_stream.conftest import stream_config
from tests.children import die_with_parent
from tests.dbs import postgres_schema_url
from tests.e2e.harness import free_port
from tests.e2e.served import REPO

SYNC_SECONDS = 1.0
PARTITIONS = 8


@pytest.fixture
def stream(nats_url: str) -> Iterator[dict[str, Any]]:
    cfg = stream_config(nats_url, partitions=PARTITIONS, lease="2s")
    del cfg["publish_timeout"]
    yield cfg

    asyncio.run(_drop(nats_url, cfg["stream"]))


def _owner(engine: sa.Engine, stream: str, part: int) -> str | None:
    q = sa.text("SELECT owner FROM aer_partitions WHERE stream = :s AND partition = :p")
    with engine.connect() as c:
        return c.execute(q, {"s": stream, "p": part}).scalar()


def _shared_out(engine: sa.Engine, stream: str, n: int) -> bool:
    q = sa.text("SELECT owner FROM aer_partitions WHERE stream = :s")
    with engine.connect() as c:
        owners = [o for (o,) in c.execute(q, {"s": stream})]
    return len(owners) == PARTITIONS and None not in owners and len(set(owners)) == n


def test_backfill_refresh_and_burst_on_jetstream_with_a_worker_killed(
    fs: FakeSlack, fd: FakeDuo, tmp_path: Path, stream: dict[str, Any]
) -> None:
    aer = aer_config(sync_interval=SYNC_SECONDS, stream=stream)
    with (
        postgres_schema_url() as db_url,
        _server_process(db_url, fs, fd, tmp_path, aer) as (
            bot,
            server,
        ),
    ):
        cmd = [sys.executable, "-m", "securitybot", "aer", "worker", "--config", str(server.config)]
        workers: dict[int, subprocess.Popen[bytes]] = {}
        metrics_ports: dict[int, int] = {}
        logs = []
        try:
            for _ in range(2):
                log = (tmp_path / f"worker{len(logs)}.log").open("ab")
                logs.append(log)
                port = free_port()
                proc = subprocess.Popen([*cmd, "--metrics-port", str(port)], cwd=REPO,
                                        stdout=log, stderr=log,
                                        preexec_fn=die_with_parent)  # fmt: skip
                workers[proc.pid] = proc
                metrics_ports[proc.pid] = port
            engine = bot.db.engine
            deadline = time.monotonic() + 90
            while not _shared_out(engine, stream["stream"], 2):
                assert time.monotonic() < deadline, "two workers did not share the partitions"
                assert all(p.poll() is None for p in workers.values())
                time.sleep(0.2)

            # 1. Back-fill both orgs; the quiet org's worker dies while working it off.
            quiet_owner = _owner(engine, stream["stream"], partition(QUIET, PARTITIONS))
            assert quiet_owner is not None
            sent: dict[str, int] = {}
            for org, per_hour in ((QUIET, range(1, 6)), (BUSY, range(350, 450))):
                events = history(org, per_hour)
                sent[org] = sum(e["count"] for e in events)
                out = _ndjson(bot, events)
                assert out["accepted"] == out["history"] == len(events) == 20 * 14 * 24
                assert out["rejected"] == [] and out["anomalies"] is None
                if org == QUIET:
                    doomed = next(p for pid, p in workers.items() if f"-{pid}-" in quiet_owner)
                    doomed.send_signal(signal.SIGKILL)
                    doomed.wait()
            wait_drained(engine, stream, timeout=90)  # the survivor took over and finished
            survivor = next(p for p in workers.values() if p is not doomed)
            assert survivor.poll() is None
            assert _shared_out(engine, stream["stream"], 1)

            # 2. Learn, from another process, as an operator would.
            cli = [sys.executable, "-m", "securitybot", "aer", "refresh-baselines",
                   "--config", str(server.config)]  # fmt: skip
            done = subprocess.run(cli, cwd=REPO, capture_output=True, text=True, timeout=90)
            assert done.returncode == 0, done.stderr
            assert "refreshed 2 baselines, 2 changed" in done.stdout
            time.sleep(3 * SYNC_SECONDS)  # workers check aer_versions every second

            # 3. The same burst in both orgs, judged by the surviving worker.
            quiet = _ndjson(bot, _five_minute_burst(QUIET, "UALICE"))
            busy = _ndjson(bot, _five_minute_burst(BUSY, "UCAROL"))
            assert (quiet["history"], busy["history"]) == (0, 0)
            wait_drained(engine, stream, timeout=60)
            rows = get(bot, "/api/v1/anomalies", limit=500)["anomalies"]
            assert [(r["org"], r["user"], r["type"]) for r in rows] == [
                (QUIET, "UALICE", "excessive_downloads")
            ]
            assert float(rows[0]["threshold"]) < float(rows[0]["observed"]) < 300
            # Nothing of the back-fill was lost or counted twice across the kill.
            q = sa.text("SELECT org, sum(count) FROM aer_counters GROUP BY org")
            with engine.connect() as c:
                totals = {org: int(n) for org, n in c.execute(q)}
            assert totals == {org: n + 300 for org, n in sent.items()}

            # 4. The survivor's own /metrics: what it judged, and its partitions' lag (none left).
            scraped = httpx.get(f"http://127.0.0.1:{metrics_ports[survivor.pid]}/metrics").text
            assert 'securitybot_aer_anomalies_total{type="excessive_downloads"' in scraped
            judged = re.search(r'^securitybot_aer_events_judged_total\{window="live"\} (\S+)$',
                               scraped, re.M)  # fmt: skip
            assert judged is not None and float(judged.group(1)) >= 1
            lags = re.findall(r"^securitybot_aer_partition_lag\{partition=\"\d+\"\} (\S+)$",
                              scraped, re.M)  # fmt: skip
            assert len(lags) == PARTITIONS and {float(v) for v in lags} == {0.0}
        finally:
            for p in workers.values():
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            for p in workers.values():
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
            for log in logs:
                log.close()
    assert fs.session_resets == []
