"""Before Slack is set up, alerts are stored and wait; once it is, they are DM'd as usual."""

from __future__ import annotations

from sqlalchemy import select

from securitybot.demo import FakeDuo, FakeSlack
from securitybot.store.models import Outbox
from tests.e2e.harness import Bot, e2e_settings, running_bot, wait_until

WAITING = 'securitybot_alerts_waiting{reason="slack_unconfigured"}'


def start_jobs(bot: Bot, alert_id: int) -> list[Outbox]:
    with bot.db.read() as session:
        rows = session.scalars(
            select(Outbox).where(Outbox.alert_id == alert_id, Outbox.effect == "start_conversation")
        )
        return list(rows)


def metric(bot: Bot, name: str) -> float:
    for line in bot.http.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in /metrics")


def test_alerts_wait_for_slack_and_are_dmd_once_it_is_configured(
    db_url: str, fs: FakeSlack, fd: FakeDuo
) -> None:
    unconfigured = e2e_settings(db_url, fs, fd, slack={"bot_token": None})
    assert not unconfigured.slack.configured
    with running_bot(unconfigured, fs, fd) as bot:
        alert_id = bot.post_alert()["id"]
        # The dispatcher has looked at the job and put it back to wait (not done, not dead).
        wait_until(
            lambda: (jobs := start_jobs(bot, alert_id)) and jobs[0].claims >= 1
            and jobs[0].locked_until is None,
            what="the start_conversation job to be tried once",
        )  # fmt: skip
        [job] = start_jobs(bot, alert_id)
        assert job.status == "pending" and job.attempts == 0
        assert bot.alert(alert_id)["status"] == "new"
        assert bot.audit(alert_id, "dm_failed") == []
        assert metric(bot, WAITING) == 1
        assert metric(bot, "securitybot_outbox_dead") == 0
        assert fs.calls_to("chat.postMessage") == []

    with running_bot(e2e_settings(db_url, fs, fd), fs, fd) as bot:
        bot.wait_status(alert_id, "awaiting_ack")
        assert len(bot.dms("UALICE")) == 1
        assert metric(bot, WAITING) == 0
