"""The reset budget is counted in SQL: it holds for one huge request, for replicas deciding at
the same moment (each its own connection pool, as separate processes), and it slides."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from securitybot.aer.events import ActivityEvent, parse_event
from securitybot.aer.service import AerService
from securitybot.config import AerConfig
from securitybot.store.db import Database
from tests.aer_e2e.conftest import QUIET, TOR_IP, aer_config


def budget(count: int, per: str = "1h") -> AerConfig:
    return AerConfig.model_validate(aer_config(reset_budget={"count": count, "per": per}))


def tor_events(users: list[str], now: datetime | None = None) -> list[ActivityEvent]:
    at = now or datetime.now(UTC)
    sign_in = {"org": QUIET, "action": "login", "ip": TOR_IP, "ts": at.isoformat()}
    return [parse_event({**sign_in, "user": u, "session": f"S{u}"}, at) for u in users]


def outbox(db: Database) -> Counter[str]:
    with db.read() as session:
        rows = session.execute(text("SELECT effect FROM outbox WHERE effect LIKE 'aer_%'")).all()
    return Counter(effect for (effect,) in rows if effect != "aer_notify")


def verdicts(db: Database) -> Counter[str]:
    with db.read() as session:
        rows = session.execute(text("SELECT verdict FROM aer_anomalies")).all()
    return Counter(v for (v,) in rows)


def test_one_request_naming_many_users_signs_out_only_the_budget(db: Database) -> None:
    # 500, not the 10,000 a request may carry: each anomaly costs a few statements (its
    # decision, notifications), and the count is checked per reset whatever the size.
    users = [f"U{i:05d}X" for i in range(500)]
    result = AerService(budget(10), db).ingest(tor_events(users))
    assert result.decisions == {"reset": 10, "held": 490}
    # Ten resets, and one message about the held ones (its post shows the final count).
    assert outbox(db) == {"aer_reset": 10, "aer_held_post": 1}
    with db.read() as session:
        batches = session.execute(text("SELECT resets, anomalies, status FROM aer_held_batches"))
        assert batches.all() == [(490, 490, "open")]


def test_the_budget_holds_for_replicas_deciding_at_the_same_moment(
    db_url: str, db: Database
) -> None:
    """Four replicas (four pools: four processes as far as the database can tell) each get
    five requests of two Tor sign-ins at once: 40 would-be resets, a budget of 3."""
    replicas = [Database.from_url(db_url) for _ in range(4)]
    services = [AerService(budget(3), r) for r in replicas]
    start = threading.Barrier(len(services))
    errors: list[BaseException] = []

    def run(k: int) -> None:
        try:
            start.wait()
            for j in range(5):
                services[k].ingest(tor_events([f"U{k}R{j}A", f"U{k}R{j}B"]))
        except BaseException as exc:  # reported below, not lost in a thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(services))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in replicas:
        r.dispose()
    assert errors == []
    assert verdicts(db) == {"reset": 3, "held": 37}
    assert outbox(db)["aer_reset"] == 3 and outbox(db)["aer_held_post"] == 1
    with db.read() as session:
        (held,) = session.execute(text("SELECT resets FROM aer_held_batches")).one()
    assert held == 37


def test_the_window_slides_and_a_new_window_gets_a_new_message(db: Database) -> None:
    svc = AerService(budget(2, "1h"), db)
    t0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    clock: dict[str, Any] = {"now": t0}
    svc.clock = lambda: clock["now"]

    def at(minutes: int, *users: str) -> dict[str, int]:
        clock["now"] = t0 + timedelta(minutes=minutes)
        return svc.ingest(tor_events(list(users), clock["now"]), clock["now"]).decisions

    assert at(0, "UA1", "UA2", "UA3") == {"reset": 2, "held": 1}
    assert at(59, "UB1") == {"held": 1}  # both resets are still within the last hour
    assert at(61, "UC1", "UC2") == {"reset": 2}  # the two from 12:00 have left the window
    assert at(70, "UD1") == {"held": 1}  # the batch of 12:00 is over an hour old: a new one
    assert at(125, "UE1", "UE2", "UE3") == {"reset": 2, "held": 1}  # joins the one of 13:10
    with db.read() as session:
        rows = session.execute(text("SELECT resets FROM aer_held_batches ORDER BY id")).all()
    assert [n for (n,) in rows] == [2, 2]
    assert outbox(db)["aer_held_post"] == 2


def test_count_zero_holds_every_automatic_reset(db: Database) -> None:
    result = AerService(budget(0), db).ingest(tor_events(["UONE"]))
    assert result.decisions == {"held": 1}
    assert outbox(db) == {"aer_held_post": 1}
