"""Sustained alert ingest through the real HTTP endpoint, on SQLite and PostgreSQL.

    .venv/bin/python bench/ingest.py [--seconds 10] [--concurrency 64] [--backend both]

Targets on the 2-core reference machine: >= 2,000 alerts/s on SQLite, >= 3,000/s on PostgreSQL.
The load generator runs in its own process so the server's event loop is measured, not the client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import TOKEN, database, percentile, server


async def _load(base: str, seconds: float, concurrency: int, run_id: str) -> dict[str, object]:
    latencies: list[float] = []
    errors = 0
    counter = 0
    stop_at = time.perf_counter() + seconds
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn, headers=headers) as session:

        async def worker(wid: int) -> None:
            nonlocal errors, counter
            while time.perf_counter() < stop_at:
                counter += 1
                body = json.dumps({
                    "kind": "sensitive_command", "user": f"user{counter % 500}@example.com",
                    "title": "flurb -export", "dedup_key": f"{run_id}-{wid}-{counter}",
                    "details": {"host": f"host{counter % 50}", "command": "flurb -export"},
                })  # fmt: skip
                t0 = time.perf_counter()
                async with session.post(f"{base}/api/v1/alerts", data=body) as resp:
                    await resp.read()
                    if resp.status != 201:
                        errors += 1
                latencies.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return {"n": len(latencies), "elapsed": elapsed, "errors": errors, "lat": latencies}


def _client(base: str, seconds: float, concurrency: int, run_id: str, out: mp.Queue) -> None:  # type: ignore[type-arg]
    out.put(asyncio.run(_load(base, seconds, concurrency, run_id)))


def run(backend: str, seconds: float, concurrency: int, workers: bool) -> dict[str, float]:
    # By default the background workers are off so the figure is the ingest path alone; with
    # --with-workers every alert is also processed (here: escalated, Slack being unconfigured)
    # by the same process on the same two cores.
    extra = None if workers else {"scheduler": {"enabled": False}}
    with database(backend) as url, server(url, extra) as base:
        q: mp.Queue = mp.Queue()  # type: ignore[type-arg]
        # Warm-up: imports, connection pools, SQLite page cache.
        p = mp.Process(target=_client, args=(base, 1.0, 8, "warm", q))
        p.start()
        q.get()
        p.join()
        p = mp.Process(target=_client, args=(base, seconds, concurrency, "run", q))
        p.start()
        res = q.get()
        p.join()
    lat = res["lat"]
    return {
        "alerts_per_s": res["n"] / res["elapsed"],
        "p50_ms": percentile(lat, 50) * 1000,
        "p99_ms": percentile(lat, 99) * 1000,
        "errors": res["errors"],
        "n": res["n"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    ap.add_argument("--with-workers", action="store_true", help="also run dispatcher and sweep")
    args = ap.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    targets = {"sqlite": 2000, "postgres": 3000}
    for b in backends:
        r = run(b, args.seconds, args.concurrency, args.with_workers)
        verdict = "OK" if r["alerts_per_s"] >= targets[b] and not r["errors"] else "BELOW TARGET"
        print(
            f"ingest {b:8s}: {r['alerts_per_s']:7.0f} alerts/s  p50 {r['p50_ms']:6.1f} ms  "
            f"p99 {r['p99_ms']:6.1f} ms  ({r['n']} alerts, {r['errors']} errors, "
            f"concurrency {args.concurrency}, workers {'on' if args.with_workers else 'off'})  "
            f"target {targets[b]}/s: {verdict}"
        )


if __name__ == "__main__":
    main()
