"""Nothing doubled under faults: a burst of alerts while the database keeps losing connections.

    .venv/bin/python bench/faults.py [--alerts 2000] [--kill-every 0.5] 2>server.log

Starts `securitybot serve` on a throwaway PostgreSQL schema with the Slack and Duo fakes in
this process, ingests --alerts alerts (one user each, so one DM each), and every --kill-every
seconds terminates every database connection the service holds (`pg_terminate_backend` on its
own `application_name`). Nobody answers, so every alert escalates. Prints the alerts, the
DMs, escalation posts and reminders Slack accepted, and the duplicates among them.

The helpers here are shared with tests/e2e/test_faults.py, which runs the same scenario smaller.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from securitybot.demo import Call, FakeSlack
from securitybot.slack.tiers import lifted

SECURITY_CHANNEL = "CSECURITY"


def add_users(fs: FakeSlack, n: int) -> None:
    for i in range(n):
        fs.add_user(f"UF{i:04d}", f"f{i}@example.com", first_name=f"F{i}")


def post_burst(base: str, token: str, n: int, *, workers: int = 8, patience: float = 60.0
               ) -> list[int]:  # fmt: skip
    """Ingest n alerts (one per user); a request that fails is retried with the same dedup key,
    which is what a real alert source does, for up to `patience` seconds (e.g. across a
    restart of the service)."""

    def post(i: int) -> int:
        body = {"kind": "default", "user": f"f{i}@example.com", "title": f"burst {i}",
                "dedup_key": f"burst-{i}"}  # fmt: skip
        deadline = time.monotonic() + patience
        with httpx.Client(base_url=base, timeout=20) as http:
            while True:
                try:
                    resp = http.post("/api/v1/alerts", json=body,
                                     headers={"Authorization": f"Bearer {token}"})  # fmt: skip
                    if resp.status_code in (200, 201):
                        return int(resp.json()["id"])
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"alert {i} was never accepted")
                time.sleep(0.1)

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(post, range(n)))


def with_application_name(url: str, name: str) -> str:
    """Tag a PostgreSQL URL's connections, so a fault injector can find exactly these."""
    return f"{url}{'&' if '?' in url else '?'}application_name={name}"


class ConnectionKiller:
    """Every `every` seconds, terminate the PostgreSQL backends tagged with `application_name`."""

    def __init__(self, admin_url: str, application_name: str, every: float = 0.5) -> None:
        self.engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.name, self.every = application_name, every
        self.killed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-killer", daemon=True)

    def _run(self) -> None:
        kill = sa.text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND application_name = :name"
        )
        with self.engine.connect() as conn:
            while not self._stop.wait(self.every):
                self.killed += int(conn.execute(kill, {"name": self.name}).scalar() or 0)

    def __enter__(self) -> ConnectionKiller:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.engine.dispose()


def slow_posts(fs: FakeSlack, seconds: float) -> None:
    """Hold each chat.postMessage answer back a little (after Slack stored the message), as
    a real round trip does: that is the window in which a crash loses the returned ts."""

    def delay(call: Call) -> None:
        if call.method == "chat.postMessage":
            time.sleep(seconds)

    fs.on_call(delay)


@dataclass(frozen=True)
class Counts:
    alerts: int
    dms: Counter[str]  # DM channel -> alert DMs posted there (one user per alert)
    escalations: Counter[str]  # alert id -> escalation posts
    reminders: Counter[str]  # DM channel -> reminders
    lookups: int  # conversations.history calls (retries checking for an earlier post)

    @staticmethod
    def duplicates(c: Counter[str]) -> int:
        return sum(v - 1 for v in c.values() if v > 1)

    def summary(self) -> str:
        d = self.duplicates
        return (
            f"alerts={self.alerts} dms={sum(self.dms.values())} dm_duplicates={d(self.dms)}"
            f" escalations={sum(self.escalations.values())}"
            f" escalation_duplicates={d(self.escalations)}"
            f" reminders={sum(self.reminders.values())} reminder_duplicates={d(self.reminders)}"
            f" history_lookups={self.lookups}"
        )


def count_deliveries(fs: FakeSlack, alerts: int) -> Counts:
    posts = [c for c in fs.calls_to("chat.postMessage") if c.status == 200 and c.response.get("ok")]
    dms: Counter[str] = Counter()
    reminders: Counter[str] = Counter()
    escalations: Counter[str] = Counter()
    for c in posts:
        channel = str(c.response.get("channel"))
        text = str(c.params.get("text", ""))
        if channel == SECURITY_CHANNEL:
            # "... #<alert id>: <title>": see securitybot.slack.messages.escalation_message
            escalations[text.split("#", 1)[1].split(":", 1)[0]] += 1
        elif c.params.get("blocks"):
            dms[channel] += 1
        elif text.startswith("Reminder:"):
            reminders[channel] += 1
    return Counts(alerts, dms, escalations, reminders, len(fs.calls_to("conversations.history")))


def deliveries_pending(db_url: str) -> int:
    """Outbox jobs that may still post to Slack (DMs, escalations, tier re-posts, reminders)."""
    eng = sa.create_engine(db_url)
    try:
        with eng.connect() as conn:
            q = sa.text(
                "SELECT count(*) FROM outbox WHERE status = 'pending' AND effect IN "
                "('send_dm', 'post_escalation', 'repost_escalation', 'send_reminder')"
            )
            return int(conn.execute(q).scalar() or 0)
    finally:
        eng.dispose()


def escalated(db_url: str) -> int:
    eng = sa.create_engine(db_url)
    try:
        with eng.connect() as conn:
            q = sa.text("SELECT count(*) FROM alerts WHERE status = 'escalated'")
            return int(conn.execute(q).scalar() or 0)
    finally:
        eng.dispose()


def main() -> None:
    from bench.common import TOKEN, database, server

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--alerts", type=int, default=2000)
    ap.add_argument("--kill-every", type=float, default=0.5)
    args = ap.parse_args()
    name = "sb-faults-" + uuid.uuid4().hex[:8]
    with FakeSlack() as fs, database("postgres") as url:
        fs.add_channel(SECURITY_CHANNEL)
        add_users(fs, args.alerts)
        slow_posts(fs, 0.02)
        extra: dict[str, object] = {
            "database": {"url": with_application_name(url, name)},
            "slack": {"bot_token": "xoxb-bench", "signing_secret": "s", "api_url": fs.base_url,
                      "security_channel": SECURITY_CHANNEL, "rate_limits": lifted()},
            "policy": {"ack_timeout": 20},
            # One detection for every person: measured here, not held by the storm guard.
            "storm": {"max_people": 1_000_000},
            "scheduler": {"sweep_interval": 0.5},
        }  # fmt: skip
        with server(url, extra) as base, ConnectionKiller(url, name, args.kill_every) as killer:
            started = time.monotonic()
            post_burst(base, TOKEN, args.alerts)
            print(f"ingested {args.alerts} alerts in {time.monotonic() - started:.1f}s")
            deadline = time.monotonic() + 600
            while escalated(url) < args.alerts and time.monotonic() < deadline:
                time.sleep(1)
            while (
                len(count_deliveries(fs, args.alerts).escalations) < args.alerts
                and time.monotonic() < deadline
            ):
                time.sleep(1)  # the last escalation posts are still on their way
            print(f"connections killed: {killer.killed}")
        print(count_deliveries(fs, args.alerts).summary())


if __name__ == "__main__":
    main()
