"""SIGTERM to a real `securitybot serve`: it takes no new work, lets jobs in flight finish within
`server.shutdown_grace`, hands back the leases of those that cannot, and exits in time."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import yaml
from sqlalchemy import select

from securitybot.demo import FakeDuo, FakeSlack
from securitybot.store.db import Database
from securitybot.store.models import Outbox
from tests.e2e.harness import Bot, e2e_config, free_port, wait_until
from tests.e2e.served import Server

GRACE = 4.0  # server.shutdown_grace: HTTP drain 1 s, outbox jobs 2 s, the rest to close


def _server(db_url: str, fs: FakeSlack, fd: FakeDuo, tmp_path: Path) -> Server:
    port = free_port()
    listen = {"host": "127.0.0.1", "port": port, "shutdown_grace": GRACE}
    cfg = e2e_config(db_url, fs, fd, logging={"level": "WARNING"}, server=listen)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    server = Server(path, port, tmp_path / "server.log")
    server.migrate()
    return server


def _terminate(server: Server) -> tuple[float, int]:
    """SIGTERM; how long the process took to exit, and its exit status."""
    assert server.proc is not None
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    code = server.proc.wait(timeout=GRACE + 10)
    return time.monotonic() - started, code


def _post_alert(server: Server, fs: FakeSlack, fd: FakeDuo, db: Database, key: str) -> int:
    """Post an alert and return once its DM job is talking to Slack."""
    fs.reset_calls()
    with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=10) as http:
        alert_id: int = Bot(http.base_url, fs, fd, db, http).post_alert(dedup_key=key)["id"]
    # The DM itself, not any call (a directory sync's users.list may reach Slack first).
    wait_until(lambda: fs.calls_to("chat.postMessage") and _dm_jobs(db, alert_id),
               what="the DM job to reach Slack")  # fmt: skip
    return alert_id


def _dm_jobs(db: Database, alert_id: int) -> list[Outbox]:
    with db.read() as s:
        query = select(Outbox).where(Outbox.alert_id == alert_id)
        # The DM is its own job (send_dm): with Alice in the directory, start_conversation
        # needs no Slack call and is done before Slack is slow.
        return list(s.scalars(query.where(Outbox.effect == "send_dm")))


def test_a_job_slower_than_the_grace_period_is_handed_back_at_once(
    db_url: str, fs: FakeSlack, fd: FakeDuo, tmp_path: Path
) -> None:
    server = _server(db_url, fs, fd, tmp_path)
    db = Database.from_url(db_url)
    try:
        server.start()
        fs.latency = 3 * GRACE  # Slack hangs: the DM cannot be sent before the grace runs out
        alert_id = _post_alert(server, fs, fd, db, "graceful-slow")
        took, code = _terminate(server)

        assert code in (0, -signal.SIGTERM), server.log.read_text()
        assert took < GRACE + 2, f"exited {took:.1f} s after SIGTERM (grace {GRACE} s)"
        [job] = _dm_jobs(db, alert_id)
        # Not finished, not failed, and free for the next replica now, not a lease later.
        assert (job.status, job.attempts, job.locked_until) == ("pending", 0, None)

        fs.latency = 0.0
        server.start()  # the next replica (PostgreSQL: any replica) takes it straight away
        bot = Bot(f"http://127.0.0.1:{server.port}", fs, fd, db, httpx.Client())
        wait_until(lambda: bot.dms("UALICE"), timeout=5, what="the DM after the restart")
        assert len(bot.dms("UALICE")) == 1
    finally:
        fs.latency = 0.0
        server.stop()
        db.dispose()


def test_a_job_in_flight_finishes_before_the_process_exits(
    db_url: str, fs: FakeSlack, fd: FakeDuo, tmp_path: Path
) -> None:
    server = _server(db_url, fs, fd, tmp_path)
    db = Database.from_url(db_url)
    try:
        server.start()
        fs.latency = 0.3  # each Slack call: the DM's three take about 1 s of the outbox's 2 s
        alert_id = _post_alert(server, fs, fd, db, "graceful-fast")
        took, code = _terminate(server)

        assert code in (0, -signal.SIGTERM), server.log.read_text()
        assert took < GRACE + 2
        [job] = _dm_jobs(db, alert_id)
        assert job.status == "done"
        bot = Bot(f"http://127.0.0.1:{server.port}", fs, fd, db, httpx.Client())
        assert len(bot.dms("UALICE")) == 1
    finally:
        fs.latency = 0.0
        server.stop()
        db.dispose()
