"""Ingest-to-DM latency while the daily retention purge deletes many old rows.

    .venv/bin/python bench/purge.py [--rows 1000000] [--rate 100] [--seconds 30]
                                    [--backend sqlite|postgres|both]

For each backend: a throwaway database is migrated and seeded with --rows old rows (finished
alerts 500 days old, each with two done outbox jobs and one audit row: four rows an alert,
every one past `retention.alerts: 400d`, `retention.audit: 30d`, `retention.outbox: 14d`).
Then the real `securitybot serve` starts against the fake Slack and Duo of bench/latency.py,
with `retention.run_at` set to the next whole minute at least a baseline's length away, so
the purge runs as in production: from the server's own scheduler, under its lease, in
batches of `retention.batch_size`. Alerts arrive at --rate per second (one new user each):
first for --seconds before the purge starts (the baseline), then for --seconds from the moment
the purge takes its lease. Prints the ingest-to-DM p50/p99 of both phases beside the target
p99 (250 ms, bench/latency.py), the purge's rows, time and rows per second, and whether the
purge was still running when the measured phase ended (it should be: else raise --rows).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import database, percentile
from bench.latency import SECURITY_CHANNEL, TARGET_P99_MS, _load, _user_id, _wait_dms, serve
from bench.latency import _email as email
from securitybot.demo import FakeDuo, FakeSlack
from securitybot.store.db import Database, migrate
from securitybot.store.models import Alert, AuditLog, Outbox
from securitybot.store.privacy_models import JobLease

ROWS_PER_ALERT = 4  # the alert, two done jobs, one audit row
CHUNK = 5_000


def seed(url: str, rows: int) -> int:
    """Insert ``rows`` purgeable rows in big transactions; returns how many were inserted."""
    db = Database.from_url(url, pool_size=2)
    migrate(db.engine)
    old = datetime.now(UTC) - timedelta(days=500)
    alerts = rows // ROWS_PER_ALERT
    started = time.perf_counter()
    with db.engine.begin() as conn:
        first = conn.execute(sa.select(sa.func.coalesce(sa.func.max(Alert.id), 0))).scalar_one()
    for low in range(0, alerts, CHUNK):
        ids = range(first + 1 + low, first + 1 + min(alerts, low + CHUNK))
        with db.engine.begin() as conn:
            conn.execute(sa.insert(Alert), [
                {"id": i, "kind": "sensitive_command", "severity": "high", "source": "old",
                 "user_given": f"old{i % 5000}@bench.example", "user_id": f"UO{i % 5000:05d}",
                 "title": "flurb -export", "description": "", "details": {"host": "h"},
                 "status": "resolved", "outcome": "confirmed", "policy": {}, "version": 3,
                 "escalation_tier": 0, "created_at": old, "updated_at": old} for i in ids
            ])  # fmt: skip
            conn.execute(sa.insert(Outbox), [
                {"alert_id": i, "effect": e, "payload": {}, "status": "done", "attempts": 1,
                 "claims": 1, "next_attempt_at": old, "created_at": old, "done_at": old}
                for i in ids for e in ("send_dm", "update_dm")
            ])  # fmt: skip
            conn.execute(sa.insert(AuditLog), [
                {"alert_id": i, "actor": "system", "action": "resolved", "details": {},
                 "created_at": old} for i in ids
            ])  # fmt: skip
    if db.is_postgres:  # explicit ids: move the sequence past them for the service's inserts
        with db.engine.begin() as conn:
            conn.execute(sa.text("SELECT setval(pg_get_serial_sequence('alerts', 'id'), "
                                 "(SELECT max(id) FROM alerts))"))  # fmt: skip
    db.dispose()
    print(f"  seeded {alerts * ROWS_PER_ALERT:,} old rows in {time.perf_counter() - started:.0f} s",
          flush=True)  # fmt: skip
    return alerts * ROWS_PER_ALERT


def _lease(url: str) -> tuple[str | None, datetime | None]:
    db = Database.from_url(url, pool_size=1)
    try:
        with db.read() as s:
            row = s.execute(sa.select(JobLease.owner, JobLease.done_at)
                            .where(JobLease.name == "retention_purge")).first()  # fmt: skip
    finally:
        db.dispose()
    return (None, None) if row is None else (row.owner, row.done_at)


def _phase(base: str, fs: FakeSlack, users: list[int], rate: float, tag: str) -> list[float]:
    res = _load(base, users, rate, 32, tag)
    started: dict[str, float] = res["started"]
    dm_at = _wait_dms(fs, set(started), timeout=120)
    return [dm_at[u] - t for u, t in started.items() if u in dm_at]


def run(backend: str, rows: int, rate: float, seconds: float) -> dict[str, Any]:
    per_phase = int(rate * seconds)
    warm = 50
    with FakeSlack() as fs, FakeDuo() as fd, database(backend) as url:
        for i in range(2 * per_phase + warm):
            fs.add_user(_user_id(i), email(i), real_name=f"Bench User{i}", first_name="Bench")
        fs.add_channel(SECURITY_CHANNEL)
        seeded = seed(url, rows)
        # The purge starts at the next whole minute far enough away for start-up and baseline.
        at = datetime.now(UTC) + timedelta(seconds=seconds + 40)
        at = (at + timedelta(minutes=1)).replace(second=0, microsecond=0)
        retention = {"retention": {"alerts": "400d", "audit": "30d", "outbox": "14d",
                                   "run_at": f"{at:%H:%M}"}}  # fmt: skip
        with serve(url, fs, fd, None, backend, extra=retention) as (base, _pid):
            warm_users = list(range(2 * per_phase, 2 * per_phase + warm))
            _load(base, warm_users, 50, 8, "warm")
            _wait_dms(fs, {_user_id(i) for i in warm_users}, timeout=30)
            print(f"  baseline: {per_phase} alerts at {rate:g}/s", flush=True)
            baseline = _phase(base, fs, list(range(per_phase)), rate, "base")
            print(f"  waiting for the purge at {at:%H:%M} UTC", flush=True)
            while _lease(url)[0] is None and _lease(url)[1] is None:
                time.sleep(0.05)
            purge_started = time.time()
            print(f"  during the purge: {per_phase} alerts at {rate:g}/s", flush=True)
            during = _phase(base, fs, list(range(per_phase, 2 * per_phase)), rate, "purge")
            measured_until = time.time()
            still_running = _lease(url)[1] is None
            while _lease(url)[1] is None:
                time.sleep(0.5)
            done_at = _lease(url)[1]
            assert done_at is not None
            purge_s = done_at.timestamp() - purge_started
    return {
        "rows": seeded, "purge_s": purge_s, "rows_per_s": seeded / max(purge_s, 1e-9),
        "covered": still_running, "measured_s": measured_until - purge_started,
        "base_n": len(baseline), "base_p50": percentile(baseline, 50) * 1e3,
        "base_p99": percentile(baseline, 99) * 1e3, "n": len(during),
        "p50": percentile(during, 50) * 1e3, "p99": percentile(during, 99) * 1e3,
        "missing": 2 * per_phase - len(baseline) - len(during),
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = ap.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    for b in backends:
        print(f"{b}:", flush=True)
        r = run(b, args.rows, args.rate, args.seconds)
        ok = "OK" if r["p99"] < TARGET_P99_MS else "ABOVE TARGET"
        print(
            f"  without purge: {r['base_n']} DMs, p50 {r['base_p50']:.0f} ms, "
            f"p99 {r['base_p99']:.0f} ms  (target p99 < {TARGET_P99_MS:.0f} ms)"
        )
        print(
            f"  during purge:  {r['n']} DMs, p50 {r['p50']:.0f} ms, p99 {r['p99']:.0f} ms  "
            f"(target p99 < {TARGET_P99_MS:.0f} ms: {ok}; "
            f"{r['p99'] / max(r['base_p99'], 1e-9):.1f}x the baseline)"
        )
        state = "still running" if r["covered"] else "FINISHED EARLY"
        print(f"  purge: {r['rows']:,} rows in {r['purge_s']:.0f} s "
              f"({r['rows_per_s']:,.0f} rows/s); {state} when the {r['measured_s']:.0f} s "
              f"measured phase ended; missing DMs: {r['missing']}")  # fmt: skip


if __name__ == "__main__":
    main()
