"""How late do escalations fire? 10,000 pending alerts with deadlines spread over a minute.

    .venv/bin/python bench/escalation.py [--alerts 10000] [--spread 60] [--interval 1.0]
                                          [--backend sqlite|postgres|both]

Alerts are seeded as `awaiting_ack` with `respond_by` spread evenly over the next --spread
seconds; the real deadline sweep (`securitybot.flows.sweep.sweep_overdue`, the function the
scheduler runs every `scheduler.sweep_interval`) then runs at --interval. Lateness is the time
between an alert's deadline and its `alert.deadline_passed` audit row (written in the same
transaction as the escalation and its outbox post). Target: every escalation within 2 s.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import database, percentile
from securitybot.flows.sweep import sweep_overdue
from securitybot.store.db import Database, migrate
from securitybot.store.models import Alert, AuditLog, utcnow


def seed(db: Database, n: int, spread: float, lead: float) -> datetime:
    now = utcnow()
    rows = [
        {
            "kind": "default",
            "severity": "medium",
            "source": "bench",
            "dedup_key": f"e{i}",
            "user_given": f"u{i}@example.com",
            "user_id": f"U{i:06d}",
            "title": "bench",
            "description": "",
            "details": {},
            "status": "awaiting_ack",
            "respond_by": now + timedelta(seconds=lead + spread * i / n),
            "policy": {"ack_timeout": 600, "duo_timeout": 120},
            "dm_channel": f"DU{i}",
            "dm_ts": "1.0",
            "version": 1,
            "escalation_tier": 0,
            "created_at": now,
            "updated_at": now,
        }
        for i in range(n)
    ]
    with db.write() as session:
        for start in range(0, n, 2000):
            session.execute(insert(Alert), rows[start : start + 2000])
    return now


def run(backend: str, n: int, spread: float, interval: float) -> dict[str, float]:
    with database(backend) as url:
        db = Database.from_url(url)
        migrate(db.engine)
        lead = 3.0
        seeded_at = seed(db, n, spread, lead)
        durations: list[float] = []
        busy: list[float] = []
        done = 0
        stop_at = time.monotonic() + lead + spread + 30
        while done < n and time.monotonic() < stop_at:
            t0 = time.perf_counter()
            changed = sweep_overdue(db)
            took = time.perf_counter() - t0
            durations.append(took)
            if changed:
                busy.append(took)
            done += changed
            time.sleep(max(0.0, interval - took))
        with db.read() as session:
            rows = session.execute(
                select(Alert.dedup_key, AuditLog.created_at)
                .join(AuditLog, AuditLog.alert_id == Alert.id)
                .where(AuditLog.action == "alert.deadline_passed")
            ).all()
        db.dispose()
    # respond_by is cleared on escalation, so recompute each alert's seeded deadline.
    late = [
        (fired - seeded_at).total_seconds() - (lead + spread * int(key[1:]) / n)
        for key, fired in rows
    ]
    idle = [d for d in durations if d not in busy]
    return {
        "escalated": len(late),
        "p50": percentile(late, 50), "p99": percentile(late, 99), "max": max(late),
        "sweep_idle_ms": percentile(idle, 50) * 1000 if idle else float("nan"),
        "sweep_busy_ms": percentile(busy, 50) * 1000, "sweep_max_ms": max(durations) * 1000,
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--alerts", type=int, default=10_000)
    ap.add_argument("--spread", type=float, default=60.0)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = ap.parse_args()
    for b in ["sqlite", "postgres"] if args.backend == "both" else [args.backend]:
        r = run(b, args.alerts, args.spread, args.interval)
        ok = "OK" if r["max"] <= 2.0 and r["escalated"] == args.alerts else "BELOW TARGET"
        print(
            f"escalation {b:8s}: {r['escalated']:.0f}/{args.alerts} escalated; lateness p50 "
            f"{r['p50']:.2f} s p99 {r['p99']:.2f} s max {r['max']:.2f} s (sweep every "
            f"{args.interval:g} s); sweep cost idle {r['sweep_idle_ms']:.1f} ms, busy "
            f"{r['sweep_busy_ms']:.1f} ms, max {r['sweep_max_ms']:.1f} ms  target max <= 2 s: {ok}"
        )


if __name__ == "__main__":
    main()
