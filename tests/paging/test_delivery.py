"""Issue 29, item 5: pages are outbox jobs like every other effect: retried with backoff,
honouring PagerDuty's and Opsgenie's 429s, given up on (and counted in /metrics) when the vendor
refuses the event for good. Both stores."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from securitybot.demo import FakeSlack
from securitybot.demo.fake_opsgenie import FakeOpsgenie
from securitybot.demo.fake_pagerduty import FakePagerDuty
from securitybot.store.models import Outbox
from tests.e2e.conftest import MakeBot
from tests.e2e.harness import Bot, wait_until
from tests.paging.conftest import escalate_by_denial, team


def dead(bot: Bot, effect: str = "page_trigger") -> list[Outbox]:
    return [j for j in page_jobs(bot, effect) if j.status == "dead"]


def put_back(bot: Bot, effect: str = "page_trigger") -> list[Outbox]:
    """Jobs waiting for a later attempt (a 429 is "not yet": no error, no attempt spent)."""
    return [
        j
        for j in page_jobs(bot, effect)
        if j.status == "pending" and j.next_attempt_at - j.created_at > timedelta(seconds=2)
    ]


def page_jobs(bot: Bot, effect: str) -> list[Outbox]:
    with bot.db.read() as session:
        rows = list(session.scalars(select(Outbox).where(Outbox.effect == effect)))
        for row in rows:
            session.expunge(row)
        return rows


def metric(bot: Bot, name: str, labels: str) -> float:
    text = bot.http.get("/metrics").text
    found = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def test_a_pagerduty_429_is_retried_no_sooner_than_pagerduty_asks(
    fs: FakeSlack, pd: FakePagerDuty, make_bot: MakeBot
) -> None:
    bot = make_bot(**team(fs), paging=pd.config())
    pd.fail_next(429, headers={"Retry-After": "2"})
    alert_id = escalate_by_denial(bot)
    dedup = f"securitybot-{alert_id}"
    pd.wait_for_event("trigger", dedup, timeout=15)
    calls = pd.enqueue_calls()
    assert [c.status for c in calls] == [429, 202]
    assert calls[1].at - calls[0].at >= 1.9  # Retry-After honoured
    (job,) = wait_until(
        lambda: [j for j in page_jobs(bot, "page_trigger") if j.status == "done"],
        what="the trigger recorded",
    )
    assert job.attempts == 0  # a 429 is "not yet", not a failure
    assert len(pd.incidents_for(dedup)) == 1


def test_a_pagerduty_429_without_retry_after_waits_a_backoff(
    fs: FakeSlack, pd: FakePagerDuty, make_bot: MakeBot
) -> None:
    # PagerDuty documents no Retry-After on the Events API's 429 ("429 - Request Limit
    # Exceeded"): the job is put back by the outbox, not retried in a tight loop.
    bot = make_bot(**team(fs), paging=pd.config())
    pd.fail_next(429)
    alert_id = escalate_by_denial(bot)
    wait_until(lambda: pd.enqueue_calls(), what="the refused call")
    (job,) = wait_until(lambda: put_back(bot), what="the retry recorded")
    assert job.attempts == 0
    assert job.next_attempt_at - job.created_at >= timedelta(seconds=25)  # about 30 s
    assert metric(bot, "securitybot_pages_rate_limited_total", 'provider="pagerduty"') >= 1
    assert len(pd.enqueue_calls()) == 1
    assert bot.alert(alert_id)["status"] == "escalated"


def test_an_opsgenie_429_waits_the_throttle_period(
    fs: FakeSlack, og: FakeOpsgenie, make_bot: MakeBot
) -> None:
    bot = make_bot(**team(fs), paging=og.config())
    og.fail_next(429)  # X-RateLimit-Period-In-Sec: 60
    escalate_by_denial(bot)
    (job,) = wait_until(lambda: put_back(bot), what="the retry recorded")
    assert job.attempts == 0
    assert job.next_attempt_at - job.created_at >= timedelta(seconds=55)
    assert metric(bot, "securitybot_pages_rate_limited_total", 'provider="opsgenie"') >= 1


def test_an_event_pagerduty_refuses_is_a_dead_job_visible_in_metrics(
    fs: FakeSlack, pd: FakePagerDuty, make_bot: MakeBot
) -> None:
    bot = make_bot(**team(fs), paging=pd.config())
    pd.fail_next(400)  # "Event object is invalid": retrying the same event cannot help
    escalate_by_denial(bot)
    (job,) = wait_until(lambda: dead(bot), what="the dead job")
    assert "Event object is invalid" in (job.last_error or "")
    assert metric(bot, "securitybot_outbox_dead_jobs", 'effect="page_trigger"') == 1.0


def test_an_opsgenie_422_is_a_dead_job_and_a_5xx_is_retried(
    fs: FakeSlack, og: FakeOpsgenie, make_bot: MakeBot
) -> None:
    bot = make_bot(**team(fs), paging=og.config())
    og.fail_next(500)
    og.fail_next(422)
    escalate_by_denial(bot)
    (job,) = wait_until(lambda: dead(bot), timeout=15, what="the dead job")
    assert job.attempts == 2  # the 500 was retried, the 422 was final
    assert "Request body is not processable" in (job.last_error or "")
    assert metric(bot, "securitybot_outbox_dead_jobs", 'effect="page_trigger"') == 1.0
