"""The reset budget with `aer.stream`: two `securitybot aer worker`s on PostgreSQL + JetStream.

Each worker decides for the orgs of its partitions; the budget is counted in SQL, so it holds
for two orgs on two workers at once and after an org's partition moves to the other worker
(which starts with none of the first one's memory).
"""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from typing import Any

import httpx

from bench.aer_cluster import TOR_IPS, Cluster, cluster
from bench.common import TOKEN
from securitybot.aer.stream import partition
from tests.dbs import postgres_schema_url

PARTITIONS = 8
BUDGET = {"count": 3, "per": "1h"}


def tor(org: str, users: list[str]) -> list[dict[str, Any]]:
    return [{"org": org, "user": u, "action": "login", "ip": TOR_IPS[0], "session": f"S{u}"}
            for u in users]  # fmt: skip


def post(c: Cluster, events: list[dict[str, Any]]) -> None:
    resp = httpx.post(f"{c.base}/api/v1/events", json=events, timeout=60,
                      headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
    assert resp.status_code == 202, resp.text
    assert resp.json()["rejected"] == [] and resp.json()["accepted"] == len(events)


def owners(c: Cluster) -> dict[int, str]:
    rows = c.sql("SELECT partition, owner FROM aer_partitions WHERE stream = :s")
    return {int(p): str(o) for p, o in rows}


def verdicts(c: Cluster) -> Counter[tuple[str, str]]:
    return Counter((o, v) for o, v in c.sql("SELECT org, verdict FROM aer_anomalies"))


def reset_jobs(c: Cluster) -> Counter[str]:
    rows = c.sql("SELECT payload FROM outbox WHERE effect = 'aer_reset'")
    return Counter((p if isinstance(p, dict) else json.loads(p))["org"] for (p,) in rows)


def test_the_budget_holds_for_two_workers_and_across_a_handover(nats_url: str) -> None:
    with (
        postgres_schema_url() as url,
        cluster(url, partitions=PARTITIONS, lease=2.0, aer={"reset_budget": BUDGET}) as c,
    ):
        c.start_server()
        workers = [c.start_worker(), c.start_worker()]
        c.wait_workers(2)
        held_by = owners(c)
        # Two orgs whose partitions two different workers hold.
        a = "T000A"
        b = next(
            f"T{i:03d}B"
            for i in range(1000)
            if held_by[partition(f"T{i:03d}B", PARTITIONS)] != held_by[partition(a, PARTITIONS)]
        )
        post(c, tor(a, [f"UA{i}X" for i in range(5)]) + tor(b, [f"UB{i}X" for i in range(5)]))
        c.wait_drained(timeout=60)
        assert verdicts(c) == {(a, "reset"): 3, (a, "held"): 2, (b, "reset"): 3, (b, "held"): 2}

        # The worker deciding for org a leaves (SIGTERM: it hands its partitions back); the
        # other one takes them and must find a's budget spent.
        leaving = held_by[partition(a, PARTITIONS)]
        doomed = next(w for w in workers if f"-{w.pid}-" in leaving)
        doomed.send_signal(signal.SIGTERM)
        doomed.wait(timeout=30)
        deadline = time.monotonic() + 30
        while len(set(owners(c).values())) != 1 or leaving in owners(c).values():
            assert time.monotonic() < deadline, owners(c)
            time.sleep(0.1)
        post(c, tor(a, ["UA5X", "UA6X"]))
        c.wait_drained(timeout=60)

        assert verdicts(c) == {(a, "reset"): 3, (a, "held"): 4, (b, "reset"): 3, (b, "held"): 2}
        assert reset_jobs(c) == {a: 3, b: 3}
        batches = c.sql("SELECT org, resets, status FROM aer_held_batches ORDER BY org")
        assert sorted(tuple(r) for r in batches) == [(a, 4, "open"), (b, 2, "open")]
        posts = c.sql("SELECT count(*) FROM outbox WHERE effect = 'aer_held_post'")
        assert posts[0][0] == 2  # one escalation per org, the second hold an update
