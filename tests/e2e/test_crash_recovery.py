"""kill -9 and restart: the database owns every timer and effect, so nothing is lost or doubled.

The server runs as a real subprocess (`python -m securitybot serve`), the Slack and Duo fakes
stay in the test process, so they see everything both server lifetimes did.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from securitybot.demo import FakeDuo, FakeSlack
from securitybot.slack.messages import CONFIRM_ACTION
from securitybot.store.db import Database
from tests.e2e.harness import Bot, e2e_config, free_port, ok_calls, wait_until
from tests.e2e.served import Server

# Ceiling of a wait for the bot, after a restart above all: passed at once when it is quick,
# generous for a loaded CI machine (four test workers on two cores).
PATIENCE = 30.0


@contextmanager
def subprocess_bot(
    db_url: str, fs: FakeSlack, fd: FakeDuo, tmp_path: Path, **overrides: Any
) -> Iterator[tuple[Bot, Server]]:
    port = free_port()
    cfg = e2e_config(db_url, fs, fd, server={"host": "127.0.0.1", "port": port},
                     logging={"level": "WARNING"}, **overrides)  # fmt: skip
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    server = Server(path, port, tmp_path / "server.log")
    server.migrate()
    server.start()
    db = Database.from_url(db_url)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            yield Bot(f"http://127.0.0.1:{port}", fs, fd, db, http), server
    finally:
        server.stop()
        db.dispose()


def wait_until_past(at: datetime) -> None:
    """Sleep until ``at`` (a stored time: naive means UTC) is half a second gone."""
    due = at if at.tzinfo else at.replace(tzinfo=UTC)
    time.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds() + 0.5))


def _auths(fd: FakeDuo) -> int:
    return len([r for r in fd.requests if r.path == "/auth/v2/auth"])


def test_a_push_approved_while_the_server_was_dead_resolves_after_restart(
    db_url: str, fs: FakeSlack, fd: FakeDuo, tmp_path: Path
) -> None:
    with subprocess_bot(db_url, fs, fd, tmp_path) as (bot, server):
        alert = bot.post_alert(dedup_key="crash-2fa")
        alert_id = alert["id"]
        bot.wait_status(alert_id, "awaiting_ack")
        assert len(bot.dms("UALICE")) == 1
        bot.click("UALICE", CONFIRM_ACTION, alert_id)
        push = fd.wait_for_push(timeout=PATIENCE)
        # The push is known to the bot (txid committed) and being polled...
        wait_until(lambda: bot.row(alert_id).duo_txid == push.txid, PATIENCE, "txid recorded")
        polls = wait_until(
            lambda: [r for r in fd.requests if r.path == "/auth/v2/auth_status"], what="a poll"
        )
        # ...kill it between two polls (mid-poll would leave the job leased; see report).
        time.sleep(max(0.0, polls[-1].at + 0.4 - time.time()))
        server.kill()

        fd.answer_push(push.txid, "allow")  # the user approves while the bot is down
        server.start()

        done = bot.wait_status(alert_id, "resolved", timeout=PATIENCE)
        assert done["outcome"] == "confirmed"
        assert done["duo_result"] == "duo_approved"
        assert len(bot.dms("UALICE")) == 1
        assert _auths(fd) == 1  # no second push after the restart
        assert fd.pending_pushes() == []
        update = wait_until(lambda: ok_calls(fs, "chat.update", "DUALICE"), PATIENCE, "DM update")
        assert len(update) == 1 and "Confirmed with Duo" in update[0].params["text"]
        assert bot.security_posts() == []
        assert len(bot.audit(alert_id, "duo.push_sent")) == 1
        assert len(bot.audit(alert_id, "alert.duo_approved")) == 1


def test_a_deadline_that_passed_while_the_server_was_dead_escalates_once(
    db_url: str, fs: FakeSlack, fd: FakeDuo, tmp_path: Path
) -> None:
    # A deadline long enough that a loaded machine still kills the server before it passes.
    with subprocess_bot(db_url, fs, fd, tmp_path, policy={"ack_timeout": 4}) as (bot, server):
        alert = bot.post_alert(dedup_key="crash-ack", kind="default")
        alert_id = alert["id"]
        bot.wait_status(alert_id, "awaiting_ack", timeout=PATIENCE)
        server.kill()
        assert bot.row(alert_id).status == "awaiting_ack"
        respond_by = bot.row(alert_id).respond_by
        assert respond_by is not None
        wait_until_past(respond_by)  # the deadline passes while nobody is running

        server.start()
        escalated = bot.wait_status(alert_id, "escalated", timeout=PATIENCE)
        assert escalated["escalation_reason"] == "no_response"
        bot.wait_security_post(timeout=PATIENCE)
        time.sleep(1.0)  # several sweeps later: still exactly one escalation
        assert len(bot.security_posts()) == 1
        assert len(bot.audit(alert_id, "alert.deadline_passed")) == 1
        assert len(bot.dms("UALICE")) == 1
        assert _auths(fd) == 0


def test_a_push_approved_while_the_server_died_mid_poll_resolves_after_restart(
    db_url: str, fs: FakeSlack, fd: FakeDuo, tmp_path: Path
) -> None:
    fd.status_delay = 3.0  # auth_status long-polls like Duo's, so a poll is nearly always open
    # On PostgreSQL the dead process's lease must expire (replicas share the table); on SQLite
    # the restarted single process releases it at once.
    with subprocess_bot(
        db_url, fs, fd, tmp_path, scheduler={"sweep_interval": 0.2, "outbox_lease": 4}
    ) as (bot, server):
        alert_id = bot.post_alert(dedup_key="crash-mid-poll")["id"]
        bot.wait_status(alert_id, "awaiting_ack")
        bot.click("UALICE", CONFIRM_ACTION, alert_id)
        push = fd.wait_for_push(timeout=PATIENCE)
        wait_until(lambda: bot.row(alert_id).duo_txid == push.txid, PATIENCE, "txid recorded")
        poll = wait_until(
            lambda: [r for r in fd.requests if r.path == "/auth/v2/auth_status"], what="a poll"
        )[-1]
        time.sleep(max(0.0, poll.at + 1.5 - time.time()))  # the next poll is now in flight
        server.kill()
        fd.answer_push(push.txid, "allow")
        server.start()

        done = bot.wait_status(alert_id, "resolved", "escalated", timeout=PATIENCE)
        assert (done["status"], done["outcome"]) == ("resolved", "confirmed")
