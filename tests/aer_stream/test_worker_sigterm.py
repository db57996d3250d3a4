"""SIGTERM to a real `securitybot aer worker`: it finishes the batch in hand, hands its partitions
back and exits, so the other worker takes them at once instead of a lease later."""

from __future__ import annotations

import signal
import time

from bench.aer_cluster import Cluster, cluster, workload
from tests.dbs import postgres_schema_url

LEASE = 60.0  # far longer than the test: only a hand-back can move the partitions this soon


def test_a_terminated_worker_hands_its_partitions_over_at_once(nats_url: str) -> None:
    load = workload(2_000, 10, seed=26)
    with postgres_schema_url() as url, cluster(url, partitions=4, lease=LEASE) as c:
        c.start_server()
        leaving, staying = c.start_worker(), c.start_worker()
        c.wait_workers(2)
        c.post_all(load, load.batches[: len(load.batches) // 2])

        started = time.monotonic()
        leaving.send_signal(signal.SIGTERM)
        assert leaving.wait(timeout=20) == 0
        exited = time.monotonic() - started
        assert exited < 10, f"the worker took {exited:.1f} s to exit"
        survivor = _name(c, staying.pid)
        while _owners(c) != {survivor}:
            assert time.monotonic() - started < LEASE / 4, "the partitions were not handed over"
            time.sleep(0.1)

        c.post_all(load, load.batches[len(load.batches) // 2 :])
        c.wait_drained(timeout=60)  # every event of both halves committed, by the survivor
        assert staying.poll() is None


def _name(c: Cluster, pid: int) -> str:
    """The worker's name as it holds leases: host-pid-random (securitybot.aer.worker)."""
    rows = c.sql("SELECT worker FROM aer_workers WHERE stream = :s")
    names = [w for (w,) in rows if f"-{pid}-" in w]
    assert len(names) == 1, rows
    return str(names[0])


def _owners(c: Cluster) -> set[str | None]:
    return {o for (o,) in c.sql("SELECT owner FROM aer_partitions WHERE stream = :s")}
