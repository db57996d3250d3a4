"""How fast one ``securitybot serve`` publishes AER events from HTTP to JetStream (issue 25.6).

Run: ``.venv/bin/python bench/aer_publish.py [--events 200000] [--senders 2] [--rounds 3]``

Starts a real ``securitybot serve`` with ``aer.stream`` (NATS JetStream at 127.0.0.1:4222, a
stream of its own, no workers: only publishing is measured) and posts pre-serialised NDJSON
batches of 10,000 events to ``POST /api/v1/events``; every answer must be 202 with every
event accepted. In the same run, the same events go to a stream of their own through a
minimal publisher: nats-py in this process, the same messages (the same 500-event chunks per
partition, so the same bytes), each batch's messages published at once and then one wait for
all their acknowledgements; no HTTP, no parsing, no validation. The service is reported
against the issue's limit (20,000 events/s) and as a ratio of the minimal publisher, which
holds up when the machine is busy where absolute figures do not. Rounds alternate the two.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.aer_cluster import NATS_URL, SIGNING_KEY, workload
from bench.common import TOKEN, database, ingest_config, server
from securitybot.aer.events import parse_batch
from securitybot.aer.stream import messages
from securitybot.config import AerStream
from securitybot.store.models import utcnow

LIMIT = 20_000  # events/s one serve process must publish from HTTP (issue 25.6)


def stream_cfg() -> dict[str, Any]:
    run = uuid.uuid4().hex[:10]
    return {"url": NATS_URL, "stream": f"AERB{run}", "subject": f"b{run}.aer.events",
            "partitions": 8, "signing_key": SIGNING_KEY}  # fmt: skip


def serve_cpu() -> float:
    """CPU seconds used so far by the ``securitybot serve`` this process started."""
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and b"serve" in cmdline:
            return (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    raise RuntimeError("securitybot serve not found")


def http_rate(base: str, batches: list[bytes], total: int, senders: int) -> tuple[float, float]:
    """(events/s, events per CPU second of the serve process)."""
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-ndjson"}

    def post(http: httpx.Client, body: bytes) -> None:
        resp = http.post("/api/v1/events", content=body, headers=headers)
        assert resp.status_code == 202, resp.text
        assert resp.json()["rejected"] == [], resp.text[:300]

    clients = [httpx.Client(base_url=base, timeout=120) for _ in range(senders)]
    try:
        post(clients[0], batches[0])  # warm-up, not timed
        with ThreadPoolExecutor(senders) as pool:
            cpu0, t0 = serve_cpu(), time.perf_counter()
            list(pool.map(lambda ib: post(clients[ib[0] % senders], ib[1]), enumerate(batches)))
            elapsed, cpu = time.perf_counter() - t0, serve_cpu() - cpu0
    finally:
        for c in clients:
            c.close()
    return total / elapsed, total / cpu


async def minimal_rate(
    cfg: AerStream, chunks: list[list[tuple[str, bytes, str]]], total: int
) -> float:
    """nats-py alone: per batch, every message with publish_async, then one wait for all."""
    import nats
    from nats.js import api

    nc = await nats.connect(cfg.url)
    js = nc.jetstream()
    await js.add_stream(api.StreamConfig(name=cfg.stream, subjects=[f"{cfg.subject}.*"],
                                         storage=api.StorageType.FILE))  # fmt: skip
    try:
        t0 = time.perf_counter()
        for batch in chunks:
            futures = [
                await js.publish_async(s, p, headers={"Nats-Msg-Id": i}) for s, p, i in batch
            ]
            await asyncio.gather(*futures)
        elapsed = time.perf_counter() - t0
        info = await js.stream_info(cfg.stream)
        assert info.state.messages == sum(len(b) for b in chunks), info.state
    finally:
        await js.delete_stream(cfg.stream)
        await nc.close()
    return total / elapsed


async def drop(cfg: AerStream) -> int:
    """Delete the stream; how many messages it held."""
    import nats

    nc = await nats.connect(cfg.url)
    js = nc.jetstream()
    try:
        return int((await js.stream_info(cfg.stream)).state.messages)
    finally:
        await js.delete_stream(cfg.stream)
        await nc.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--senders", type=int, default=2, help="concurrent HTTP clients")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    load = workload(args.events, 50, seed=25)
    served = AerStream(**stream_cfg())
    chunks = []
    for body in load.batches:  # what the service publishes, built the same way
        accepted, _ = parse_batch(body, "application/x-ndjson", utcnow())
        chunks.append([(m.subject, m.payload, m.msg_id)
                       for m in messages(served, [ev for _, ev in accepted])])  # fmt: skip
    n_msgs = sum(len(c) for c in chunks)
    print(f"{load.total:,} events in {len(load.batches)} batches of up to 10,000, "
          f"{n_msgs:,} messages of up to 500 events", flush=True)  # fmt: skip
    rates: dict[str, list[float]] = {"serve": [], "minimal": [], "cpu": []}
    serve_stream = stream_cfg()
    with (
        database("sqlite") as url,
        server(
            url,
            {
                "aer": {"enabled": True, "stream": serve_stream},
                "ingest": ingest_config(events=True),
            },
        ) as base,
    ):
        for r in range(args.rounds):  # the minimal publisher's stream is made anew each round
            rates["minimal"].append(asyncio.run(minimal_rate(served, chunks, load.total)))
            # Other orgs each round, so the service's stream stores every round anew (the same
            # bodies again would be dropped as duplicates by their message ids).
            bodies = [b.replace(b'BENCH"', f'BENCH{r}"'.encode()) for b in load.batches]
            rate, per_cpu = http_rate(base, bodies, load.total, args.senders)
            rates["serve"].append(rate)
            rates["cpu"].append(per_cpu)
            mini = rates["minimal"][-1]
            print(f"round {r + 1}: serve {rate:,.0f} events/s ({per_cpu:,.0f} per CPU second "
                  f"of serve), minimal {mini:,.0f} events/s", flush=True)  # fmt: skip
    stored = asyncio.run(drop(AerStream(**serve_stream)))
    print(f"the service's stream held {stored:,} messages after {args.rounds} rounds")
    serve, minimal = statistics.median(rates["serve"]), statistics.median(rates["minimal"])
    per_cpu = statistics.median(rates["cpu"])
    print(f"serve, POST /api/v1/events -> JetStream ({args.senders} senders): {serve:,.0f} "
          f"events/s (median of {args.rounds}); limit {LIMIT:,}/s: {serve / LIMIT:.2f}x the "
          f"limit")  # fmt: skip
    print(f"serve's own CPU: {per_cpu:,.0f} events per CPU second (what one free core would "
          f"publish); limit {LIMIT:,}/s: {per_cpu / LIMIT:.2f}x the limit; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")  # fmt: skip
    print(f"minimal nats-py publisher, same messages: {minimal:,.0f} events/s; serve / minimal "
          f"= {serve / minimal:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
