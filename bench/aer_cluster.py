"""A real AER cluster for tests and benchmarks: `securitybot serve` + `securitybot aer worker`s
on PostgreSQL and NATS JetStream, and a workload with planted attacks whose answers are known.

Used by ``tests/aer_stream`` (20,000 events, one worker killed) and ``bench/aer.py`` (200,000
events for 50 orgs, 1 and 2 workers).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import yaml

from bench.aer_engine import ASNS, HOME, UAS
from bench.common import TOKEN, free_port, ingest_config

NATS_URL = os.environ.get("SECURITYBOT_TEST_NATS_URL", "nats://127.0.0.1:4222")
# aer.stream.signing_key of every test and bench cluster (the API signs, workers verify).
SIGNING_KEY = "test-aer-stream-signing-key-0123456789abcdef"
TOR_IPS = ["198.51.100.7", "198.51.100.23"]  # written to the cluster's own Tor list file
BATCH = 10_000
ACTIONS = [("message_post", 50), ("file_download", 20), ("search", 15), ("api_call", 15)]
COUNTED = {"file_download", "search", "api_call"}  # volume actions: aer_counters rows
BURST = 400  # file downloads by one user in the live hour: above the cold-start 300


@dataclass
class Workload:
    batches: list[bytes]
    total: int
    counted: dict[tuple[str, str], int]  # (org, action) -> events the counters must add up to
    tor: set[tuple[str, str]] = field(default_factory=set)  # (org, user): one reset each
    bursts: set[tuple[str, str]] = field(default_factory=set)  # (org, user): excessive_downloads


def workload(n: int, orgs: int, seed: int, users_per_org: int = 40) -> Workload:
    """``n`` ordinary events over ``orgs`` orgs with one Tor sign-in in every other org and a
    download burst in every fifth, interleaved through the whole stream.

    Ordinary users keep one session, IP, ASN, country and client each, and stay far below
    every volume threshold, so the planted attacks are the only anomalies there can be.
    """
    rnd = random.Random(seed)
    now = datetime.now(UTC)
    names, weights = zip(*ACTIONS, strict=True)
    people = []
    for o in range(orgs):
        org = f"T{o:04d}BENCH"
        for u in range(users_per_org):
            k = rnd.randrange(len(HOME))
            ua, client = rnd.choice(UAS)
            ip = f"10.{o}.{u}.{rnd.randrange(1, 255)}"
            people.append((org, f"U{u:05d}X{o:04d}", HOME[k], ASNS[k], ip, ua, client))
    rows: list[dict[str, Any]] = []
    for i in range(n):
        # Everyone's first event comes early: a profile exists before any attack.
        person = people[i] if i < len(people) else rnd.choice(people)
        org, user, country, asn, ip, ua, client = person
        rows.append({"org": org, "user": user, "action": rnd.choices(names, weights)[0],
                     "session": f"S{user}", "ip": ip, "asn": asn, "country": country,
                     "user_agent": ua, "client": client})  # fmt: skip
    load = Workload([], 0, {})
    for o in range(orgs):
        org, user, country, asn, ip, ua, client = people[o * users_per_org]
        if o % 2 == 0:  # the same user, session and client, now through a Tor exit
            at = rnd.randrange(len(people), len(rows))
            rows.insert(at, {"org": org, "user": user, "action": "message_post",
                             "session": f"S{user}", "ip": rnd.choice(TOR_IPS),
                             "user_agent": ua, "client": client})  # fmt: skip
            load.tor.add((org, user))
        if o % 5 == 0:
            burster = people[o * users_per_org + 1]
            b_org, b_user, b_country, b_asn, b_ip, b_ua, b_client = burster
            for _ in range(BURST):
                at = rnd.randrange(len(rows))
                rows.insert(at, {"org": b_org, "user": b_user, "action": "file_download",
                                 "session": f"S{b_user}", "ip": b_ip, "asn": b_asn,
                                 "country": b_country, "user_agent": b_ua,
                                 "client": b_client})  # fmt: skip
            load.bursts.add((b_org, b_user))
    # All in the live window and in the current hour bucket (a burst split over two hours
    # would cross no threshold): from at most nine minutes ago, never before the hour began.
    hour = now.replace(minute=0, second=0, microsecond=0)
    start = max(now - timedelta(minutes=9), hour)
    step = (now - start) / len(rows)
    for i, row in enumerate(rows):
        row["ts"] = (start + step * i).isoformat()
        if row["action"] in COUNTED:
            key = (row["org"], row["action"])
            load.counted[key] = load.counted.get(key, 0) + 1
    load.total = len(rows)
    for i in range(0, len(rows), BATCH):
        load.batches.append("\n".join(json.dumps(r) for r in rows[i : i + BATCH]).encode())
    return load


class Cluster:
    """One server and any number of workers sharing a config, a database and a stream."""

    def __init__(
        self, db_url: str, tmp: Path, partitions: int = 8, lease: float = 2.0,
        aer: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        """``aer`` adds to the cluster's ``aer`` section (e.g. a ``reset_budget``)."""
        run = uuid.uuid4().hex[:10]
        self.stream = f"AERT{run}"
        self.subject = f"t{run}.aer.events"
        self.db_url, self.tmp = db_url, tmp
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        tor = tmp / "tor.txt"
        tor.write_text("# test list\n" + "\n".join(TOR_IPS) + "\n")
        self.stream_cfg = {
            "url": NATS_URL, "stream": self.stream, "subject": self.subject,
            "partitions": partitions, "lease": lease, "batch": 1000, "signing_key": SIGNING_KEY,
        }  # fmt: skip
        cfg = {
            "database": {"url": db_url},
            "server": {"host": "127.0.0.1", "port": self.port},
            "ingest": ingest_config(events=True),
            "logging": {"level": "WARNING"},
            "aer": {
                "enabled": True,
                "tor_list": str(tor),
                "stream": self.stream_cfg,
                "contacts": {"*": {"primary_owner": "UOWNER0001", "security_admins": ["USEC0001"]}},
                **(aer or {}),
            },
        }
        self.config = tmp / "config.yaml"
        self.config.write_text(yaml.safe_dump(cfg))
        self.exe = [sys.executable, "-m", "securitybot"]
        self.workers: list[subprocess.Popen[bytes]] = []
        self.server: subprocess.Popen[bytes] | None = None
        self.engine = sa.create_engine(_psycopg(db_url))

    def migrate(self) -> None:
        subprocess.run([*self.exe, "migrate", "--config", str(self.config)], check=True,
                       capture_output=True)  # fmt: skip

    def start_server(self) -> None:
        # The server's outbox gives up on AER's Slack jobs (no Slack here): its log is a file.
        log = (self.tmp / "server.log").open("ab")
        cmd = [*self.exe, "serve", "--config", str(self.config)]
        self.server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("server did not become healthy")

    def start_worker(self) -> subprocess.Popen[bytes]:
        cmd = [*self.exe, "aer", "worker", "--config", str(self.config)]
        log = (self.tmp / f"worker{len(self.workers)}.log").open("ab")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        self.workers.append(proc)
        return proc

    def sql(self, query: str) -> list[Any]:
        with self.engine.connect() as c:
            return list(c.execute(sa.text(query), {"s": self.stream}))

    def wait_workers(self, n: int, timeout: float = 60) -> None:
        """Until ``n`` workers heartbeat and every partition is held by one of them."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            alive = self.sql("SELECT count(*) FROM aer_workers WHERE stream = :s")[0][0]
            owners = self.sql(
                "SELECT owner, count(*) FROM aer_partitions WHERE stream = :s GROUP BY owner"
            )
            held = [o for o, _ in owners if o is not None]
            if alive >= n and len(held) == n and all(o is not None for o, _ in owners):
                return
            time.sleep(0.2)
        raise RuntimeError(f"{n} workers did not share the partitions")

    def post_all(self, load: Workload, batches: list[bytes] | None = None) -> None:
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-ndjson"}
        with httpx.Client(base_url=self.base, timeout=120) as http:
            for body in load.batches if batches is None else batches:
                resp = http.post("/api/v1/events", content=body, headers=headers)
                assert resp.status_code == 202, resp.text
                assert resp.json()["rejected"] == [], resp.text

    def wait_drained(self, timeout: float) -> None:
        wait_drained(self.engine, self.stream_cfg, timeout)

    def close(self) -> None:
        for proc in [*self.workers, *([self.server] if self.server else [])]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in [*self.workers, *([self.server] if self.server else [])]:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.engine.dispose()

        async def drop() -> None:
            import nats
            from nats.js.errors import NotFoundError

            nc = await nats.connect(NATS_URL)
            with suppress(NotFoundError):
                await nc.jetstream().delete_stream(self.stream)
            await nc.close()

        asyncio.run(drop())


def stream_heads(stream_cfg: dict[str, Any]) -> dict[int, int]:
    """Per partition, the stream sequence of its last message (0: none)."""

    async def heads() -> dict[int, int]:
        import nats
        from nats.js.errors import NotFoundError

        nc = await nats.connect(str(stream_cfg["url"]))
        js = nc.jetstream()
        out = {}
        for p in range(int(stream_cfg["partitions"])):
            try:
                msg = await js.get_last_msg(stream_cfg["stream"], f"{stream_cfg['subject']}.{p}")
                out[p] = int(msg.seq or 0)
            except NotFoundError:
                out[p] = 0
        await nc.close()
        return out

    return asyncio.run(heads())


def committed(engine: sa.Engine, stream: str) -> dict[int, int]:
    q = sa.text("SELECT partition, last_seq FROM aer_partitions WHERE stream = :s")
    with engine.connect() as c:
        return {int(p): int(seq) for p, seq in c.execute(q, {"s": stream})}


def wait_drained(engine: sa.Engine, stream_cfg: dict[str, Any], timeout: float) -> None:
    """Until the workers committed every message on the stream now."""
    heads = stream_heads(stream_cfg)
    deadline = time.time() + timeout
    while time.time() < deadline:
        done = committed(engine, str(stream_cfg["stream"]))
        if all(done.get(p, 0) >= seq for p, seq in heads.items()):
            return
        time.sleep(0.1)
    raise RuntimeError(
        f"workers did not catch up: {committed(engine, stream_cfg['stream'])} < {heads}"
    )


def _psycopg(url: str) -> str:
    return url if "+psycopg" in url else "postgresql+psycopg://" + url.split("://", 1)[1]


@contextmanager
def cluster(db_url: str, **kwargs: Any) -> Iterator[Cluster]:
    with tempfile.TemporaryDirectory() as tmp:
        c = Cluster(db_url, Path(tmp), **kwargs)
        try:
            c.migrate()
            yield c
        finally:
            c.close()
