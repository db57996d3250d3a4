"""Issue 29, item 1: an escalation pages through PagerDuty's Events API v2, and the incident
follows the Slack escalation (claim acknowledges, closing resolves, reposts open nothing new).
Both stores (the db_url fixture)."""

from __future__ import annotations

from datetime import datetime

from securitybot.demo import FakeSlack
from securitybot.demo.fake_pagerduty import ROUTING_KEY, FakePagerDuty
from securitybot.slack.messages import CLAIM_ACTION, COMPROMISE_ACTION
from tests.e2e.conftest import MakeBot
from tests.e2e.harness import wait_until
from tests.paging.conftest import (
    RESPONDER,
    escalate_by_denial,
    resolve_benign,
    team,
    triage,
)


def test_an_escalation_triggers_a_pagerduty_incident_with_the_documented_fields(
    fs: FakeSlack, pd: FakePagerDuty, make_bot: MakeBot
) -> None:
    bot = make_bot(**team(fs), paging={**pd.config(), "dashboard_url": "https://sb.example.com"})
    alert_id = escalate_by_denial(bot)
    dedup = f"securitybot-{alert_id}"
    (event,) = pd.wait_for_event("trigger", dedup)
    assert event["routing_key"] == ROUTING_KEY
    assert event["dedup_key"] == dedup
    payload = event["payload"]
    assert "flurb -export on accountingserver01" in payload["summary"]
    assert len(payload["summary"]) <= 1024
    assert payload["severity"] == "error"  # sensitive_command is high -> PagerDuty's "error"
    assert payload["source"] == "accountingserver01"  # the host the alert names
    assert payload["component"] == "sensitive_command"
    assert payload["class"] == "sensitive_command"
    datetime.fromisoformat(payload["timestamp"])  # ISO 8601
    details = payload["custom_details"]
    assert details["user"] == "alice@example.com"
    assert details["reason"] == "not_me"
    assert details["details"] == {"host": "accountingserver01", "command": "flurb -export"}
    assert any("not* them" in line or "not them" in line for line in details["timeline"])
    links = {link["text"]: link["href"] for link in event["links"]}
    assert links["Securitybot dashboard"] == f"https://sb.example.com/dashboard/alerts/{alert_id}"
    slack_link = links["Slack escalation post"]
    assert slack_link.startswith("https://") and "/archives/CSECURITY/p" in slack_link
    assert len(pd.incidents_for(dedup)) == 1
    audit = wait_until(lambda: bot.audit(alert_id, "paging.triggered"), what="paging audit")
    assert audit[0].details["provider"] == "pagerduty"


def test_a_claim_in_slack_acknowledges_and_a_benign_close_resolves(
    fs: FakeSlack, pd: FakePagerDuty, make_bot: MakeBot
) -> None:
    bot = make_bot(**team(fs), paging=pd.config())
    alert_id = escalate_by_denial(bot)
    dedup = f"securitybot-{alert_id}"
    pd.wait_for_event("trigger", dedup)
    triage(bot, RESPONDER, CLAIM_ACTION, alert_id)
    bot.wait_status(alert_id, "triaging")
    pd.wait_for_event("acknowledge", dedup)
    assert pd.incidents_for(dedup)[0].status == "acknowledged"
    resolve_benign(bot, RESPONDER, alert_id)
    bot.wait_status(alert_id, "closed")
    pd.wait_for_event("resolve", dedup)
    (incident,) = pd.incidents_for(dedup)
    assert incident.status == "resolved"
    assert incident.log == ["trigger", "acknowledge", "resolve"]  # each step once


def test_confirming_compromise_resolves_the_incident_too(
    fs: FakeSlack, pd: FakePagerDuty, make_bot: MakeBot
) -> None:
    bot = make_bot(**team(fs), paging=pd.config())
    alert_id = escalate_by_denial(bot)
    dedup = f"securitybot-{alert_id}"
    pd.wait_for_event("trigger", dedup)
    triage(bot, RESPONDER, COMPROMISE_ACTION, alert_id)
    bot.wait_status(alert_id, "closed")
    pd.wait_for_event("resolve", dedup)
    assert [i.status for i in pd.incidents_for(dedup)] == ["resolved"]


def test_tier_reposts_never_open_a_second_incident(
    fs: FakeSlack, pd: FakePagerDuty, make_bot: MakeBot
) -> None:
    bot = make_bot(
        **team(fs) | {"escalation": {"responders": [RESPONDER], "claim_timeout": 0.5,
                                     "tiers": [{"mention": "S0TIER1"}, {"mention": "S0TIER2"}]}},
        paging=pd.config(),
    )  # fmt: skip
    alert_id = escalate_by_denial(bot)
    dedup = f"securitybot-{alert_id}"
    wait_until(lambda: len(bot.audit(alert_id, "escalation.tier_raised")) == 2, timeout=15,
               what="two tier reposts")  # fmt: skip
    wait_until(lambda: len(bot.security_posts()) >= 3, what="the reposts in Slack")
    assert len(pd.events("trigger", dedup)) == 1
    assert len(pd.incidents_for(dedup)) == 1


def test_the_summary_is_one_plain_line_within_pagerdutys_limit(
    fs: FakeSlack, pd: FakePagerDuty, make_bot: MakeBot
) -> None:
    # The title comes from a monitoring tool (untrusted): its line breaks and bidi controls
    # must not forge lines or reorder text on a phone's lock screen.
    bot = make_bot(**team(fs), paging=pd.config())
    title = "flurb\nFAKE: all clear\u202e" + "ü" * 270
    alert_id = escalate_by_denial(bot, title=title)
    (event,) = pd.wait_for_event("trigger", f"securitybot-{alert_id}")
    summary = event["payload"]["summary"]
    assert len(summary) <= 1024
    assert "\n" not in summary and "\u202e" not in summary
    assert "flurb FAKE: all clear" in summary
