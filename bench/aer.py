"""Benchmark AER: the engine on one core, and end to end through ``POST /api/v1/events``.

Run: ``.venv/bin/python bench/aer.py [--engine-events 500000] [--http-events 200000]
[--backends sqlite,postgres] [--stream-events 200000 --stream-orgs 50 --workers 1,2]``

End to end starts a real ``securitybot serve`` per backend (bench/common.py) and posts
pre-serialised NDJSON batches of 10,000 events, so the figure covers HTTP, parsing, detection,
counter upserts and decision writes, not the client building JSON.

With ``aer.stream`` (``--workers``, ``--stream-modes``; PostgreSQL + NATS JetStream at
127.0.0.1:4222), events go through JetStream to ``securitybot aer worker`` processes, per
worker count in three modes: ``http`` posted to ``POST /api/v1/events`` (the whole path),
``direct`` published straight to JetStream by the bench (no server-side JSON parsing), and
``backlog`` published while the workers are paused, then timed from their resumption (what the
workers alone take). The workers hold their partitions before the clock starts; it stops when
every partition's committed position reached the stream's last message, so the figure includes
JetStream, detection and the SQL commits. The workload (bench/aer_cluster.py) plants Tor
sign-ins and download bursts; each run checks every planted anomaly was recorded exactly once
and the counters add up to the input.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.aer_cluster import cluster, workload
from bench.aer_engine import baseline_memory, generate
from bench.common import TOKEN, database, ingest_config, server
from securitybot.aer.detect import DetectionEngine
from securitybot.aer.detection_config import DetectionConfig
from securitybot.aer.events import ActivityEvent, parse_batch
from securitybot.aer.reference_data import EXAMPLE_TOR_PATH, TorList
from securitybot.aer.rules import load_rules
from securitybot.aer.stream import StreamPublisher
from securitybot.config import AerStream
from securitybot.store.models import utcnow

BATCH = 10_000
SENDERS = 1
# The in-process PostgreSQL target of docs/scaling.md; stream figures are shown against it.
TARGET_EVENTS_PER_S = 20_000


def engine_rate(events: list[ActivityEvent]) -> float:
    engine = DetectionEngine(
        DetectionConfig.build(load_rules()), TorList.from_file(EXAMPLE_TOR_PATH)
    )
    observe = engine.observe
    gc.collect()
    gc.disable()
    t0 = time.perf_counter()
    for ev in events:
        observe(ev)
    elapsed = time.perf_counter() - t0
    gc.enable()
    return len(events) / elapsed


def ndjson_batches(events: list[ActivityEvent]) -> list[bytes]:
    out = []
    for i in range(0, len(events), BATCH):
        lines = [
            json.dumps(
                {
                    "org": e.org,
                    "user": e.user,
                    "ts": e.ts.isoformat(),
                    "action": e.action,
                    "session": e.session,
                    "ip": e.ip,
                    "asn": e.asn,
                    "country": e.country,
                    "user_agent": e.user_agent,
                    "client": e.client,
                    "count": e.count,
                }
            )
            for e in events[i : i + BATCH]
        ]
        out.append("\n".join(lines).encode())
    return out


def post(http: httpx.Client, body: bytes, headers: dict[str, str]) -> int:
    resp = http.post("/api/v1/events", content=body, headers=headers)
    resp.raise_for_status()
    return int(resp.json()["anomalies"])


def http_rate(backend: str, batches: list[bytes], total: int) -> tuple[float, int]:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-ndjson"}
    with (
        database(backend) as url,
        server(
            url,
            {
                "aer": {"enabled": True, "tor_list": str(EXAMPLE_TOR_PATH)},
                "ingest": ingest_config(events=True),
            },
        ) as base,
        httpx.Client(base_url=base, timeout=120) as http,
    ):
        # Warm-up (imports, caches, connection pool) with a few events, not timed.
        http.post("/api/v1/events", content=batches[0][:2000].rsplit(b"\n", 1)[0], headers=headers)
        # One sender: a second one only adds GIL contention in a single server process.
        with ThreadPoolExecutor(SENDERS) as pool:
            t0 = time.perf_counter()
            answers = list(pool.map(lambda b: post(http, b, headers), batches))
            elapsed = time.perf_counter() - t0
        anomalies = sum(answers)
    return total / elapsed, anomalies


def stream_rate(n_events: int, orgs: int, workers: int, mode: str) -> dict[str, float]:
    """Events/s with ``workers`` worker processes, and whether the answers are right.

    The workers hold their partitions before the clock starts; it stops when every partition
    is committed up to the stream's last message. ``http``: posted to the server. ``direct``:
    published to JetStream by this process (no HTTP parsing). ``backlog``: published while the
    workers are paused (SIGSTOP), then the clock runs from SIGCONT: what the workers take.
    """
    load = workload(n_events, orgs, seed=20)
    events = []
    if mode != "http":
        for body in load.batches:
            accepted, _ = parse_batch(body, "application/x-ndjson", utcnow())
            events.append([ev for _, ev in accepted])
    # A long lease: paused workers must still hold their partitions when they resume.
    lease = 120.0 if mode == "backlog" else 5.0
    with database("postgres") as url, cluster(url, partitions=8, lease=lease) as c:
        c.start_server()
        procs = [c.start_worker() for _ in range(workers)]
        c.wait_workers(workers)
        if mode == "backlog":
            time.sleep(2)  # partitions started (consumers created) before the pause
            for p in procs:
                p.send_signal(signal.SIGSTOP)
        t0 = time.perf_counter()
        if mode == "http":
            c.post_all(load)
        else:
            asyncio.run(_publish(AerStream(**c.stream_cfg), events))
        posted = time.perf_counter() - t0
        if mode == "backlog":
            t0 = time.perf_counter()
            for p in procs:
                p.send_signal(signal.SIGCONT)
        c.wait_drained(timeout=1800)
        elapsed = time.perf_counter() - t0
        kinds = dict(c.sql("SELECT type, count(*) FROM aer_anomalies GROUP BY type"))
        counted = int(c.sql("SELECT coalesce(sum(count), 0) FROM aer_counters")[0][0])
    right = kinds == {
        "tor": len(load.tor),
        "excessive_downloads": len(load.bursts),
    } and counted == sum(load.counted.values())
    return {"rate": load.total / elapsed, "publish": load.total / posted,
            "events": load.total, "right": right}  # fmt: skip


async def _publish(cfg: AerStream, batches: list[list[ActivityEvent]]) -> None:
    publisher = StreamPublisher(cfg)
    try:
        for batch in batches:
            await publisher.publish(batch)
    finally:
        await publisher.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--engine-events", type=int, default=500_000)
    parser.add_argument("--http-events", type=int, default=200_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--stream-events", type=int, default=200_000)
    parser.add_argument("--stream-orgs", type=int, default=50)
    parser.add_argument("--workers", default="1,2", help="worker counts to run; empty: none")
    parser.add_argument("--stream-modes", default="http,direct,backlog")
    args = parser.parse_args()

    events = generate(args.engine_events, 7)
    print(f"engine: {engine_rate(events):,.0f} events/s on one core ({len(events):,} events)")
    deep, traced = baseline_memory()
    print(f"memory per (org, action) baseline: {traced:.0f} B (tracemalloc), {deep} B deep sizeof")

    http_events = generate(args.http_events, 11)
    batches = ndjson_batches(http_events)
    for backend in filter(None, args.backends.split(",")):
        rate, anomalies = http_rate(backend, batches, len(http_events))
        print(f"end to end via HTTP ({backend}): {rate:,.0f} events/s in batches of {BATCH:,} "
              f"({len(http_events):,} events, {anomalies:,} anomalies decided)")  # fmt: skip

    modes = {
        "http": "posted to POST /api/v1/events",
        "direct": "published straight to JetStream",
        "backlog": "a backlog on JetStream (workers only)",
    }
    for mode in filter(None, args.stream_modes.split(",")):
        rates = {}
        for n in [int(w) for w in args.workers.split(",") if w]:
            r = stream_rate(args.stream_events, args.stream_orgs, n, mode)
            rates[n] = r["rate"]
            print(f"through JetStream, {modes[mode]}, {n} worker(s): {r['rate']:,.0f} events/s "
                  f"({r['rate'] / TARGET_EVENTS_PER_S:.2f} of the {TARGET_EVENTS_PER_S:,}/s "
                  f"target; publishing {r['publish']:,.0f} events/s; {r['events']:,.0f} "
                  f"events, {args.stream_orgs} orgs; planted anomalies once each and counters "
                  f"exact: {'yes' if r['right'] else 'NO'})", flush=True)  # fmt: skip
        if 1 in rates and 2 in rates:
            print(f"{modes[mode]}: 2 workers / 1 worker = {rates[2] / rates[1]:.2f}x", flush=True)


if __name__ == "__main__":
    main()
