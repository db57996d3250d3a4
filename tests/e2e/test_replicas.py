"""Two `securitybot serve` replicas on one PostgreSQL share the work exactly once.

SQLite is single-process by design, and a second process on the same file is refused.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import yaml

from securitybot.demo import FakeDuo, FakeSlack
from securitybot.service import ServiceError, sqlite_single_process_lock
from securitybot.slack.messages import DENY_ACTION
from securitybot.slack.tiers import lifted
from securitybot.store.db import Database
from tests.dbs import postgres_schema_url
from tests.e2e.harness import (
    SECURITY_CHANNEL,
    TOKEN,
    Bot,
    e2e_config,
    free_port,
    ok_calls,
    wait_until,
)
from tests.e2e.served import Server, start_together

# Enough alerts that both replicas claim from the same outbox rows at once, many times over.
USERS = 100
# Half the alerts must be answered before it, the other half escalate when it passes: long
# enough for the answers on a loaded machine (they go out in parallel), short enough to wait.
ACK_TIMEOUT = 12


@pytest.fixture
def pg_url() -> Iterator[str]:
    with postgres_schema_url() as url:
        yield url


def test_two_replicas_dm_and_escalate_every_alert_exactly_once(
    pg_url: str, fs: FakeSlack, fd: FakeDuo, tmp_path: Path
) -> None:
    for i in range(USERS):
        fs.add_user(f"UR{i:03d}", f"r{i}@example.com", first_name=f"R{i}")
    servers = []
    for n in range(2):
        port = free_port()
        # 100 people of one detection: a storm by default; here the exactly-once path is tested.
        cfg = e2e_config(
            pg_url,
            fs,
            fd,
            server={"host": "127.0.0.1", "port": port},
            logging={"level": "WARNING"},
            policy={"ack_timeout": ACK_TIMEOUT},
            storm={"max_people": USERS},
            # The fake enforces no limits: 100 escalations into one channel need
            # not take Slack's 100 seconds (pacing: tests/slack/test_rate_tiers.py).
            slack={"rate_limits": lifted()},
        )
        path = tmp_path / f"replica{n}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        servers.append(Server(path, port, tmp_path / f"replica{n}.log"))
    servers[0].migrate()
    start_together(*servers)
    db = Database.from_url(pg_url)
    clients = [httpx.Client(base_url=f"http://127.0.0.1:{s.port}", timeout=20) for s in servers]
    try:

        def post(i: int) -> int:
            resp = clients[i % 2].post(
                "/api/v1/alerts", headers={"Authorization": f"Bearer {TOKEN}"},
                json={"kind": "default", "user": f"r{i}@example.com", "title": f"t{i}",
                      "dedup_key": f"rep-{i}"},
            )  # fmt: skip
            assert resp.status_code == 201, resp.text
            return int(resp.json()["id"])

        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(post, range(USERS)))
        bots = [Bot(c.base_url.__str__(), fs, fd, db, c) for c in clients]
        # Half the users say "not me" (through either replica); the rest stay silent.
        wait_until(lambda: len(ok_calls(fs, "chat.postMessage")) >= USERS, 30, "all DMs")

        def deny(i: int) -> None:
            bots[i % 2].wait_status(ids[i], "awaiting_ack")
            assert bots[(i + 1) % 2].click(f"UR{i:03d}", DENY_ACTION, ids[i]).status_code == 200

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(deny, range(USERS // 2)))
        for i, alert_id in enumerate(ids):
            bots[i % 2].wait_status(alert_id, "escalated", timeout=60)

        dm_channels = Counter(
            # A DM is posted to the user id; Slack answers with the DM's id.
            c.response["channel"] for c in ok_calls(fs, "chat.postMessage")
            if str(c.response["channel"]).startswith("DUR") and c.params.get("blocks")
        )  # fmt: skip
        assert len(dm_channels) == USERS and set(dm_channels.values()) == {1}
        wait_until(lambda: len(ok_calls(fs, "chat.postMessage", SECURITY_CHANNEL)) >= USERS, 20,
                   "all escalation posts")  # fmt: skip
        posted_for = Counter(
            c.params["text"].split("#", 1)[1].split(":", 1)[0]
            for c in ok_calls(fs, "chat.postMessage", SECURITY_CHANNEL)
        )
        assert len(posted_for) == USERS and set(posted_for.values()) == {1}
        reasons = Counter(bots[0].alert(a)["escalation_reason"] for a in ids)
        assert reasons == {"not_me": USERS // 2, "no_response": USERS - USERS // 2}
    finally:
        for c in clients:
            c.close()
        for s in servers:
            s.stop()
        db.dispose()


STORM_PEOPLE = 60
STORM_LIMIT = 7


def test_two_replicas_never_dm_more_than_the_storm_limit(
    pg_url: str, fs: FakeSlack, fd: FakeDuo, tmp_path: Path
) -> None:
    """One detection fires for 60 people through both replicas at once: the count is taken
    under the detection's lock in PostgreSQL, so together they DM exactly max_people people,
    hold the rest in one storm and post one message."""
    for i in range(STORM_PEOPLE):
        fs.add_user(f"USTORM{i:03d}", f"storm{i}@example.com", first_name=f"S{i}")
    servers = []
    for n in range(2):
        port = free_port()
        cfg = e2e_config(pg_url, fs, fd, server={"host": "127.0.0.1", "port": port},
                         logging={"level": "WARNING"},
                         storm={"max_people": STORM_LIMIT, "window": "10m"})  # fmt: skip
        path = tmp_path / f"replica{n}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        servers.append(Server(path, port, tmp_path / f"replica{n}.log"))
    servers[0].migrate()
    start_together(*servers)
    db = Database.from_url(pg_url)
    clients = [httpx.Client(base_url=f"http://127.0.0.1:{s.port}", timeout=20) for s in servers]
    try:

        def post(i: int) -> int:
            resp = clients[i % 2].post(
                "/api/v1/alerts", headers={"Authorization": f"Bearer {TOKEN}"},
                json={"kind": "default", "user": f"storm{i}@example.com", "title": f"t{i}",
                      "dedup_key": f"storm-{i}"},
            )  # fmt: skip
            assert resp.status_code == 201, resp.text
            return int(resp.json()["id"])

        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(post, range(STORM_PEOPLE)))
        bot = Bot(str(clients[0].base_url), fs, fd, db, clients[0])
        statuses = Counter(bot.wait_status(a, "awaiting_ack", "held")["status"] for a in ids)
        assert statuses == {"awaiting_ack": STORM_LIMIT, "held": STORM_PEOPLE - STORM_LIMIT}
        wait_until(lambda: ok_calls(fs, "chat.postMessage", SECURITY_CHANNEL), 20, "storm post")
        dm_channels = {
            c.response["channel"] for c in ok_calls(fs, "chat.postMessage")
            if str(c.response["channel"]).startswith("DUSTORM") and c.params.get("blocks")
        }  # fmt: skip
        assert len(dm_channels) == STORM_LIMIT
        assert len(ok_calls(fs, "chat.postMessage", SECURITY_CHANNEL)) == 1
    finally:
        for c in clients:
            c.close()
        for s in servers:
            s.stop()
        db.dispose()


def test_a_second_process_on_the_same_sqlite_file_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'one.db'}"
    first = sqlite_single_process_lock(url)
    try:
        with pytest.raises(ServiceError, match="SQLite supports one process"):
            sqlite_single_process_lock(url)
    finally:
        assert first is not None
        first.close()
    sqlite_single_process_lock(url).close()  # type: ignore[union-attr]  # free again
