"""Partitioning and the message format: stable across processes, lossless, bounded messages."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

from securitybot.aer.events import ActivityEvent
from securitybot.aer.stream import CHUNK_EVENTS, decode, encode, messages, partition
from securitybot.config import AerStream


def test_an_org_maps_to_the_same_partition_in_every_process() -> None:
    # Python's hash() of a str differs per process (PYTHONHASHSEED); the partition must not.
    code = "from securitybot.aer.stream import partition; print(partition('T0ACME', 8))"
    outs = {
        subprocess.run(
            [sys.executable, "-c", code], env={"PYTHONHASHSEED": seed}, check=True,
            capture_output=True, text=True,
        ).stdout.strip()
        for seed in ("1", "2", "3")
    }  # fmt: skip
    assert outs == {str(partition("T0ACME", 8))}
    assert len({partition(f"T{i:04d}", 8) for i in range(200)}) == 8


def test_events_survive_the_round_trip() -> None:
    ev = ActivityEvent(
        "T0ACME", "U0001", datetime(2026, 1, 5, 10, 0, 1, 250_000, tzinfo=UTC), "file_download",
        "S1", "192.0.2.4", 7922, "US", "Slack_SSB/4.36", "desktop", 3, {"file": "F1"},
    )  # fmt: skip
    bare = ActivityEvent("T0ACME", "U0002", datetime(2026, 1, 5, tzinfo=UTC), "search")
    assert decode(encode([ev, bare])) == [ev, bare]


def test_messages_keep_each_partitions_order_and_stay_small() -> None:
    cfg = AerStream(partitions=4, subject="aer.events")
    ts = datetime(2026, 1, 5, tzinfo=UTC)
    events = [
        ActivityEvent(f"T{i % 7}", f"U{i:05d}", ts, "search") for i in range(CHUNK_EVENTS * 3)
    ]
    out = list(messages(cfg, events))
    assert all(len(decode(p)) <= CHUNK_EVENTS for _, p, _ in out)
    for part in range(4):
        mine = [e for s, p, _ in out if s == f"aer.events.{part}" for e in decode(p)]
        assert mine == [e for e in events if partition(e.org, 4) == part]
    assert len({msg_id for *_, msg_id in out}) == len(out)
    assert [m for *_, m in messages(cfg, events)] == [m for *_, m in out]  # retry: same ids
