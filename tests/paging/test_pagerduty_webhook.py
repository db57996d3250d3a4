"""Issue 29, item 3: back from the pager. PagerDuty's v3 webhooks (the documented payload, signed
as PagerDuty signs it) reach the Slack post, the dashboard and the audit log; an acknowledgement
claims the alert for the PagerDuty user's Slack account (matched by email); a resolution in
PagerDuty is noted and asks for an outcome, but never closes the alert. Both stores."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from securitybot.demo import FakeSlack
from securitybot.demo.fake_pagerduty import FakePagerDuty, sign_webhook
from securitybot.demo.pagerduty_examples import DOCUMENTED_WEBHOOK
from securitybot.slack.messages import CLAIM_ACTION
from securitybot.store.models import Outbox
from tests.e2e.conftest import MakeBot
from tests.e2e.harness import SECURITY_CHANNEL, Bot, ok_calls, wait_until
from tests.paging.conftest import PD_RESPONDER, RESPONDER, escalate_by_denial, resolve_benign, team
from tests.paging.conftest import triage as click

PATH = "/pagerduty/webhook"
DASHBOARD = {"enabled": True, "session_secret": "d" * 40, "trusted_header": "X-Remote-User"}


def paged(fs: FakeSlack, pd: FakePagerDuty, make_bot: MakeBot, **more: Any) -> tuple[Bot, int, str]:
    bot = make_bot(**team(fs), paging=pd.config(), dashboard=DASHBOARD, **more)
    pd.webhook_url = bot.base + PATH
    alert_id = escalate_by_denial(bot)
    dedup = f"securitybot-{alert_id}"
    pd.wait_for_event("trigger", dedup)
    wait_until(lambda: bot.audit(alert_id, "paging.triggered"), what="the trigger recorded")
    return bot, alert_id, dedup


def dashboard_page(bot: Bot, alert_id: int) -> str:
    resp = bot.http.get(f"/dashboard/alerts/{alert_id}", headers={"X-Remote-User": "ada"})
    assert resp.status_code == 200, resp.text
    return resp.text


def slack_updates(bot: Bot) -> list[str]:
    return [json.dumps(c.params.get("blocks")) for c in ok_calls(bot.fs, "chat.update",
                                                                  SECURITY_CHANNEL)]  # fmt: skip


def jobs(bot: Bot) -> int:
    with bot.db.read() as session:
        return int(session.scalar(select(func.count()).select_from(Outbox)) or 0)


def test_an_acknowledgement_in_pagerduty_claims_the_alert_for_the_mapped_responder(
    fs: FakeSlack, pd: FakePagerDuty, make_bot: MakeBot
) -> None:
    bot, alert_id, dedup = paged(fs, pd, make_bot)
    resp = pd.acknowledge(dedup, PD_RESPONDER)
    assert resp is not None and resp.status_code == 202, resp and resp.text
    bot.wait_status(alert_id, "triaging")
    assert bot.row(alert_id).claimed_by == RESPONDER  # sam@example.com in both places
    (noted,) = wait_until(lambda: bot.audit(alert_id, "paging.pagerduty_acknowledged"),
                          what="the audit row")  # fmt: skip
    assert noted.details["pagerduty_user"] == "Sam Spade"
    assert noted.details["claimed_for"] == RESPONDER
    (claim,) = bot.audit(alert_id, "alert.claimed")
    assert claim.actor == RESPONDER and claim.details["via"] == "pagerduty"
    wait_until(lambda: any("PagerDuty" in u for u in slack_updates(bot)), what="Slack update")
    assert "Acknowledged in PagerDuty by Sam Spade" in dashboard_page(bot, alert_id)
    # The incident is already acknowledged: nothing goes back to PagerDuty.
    assert pd.events("acknowledge", dedup) == []


def test_a_pagerduty_user_with_no_slack_account_is_shown_but_claims_nothing(
    fs: FakeSlack, pd: FakePagerDuty, make_bot: MakeBot
) -> None:
    bot, alert_id, dedup = paged(fs, pd, make_bot)
    pd.acknowledge(dedup, "PNOBODY")
    (noted,) = wait_until(lambda: bot.audit(alert_id, "paging.pagerduty_acknowledged"),
                          what="the audit row")  # fmt: skip
    assert noted.details["pagerduty_user"] == "Nora Nobody"
    assert noted.details["claimed_for"] is None
    assert bot.alert(alert_id)["status"] == "escalated"
    assert "Acknowledged in PagerDuty by Nora Nobody" in dashboard_page(bot, alert_id)
    # A responder can still claim in Slack; the incident is acknowledged already.
    click(bot, RESPONDER, CLAIM_ACTION, alert_id)
    bot.wait_status(alert_id, "triaging")
    assert pd.events("acknowledge", dedup) == []


def test_a_resolution_in_pagerduty_is_noted_and_asks_for_an_outcome(
    fs: FakeSlack, pd: FakePagerDuty, make_bot: MakeBot
) -> None:
    bot, alert_id, dedup = paged(fs, pd, make_bot)
    pd.resolve(dedup, PD_RESPONDER)
    wait_until(lambda: bot.audit(alert_id, "paging.pagerduty_resolved"), what="the audit row")
    assert bot.alert(alert_id)["status"] == "escalated"  # no outcome without a responder
    wait_until(lambda: any("record the outcome" in u for u in slack_updates(bot)),
               what="the Slack post asking for the outcome")  # fmt: skip
    assert "Resolved in PagerDuty by Sam Spade" in dashboard_page(bot, alert_id)
    resolve_benign(bot, RESPONDER, alert_id)
    bot.wait_status(alert_id, "closed")
    assert pd.events("resolve", dedup) == []  # already resolved there


def post(bot: Bot, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return bot.http.post(PATH, content=body, headers=headers)


def test_signatures_are_checked_against_the_configured_secret(
    fs: FakeSlack, pd: FakePagerDuty, make_bot: MakeBot
) -> None:
    bot, alert_id, dedup = paged(fs, pd, make_bot)
    body = pd.webhook_body("incident.acknowledged", dedup, PD_RESPONDER)
    good = pd.signed(body)
    before = jobs(bot)
    unsigned = {k: v for k, v in good.items() if k != "X-PagerDuty-Signature"}
    assert post(bot, body, unsigned).status_code == 401
    assert post(bot, body, pd.signed(body, secret="not-the-secret")).status_code == 401
    assert post(bot, body + b" ", good).status_code == 401  # the body was altered
    # The signature belongs in the header: in the query string it counts for nothing.
    sig = good["X-PagerDuty-Signature"]
    assert bot.http.post(PATH, params={"X-PagerDuty-Signature": sig}, content=body,
                         headers=unsigned).status_code == 401  # fmt: skip
    assert jobs(bot) == before  # nothing written for a refused request
    # During a secret rotation PagerDuty sends several: one that matches is enough.
    rotated = good | {"X-PagerDuty-Signature": sign_webhook("old-secret", body) + "," + sig}
    assert post(bot, body, rotated).status_code == 202
    bot.wait_status(alert_id, "triaging")


def test_a_replayed_delivery_is_handled_once_and_an_old_one_refused(
    fs: FakeSlack, pd: FakePagerDuty, make_bot: MakeBot
) -> None:
    bot, alert_id, dedup = paged(fs, pd, make_bot)
    body = pd.webhook_body("incident.resolved", dedup, PD_RESPONDER)
    headers = pd.signed(body)
    assert post(bot, body, headers).status_code == 202
    again = post(bot, body, headers)  # PagerDuty's retry repeats X-Webhook-Id
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    wait_until(lambda: bot.audit(alert_id, "paging.pagerduty_resolved"), what="the audit row")
    assert len(bot.audit(alert_id, "paging.pagerduty_resolved")) == 1
    # A new delivery id on the same event is still the same event.
    renamed = post(bot, body, headers | {"X-Webhook-Id": "another-id"})
    assert renamed.status_code == 200 and renamed.json()["status"] == "duplicate"
    stale = pd.webhook_body("incident.acknowledged", dedup, PD_RESPONDER,
                            occurred_at=datetime.now(UTC) - timedelta(days=3))  # fmt: skip
    refused = post(bot, stale, pd.signed(stale))
    assert refused.status_code == 400 and "replay window" in refused.json()["message"]


def test_the_documented_example_event_is_accepted_and_ignored(
    fs: FakeSlack, pd: FakePagerDuty, make_bot: MakeBot
) -> None:
    bot, alert_id, _dedup = paged(fs, pd, make_bot)
    example = dict(DOCUMENTED_WEBHOOK)
    example["event"] = dict(example["event"], occurred_at=datetime.now(UTC).isoformat())
    body = json.dumps(example).encode()
    resp = post(bot, body, pd.signed(body))  # incident.priority_updated, someone else's key
    assert resp.status_code == 200 and resp.json()["status"] == "ignored"
    assert bot.alert(alert_id)["status"] == "escalated"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"not json", 400),
        (b"[1, 2]", 400),
        (b'{"event": "nope"}', 400),
        (b'{"event": {"id": "x", "event_type": "incident.acknowledged"}}', 400),
        ('{"event": "\xff"}'.encode("latin-1"), 400),  # not UTF-8
    ],
)
def test_signed_nonsense_is_a_clear_400_and_writes_nothing(
    fs: FakeSlack, pd: FakePagerDuty, make_bot: MakeBot, body: bytes, status: int
) -> None:
    bot, _alert_id, _dedup = paged(fs, pd, make_bot)
    before = jobs(bot)
    resp = post(bot, body, pd.signed(body))
    assert resp.status_code == status and resp.json()["error"]
    assert jobs(bot) == before


def test_other_methods_and_oversized_bodies_are_refused(
    fs: FakeSlack, pd: FakePagerDuty, make_bot: MakeBot
) -> None:
    bot, _alert_id, _dedup = paged(fs, pd, make_bot)
    assert bot.http.get(PATH).status_code == 405
    big = b'{"event": {"pad": "' + b"x" * (2 << 20) + b'"}}'
    assert post(bot, big, pd.signed(big)).status_code == 413
