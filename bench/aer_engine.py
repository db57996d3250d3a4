"""Benchmark the AER detection engine: events/s for ``observe`` on one core, and memory figures.

Run: ``.venv/bin/python bench/aer_engine.py [--events 1000000] [--seed 7]``

Events are generated up front (3 orgs, mostly ordinary traffic with a sprinkling of Tor exits,
cloud ASNs, travel and UA changes) so only ``DetectionEngine.observe`` is timed.
"""

from __future__ import annotations

import argparse
import gc
import random
import time
import tracemalloc
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from securitybot.aer.baselines import baseline_size_bytes, deep_sizeof, learn_baseline
from securitybot.aer.detect import DetectionEngine
from securitybot.aer.detection_config import DetectionConfig
from securitybot.aer.events import ActivityEvent
from securitybot.aer.reference_data import EXAMPLE_TOR_PATH, TorList
from securitybot.aer.rules import load_rules

ORGS = {"T0ACME": 3000, "T0GLOBEX": 1500, "T0INITECH": 500}
ACTIONS = [
    ("message_post", 40), ("channel_view", 20), ("file_download", 12), ("search", 12),
    ("api_call", 10), ("file_share", 3), ("message_delete", 2), ("admin_action", 1),
]  # fmt: skip
UAS = [
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) Slack_SSB/4.36.140", "desktop"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Slack_SSB/4.35.131", "desktop"),
    ("com.tinyspeck.chatlyio/23.10.10 (iPhone; iOS 17.0.3; Scale/3.00)", "mobile"),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/118.0 Safari/537.36", "web"),
]  # fmt: skip
HOME = ["US", "US", "US", "GB", "DE", "FR", "CA", "JP", "AU", "IN"]
ASNS = [7922, 7018, 701, 2856, 3320, 3215, 812, 2516, 1221, 55836]


def generate(n: int, seed: int) -> list[ActivityEvent]:
    rnd = random.Random(seed)
    start = datetime(2024, 5, 1, 8, tzinfo=UTC)
    tor = ["198.51.100.7", "198.51.100.23"]
    users = []
    for org, count in ORGS.items():
        for i in range(count):
            ua, client = rnd.choice(UAS)
            k = rnd.randrange(len(HOME))
            ip = f"10.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}"
            users.append((org, f"U{i:07d}{org[-3:]}", HOME[k], ASNS[k], ip, ua, client))
    names, weights = zip(*ACTIONS, strict=True)
    seconds = 3 * 3600  # three hour-buckets, so counters roll over during the run
    stamps = [start + timedelta(seconds=s) for s in range(seconds)]  # shared, as parsed events
    actions = rnd.choices(names, weights, k=n)
    empty: dict[str, Any] = {}
    events = []
    for i in range(n):
        org, user, country, asn, ip, ua, client = users[rnd.randrange(len(users))]
        session = f"S{user}{i * 3 // n}"  # a fresh session per user each hour-ish
        r = rnd.random()
        if r < 0.0005:
            ip = rnd.choice(tor)
        elif r < 0.001:
            asn, country = 16509, "US"
        elif r < 0.0015:
            country, asn = "SG", 4657
        elif r < 0.002:
            ua, client = "python-requests/2.31", client
        events.append(
            ActivityEvent(org, user, stamps[i * seconds // n], actions[i], session, ip, asn,
                          country, ua, client, 1, empty)
        )  # fmt: skip
    # A few scrapers: a burst of searches in the second hour, to exercise the volume path.
    for org in ORGS:
        burst_user = f"U{7:07d}{org[-3:]}"
        at = rnd.randrange(n // 3, 2 * n // 3)
        burst = [
            ActivityEvent(org, burst_user, events[at].ts, "search", "SBURST", "10.9.9.9", 7922,
                          "US", UAS[0][0], "desktop", 1, empty)
            for _ in range(1000)
        ]  # fmt: skip
        events[at:at] = burst
    return events


def baseline_memory(samples: int = 20_000) -> tuple[int, float]:
    counts = [random.Random(1).randrange(1, 40) for _ in range(500)]
    one = learn_baseline("T0ACME", "file_download", counts, computed_at=datetime.now(UTC))
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    keep = [
        learn_baseline(f"T{i:08d}", "file_download", counts[:50], computed_at=datetime.now(UTC))
        for i in range(samples)
    ]
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    per = (after - before - deep_sizeof([]) - 8 * len(keep)) / samples
    return baseline_size_bytes(one), per


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    rules = load_rules()
    orgs = {"T0GLOBEX": {"trusted_asns": [2856], "indicator_ips": ["203.0.113.9"]}}
    t0 = time.perf_counter()
    events = generate(args.events, args.seed)
    print(f"generated {len(events):,} events in {time.perf_counter() - t0:.1f}s (not timed)")

    engine = DetectionEngine(
        DetectionConfig.build(rules, orgs), TorList.from_file(EXAMPLE_TOR_PATH)
    )
    observe = engine.observe
    kinds: Counter[str] = Counter()
    gc.collect()
    gc.disable()  # measure the engine, not a collector pass over a million pre-built events
    t0 = time.perf_counter()
    for ev in events:
        found = observe(ev)
        if found:
            kinds.update(a.type for a in found)
    elapsed = time.perf_counter() - t0
    gc.enable()
    print(f"observe: {len(events) / elapsed:,.0f} events/s on one core ({elapsed:.2f}s total)")
    print(f"anomalies: {sum(kinds.values()):,} {dict(kinds.most_common())}")

    deltas = engine.drain_counters()
    users = sum(len(st.users) for st in engine._orgs.values())
    sessions = sum(len(st.sessions) for st in engine._orgs.values())
    state = deep_sizeof(engine._orgs)
    print(f"engine state: {state / 1e6:.1f} MB for {users:,} users, {sessions:,} sessions "
          f"({state / users:,.0f} B/user); {len(deltas):,} counter rows to persist")  # fmt: skip

    deep, traced = baseline_memory()
    print(f"baseline per (org, action): {deep} B deep sizeof (upper bound, strings counted), "
          f"{traced:.0f} B tracemalloc average")  # fmt: skip


if __name__ == "__main__":
    main()
