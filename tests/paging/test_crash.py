"""Issue 29, item 5: kill -9 and restart. Each lifecycle step of a page reaches PagerDuty once:
a step recorded before the crash is not sent again, and a step cut off in flight is sent again
with the same dedup key, which PagerDuty folds into the same incident. The server is a real
subprocess; the fakes stay in the test process and see both lifetimes. Both stores."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml
from sqlalchemy import select

from securitybot.demo import FakeDuo, FakeSlack
from securitybot.demo.fake_pagerduty import FakePagerDuty
from securitybot.slack.messages import CLAIM_ACTION
from securitybot.store.db import Database
from securitybot.store.models import Outbox
from tests.e2e.harness import Bot, e2e_config, free_port, wait_until
from tests.e2e.served import Server, start_together
from tests.paging.conftest import RESPONDER, escalate_by_denial, resolve_benign, team, triage

SCHEDULER = {"sweep_interval": 0.2, "outbox_lease": 2}
# Ceiling of a wait for the bot after a restart: passed at once when it is quick, generous for
# a loaded CI machine (four test workers on two cores).
PATIENCE = 30.0


@contextmanager
def serving(db_url: str, fs: FakeSlack, fd: FakeDuo, tmp_path: Path, *, start: bool = True,
            **overrides: Any) -> Iterator[tuple[Bot, Server]]:  # fmt: skip
    """A migrated database and `serve` on it; ``start=False``: started by the caller (replicas
    start together)."""
    port = free_port()
    cfg = e2e_config(db_url, fs, fd, server={"host": "127.0.0.1", "port": port},
                     logging={"level": "WARNING"}, **overrides)  # fmt: skip
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    server = Server(path, port, tmp_path / "server.log")
    if start:
        server.migrate()
        server.start()
    db = Database.from_url(db_url)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            yield Bot(f"http://127.0.0.1:{port}", fs, fd, db, http), server
    finally:
        server.stop()
        db.dispose()


def done(bot: Bot, effect: str) -> bool:
    with bot.db.read() as session:
        states = list(session.scalars(select(Outbox.status).where(Outbox.effect == effect)))
    return states == ["done"]


def test_each_step_recorded_before_a_crash_is_sent_once(
    db_url: str, fs: FakeSlack, fd: FakeDuo, pd: FakePagerDuty, tmp_path: Path
) -> None:
    settings = {**team(fs), "paging": pd.config(), "scheduler": SCHEDULER}
    with serving(db_url, fs, fd, tmp_path, **settings) as (bot, server):
        alert_id = escalate_by_denial(bot)
        dedup = f"securitybot-{alert_id}"
        wait_until(lambda: done(bot, "page_trigger"), PATIENCE, "the trigger recorded")
        server.kill()
        server.start()
        triage(bot, RESPONDER, CLAIM_ACTION, alert_id)
        wait_until(lambda: done(bot, "page_acknowledge"), PATIENCE, "the acknowledge recorded")
        server.kill()
        server.start()
        resolve_benign(bot, RESPONDER, alert_id)
        bot.wait_status(alert_id, "closed", timeout=PATIENCE)
        pd.wait_for_event("resolve", dedup, timeout=PATIENCE)
        time.sleep(1.0)  # sweeps and dispatcher rounds after the restarts
        assert [(c.body or {}).get("event_action") for c in pd.enqueue_calls()] == [
            "trigger", "acknowledge", "resolve"]  # fmt: skip
        (incident,) = pd.incidents_for(dedup)
        assert incident.log == ["trigger", "acknowledge", "resolve"]


def test_a_trigger_cut_off_in_flight_opens_one_incident(
    db_url: str, fs: FakeSlack, fd: FakeDuo, pd: FakePagerDuty, tmp_path: Path
) -> None:
    # On PostgreSQL the dead process's lease must run out (replicas share the table); on SQLite
    # the restarted single process releases it at once.
    settings = {**team(fs), "paging": pd.config(), "scheduler": SCHEDULER}
    with serving(db_url, fs, fd, tmp_path, **settings) as (bot, server):
        pd.latency = 3.0  # PagerDuty has the event; its answer is still on the way
        alert_id = escalate_by_denial(bot)
        dedup = f"securitybot-{alert_id}"
        wait_until(lambda: pd.enqueue_calls(), PATIENCE, "the trigger in flight")
        server.kill()
        pd.latency = 0.0
        server.start()
        wait_until(lambda: done(bot, "page_trigger"), PATIENCE, "the trigger recorded")
        triggers = pd.events("trigger", dedup)
        assert 1 <= len(triggers) <= 2  # sent again after the crash: same dedup key
        assert len(pd.incidents_for(dedup)) == 1
        triage(bot, RESPONDER, CLAIM_ACTION, alert_id)
        pd.wait_for_event("acknowledge", dedup, timeout=PATIENCE)
        resolve_benign(bot, RESPONDER, alert_id)
        pd.wait_for_event("resolve", dedup, timeout=PATIENCE)
        (incident,) = pd.incidents_for(dedup)
        assert incident.status == "resolved"
        assert len(pd.events("acknowledge")) == 1 and len(pd.events("resolve")) == 1


def test_two_replicas_send_each_step_once(
    fs: FakeSlack, fd: FakeDuo, pd: FakePagerDuty, tmp_path: Path
) -> None:
    # Two `serve` processes on one PostgreSQL (SQLite is single-process by design) claim the
    # same outbox: every alert pages once and is acknowledged once, whichever replica works.
    from collections import Counter

    from tests.dbs import postgres_schema_url

    with postgres_schema_url() as pg_url, contextlib.ExitStack() as stack:
        settings = {**team(fs), "paging": pd.config(), "scheduler": SCHEDULER}
        replicas = [stack.enter_context(serving(pg_url, fs, fd, tmp_path / f"r{n}", start=False,
                                                **settings)) for n in range(2)]  # fmt: skip
        replicas[0][1].migrate()
        start_together(*(server for _bot, server in replicas))
        bots = [bot for bot, _server in replicas]
        ids = [bots[i % 2].post_alert(user=f"ghost{i}@example.com", dedup_key=f"g{i}")["id"]
               for i in range(20)]  # fmt: skip
        wait_until(lambda: len(pd.events("trigger")) >= 20, timeout=60, what="20 pages")
        for n, alert_id in enumerate(ids):
            triage(bots[n % 2], RESPONDER, CLAIM_ACTION, alert_id)
        wait_until(lambda: len(pd.events("acknowledge")) >= 20, timeout=60, what="20 acks")
        time.sleep(1.5)  # more rounds of both dispatchers and sweeps
        sent = Counter(((c.body or {}).get("event_action"), (c.body or {}).get("dedup_key"))
                       for c in pd.enqueue_calls())  # fmt: skip
        assert len(sent) == 40 and set(sent.values()) == {1}, sent
