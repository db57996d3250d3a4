"""Sustained alert ingest through the real HTTP endpoint, on SQLite and PostgreSQL.

    .venv/bin/python bench/ingest.py [--seconds 10] [--concurrency 64] [--backend both] [--signed]

For each store, in one run: the minimal-insert limit (bench/minimal.py: a bare Starlette app
doing the same group-committed insert), the service with its workers off, and the service with
its workers on (dispatcher and sweep processing every alert). The service is printed as a ratio
of the limit, which stays meaningful on a busy machine. Targets (issue #15): workers off
>= 0.7x the limit, workers on >= 1,000 alerts/s.
The load generator runs in its own process so the server's event loop is measured, not the client.
``--signed``: every request is HMAC-signed (``ingest.signing``, v2) instead of carrying a bearer
token, so the figure includes verifying the signature and using it up (``seen_signatures``).
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
from bench.common import (
    HMAC_SECRET,
    HMAC_SOURCE,
    TOKEN,
    database,
    minimal_server,
    percentile,
    server,
)
from securitybot.ingest.signing import signed_headers

PATH = "/api/v1/alerts"


def _signed(body: str) -> dict[str, str]:
    return signed_headers(HMAC_SOURCE, HMAC_SECRET, "POST", PATH, "", body.encode())


async def _load(
    base: str, seconds: float, concurrency: int, run_id: str, signed: bool
) -> dict[str, object]:
    latencies: list[float] = []
    errors = 0
    counter = 0
    stop_at = time.perf_counter() + seconds
    headers = {"Content-Type": "application/json"}
    if not signed:
        headers["Authorization"] = f"Bearer {TOKEN}"
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
                extra = _signed(body) if signed else None
                t0 = time.perf_counter()
                async with session.post(f"{base}{PATH}", data=body, headers=extra) as resp:
                    await resp.read()
                    if resp.status != 201:
                        errors += 1
                latencies.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return {"n": len(latencies), "elapsed": elapsed, "errors": errors, "lat": latencies}


def _client(base: str, seconds: float, concurrency: int, run_id: str, signed: bool,
            out: mp.Queue) -> None:  # type: ignore[type-arg]  # fmt: skip
    out.put(asyncio.run(_load(base, seconds, concurrency, run_id, signed)))


def run(
    backend: str, seconds: float, concurrency: int, mode: str, signed: bool = False
) -> dict[str, float]:
    # "off": the background workers are off, so the figure is the ingest path alone; "on": every
    # alert is also processed (here: escalated, Slack being unconfigured) by the same process on
    # the same two cores; "limit": the minimal-insert app.
    extra = None if mode == "on" else {"scheduler": {"enabled": False}}
    with (
        database(backend) as url,
        minimal_server(url) if mode == "limit" else server(url, extra) as base,
    ):
        q: mp.Queue = mp.Queue()  # type: ignore[type-arg]
        # Warm-up: imports, connection pools, SQLite page cache.
        p = mp.Process(target=_client, args=(base, 1.0, 8, "warm", signed, q))
        p.start()
        q.get()
        p.join()
        p = mp.Process(target=_client, args=(base, seconds, concurrency, "run", signed, q))
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
    ap.add_argument("--modes", default="limit,off,on",
                    help="which of limit (minimal insert), off, on (workers) to run")  # fmt: skip
    ap.add_argument("--signed", action="store_true",
                    help="HMAC-sign every request (v2) instead of a bearer token")  # fmt: skip
    args = ap.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    modes = [m for m in args.modes.split(",") if m]
    names = {"limit": "minimal-insert limit", "off": "service, workers off",
             "on": "service, workers on"}  # fmt: skip
    for b in backends:
        limit: float | None = None
        for mode in modes:
            r = run(b, args.seconds, args.concurrency, mode, args.signed and mode != "limit")
            if mode == "limit":
                limit = r["alerts_per_s"]
            ratio = f"{r['alerts_per_s'] / limit:5.2f}x limit" if limit else "           "
            verdict = ""
            if mode == "off" and limit:
                verdict = "  target >= 0.70x: " + ("OK" if r["alerts_per_s"] >= 0.7 * limit
                                                   else "BELOW TARGET")  # fmt: skip
            elif mode == "on":
                verdict = "  target >= 1000/s: " + ("OK" if r["alerts_per_s"] >= 1000
                                                    else "BELOW TARGET")  # fmt: skip
            print(
                f"ingest {b:8s} {names[mode]:22s}: {r['alerts_per_s']:7.0f} alerts/s  {ratio}  "
                f"p50 {r['p50_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms  ({r['n']} alerts, "
                f"{r['errors']} errors, concurrency {args.concurrency})"
                f"{' signed' if args.signed and mode != 'limit' else ''}{verdict}",
                flush=True,
            )


if __name__ == "__main__":
    main()
