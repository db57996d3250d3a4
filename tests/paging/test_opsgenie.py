"""Issue 29, item 2: an escalation creates an Opsgenie alert (alias = the dedup key), a claim
acknowledges it, closing closes it, and each timeline step becomes one note. Both stores."""

from __future__ import annotations

from securitybot.demo import FakeSlack
from securitybot.demo.fake_opsgenie import API_KEY, FakeOpsgenie
from securitybot.slack.messages import CLAIM_ACTION
from tests.e2e.conftest import MakeBot
from tests.e2e.harness import wait_until
from tests.paging.conftest import RESPONDER, escalate_by_denial, resolve_benign, team, triage

RESPONDERS = [{"type": "team", "name": "security-oncall"},
              {"type": "user", "username": "lead@example.com"}]  # fmt: skip


def test_an_escalation_creates_an_opsgenie_alert_with_alias_priority_and_responders(
    fs: FakeSlack, og: FakeOpsgenie, make_bot: MakeBot
) -> None:
    bot = make_bot(**team(fs), paging={**og.config(responders=RESPONDERS, tags=["prod"])})
    alert_id = escalate_by_denial(bot)
    alias = f"securitybot-{alert_id}"
    (create,) = og.wait_for("create", alias)
    assert create.headers["Authorization"] == f"GenieKey {API_KEY}"
    body = create.body or {}
    assert body["alias"] == alias
    assert "flurb -export on accountingserver01" in body["message"]
    assert len(body["message"]) <= 130
    assert body["priority"] == "P2"  # high
    assert body["responders"] == RESPONDERS
    assert {"securitybot", "sensitive_command", "not_me", "prod"} <= set(body["tags"])
    assert body["details"]["user"] == "alice@example.com"
    assert body["details"]["reason"] == "not_me"
    assert body["details"]["host"] == "accountingserver01"
    assert all(isinstance(v, str) for v in body["details"].values())  # a string map
    assert "not* them" in body["description"] or "not them" in body["description"]
    assert og.alert(alias) is not None and og.alert(alias).count == 1  # type: ignore[union-attr]


def test_claim_acknowledges_close_closes_and_each_step_is_noted_once(
    fs: FakeSlack, og: FakeOpsgenie, make_bot: MakeBot
) -> None:
    bot = make_bot(**team(fs), paging=og.config())
    alert_id = escalate_by_denial(bot)
    alias = f"securitybot-{alert_id}"
    og.wait_for("create", alias)
    triage(bot, RESPONDER, CLAIM_ACTION, alert_id)
    og.wait_for("acknowledge", alias)
    resolve_benign(bot, RESPONDER, alert_id, note="quarterly export")
    bot.wait_status(alert_id, "closed")
    og.wait_for("close", alias)
    alert = og.alert(alias)
    assert alert is not None and alert.status == "closed" and alert.acknowledged

    def notes() -> list[str]:
        found = og.alert(alias)
        return [n["note"] for n in (found.notes if found else [])]

    wait_until(lambda: any("Resolved as benign" in n for n in notes()), what="the closing note")
    assert any("Claimed" in n for n in notes())
    texts = [n.split(" [securitybot ")[0] for n in notes()]
    assert len(texts) == len(set(texts)), f"a step was noted twice: {texts}"
    # Steps from before the page are in the alert's description, not repeated as notes.
    assert not any("Alert ingested" in n for n in notes())


def test_the_eu_region_is_a_base_url(fs: FakeSlack, og: FakeOpsgenie, make_bot: MakeBot) -> None:
    # api.eu.opsgenie.com is only a different base URL: the fake stands in for it here.
    bot = make_bot(**team(fs), paging={"opsgenie": {"api_key": API_KEY,
                                                    "base_url": og.base_url + "/"}})  # fmt: skip
    alert_id = escalate_by_denial(bot)
    og.wait_for("create", f"securitybot-{alert_id}")
