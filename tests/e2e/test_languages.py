"""The DM lifecycle in every shipped language, through real sockets (issue 33): the person's
Slack locale picks the catalog; typed answers in that language work; what Slack is sent stays
within Block Kit's limits; the security team's post speaks ``i18n.team_locale``."""

from __future__ import annotations

import json
from typing import Any

import pytest

from securitybot.demo import FakeSlack
from securitybot.domain.effects import CONFIRMED_DM_TEXT, DM_TEXTS, EscalationReason
from securitybot.i18n import Translator, translator
from securitybot.slack import limits
from securitybot.slack.messages import CONFIRM_DENIAL_TEXT
from securitybot.store import slack_people
from tests.e2e.conftest import MakeBot
from tests.e2e.harness import READ_TOKEN, Bot, wait_until

# Slack's locale for Alice -> the words she types for yes / no / confirm.
LANGUAGES = {
    "en-US": ("yes", "no", "confirm"),
    "de-DE": ("ja", "nein", "bestätigen"),
    "fr-FR": ("oui", "non", "confirmer"),
    "es-ES": ("sí", "no", "confirmar"),
    "pt-BR": ("sim", "não", "confirmar"),
    "ja-JP": ("はい", "いいえ", "確認"),
}


def _blocks(call: Any) -> list[dict[str, Any]]:
    blocks = call.params.get("blocks")
    return json.loads(blocks) if isinstance(blocks, str) else list(blocks or [])


def _updates(bot: Bot, alert_id: int) -> list[Any]:
    ts = bot.row(alert_id).dm_ts
    return [c for c in bot.fs.calls_to("chat.update") if c.params.get("ts") == ts]


def _alice_speaks(
    fs: FakeSlack, make_bot: MakeBot, tag: str, **config: Any
) -> tuple[Bot, Translator]:
    """Alice's Slack language is ``tag`` before the bot starts: it learns it from the
    directory (users.list with include_locale), as it would on any day after its first sync."""
    fs.add_user("UALICE", "alice@example.com", real_name="Alice Liddell",
                first_name="Alice", locale=tag)  # fmt: skip
    return make_bot(**config), translator(tag)


@pytest.mark.parametrize("tag", list(LANGUAGES))
def test_yes_then_push_resolves_in_her_language(fs: FakeSlack, make_bot: MakeBot, tag: str) -> None:
    bot, t = _alice_speaks(fs, make_bot, tag)
    yes, _, _ = LANGUAGES[tag]
    alert = bot.post_alert(dedup_key=f"lang-yes-{tag}")
    alert_id = int(alert["id"])
    bot.wait_status(alert_id, "awaiting_ack")
    dm = bot.dms("UALICE")[0]
    blocks = _blocks(dm)
    assert limits.problems(blocks) == []
    shown = json.dumps(blocks, ensure_ascii=False)
    assert t.gettext("Yes, this was me") in shown
    assert t.gettext("No, this wasn't me") in shown
    assert t.gettext("It wasn't you?") in shown  # the confirmation dialog on "No"
    # The kind's question, translated, with the alert's values in their code span.
    question = t.gettext(
        "I see you ran `{command}` on {host}. This is a sensitive command, so please confirm "
        "it was you."
    )
    assert question.format(command="flurb -export", host="accountingserver01") in shown
    assert "<!date^" in shown and "UTC>" in shown  # the date token keeps its fallback

    bot.say("UALICE", yes)
    push = bot.fd.wait_for_push(timeout=10)
    assert push.pushinfo[t.gettext("Alert id")] == str(alert_id)
    reply = bot.wait_reply("UALICE")[0].params["text"]
    assert reply.startswith(
        t.gettext("That answered alert #{alert_id} ({title}).").format(
            alert_id=alert_id, title="flurb -export on accountingserver01"
        )
    )
    bot.fd.answer_push(push.txid, "allow")
    assert bot.wait_status(alert_id, "resolved")["outcome"] == "confirmed"
    update = wait_until(lambda: _updates(bot, alert_id), 10, "the DM's update")[-1]
    assert limits.problems(_blocks(update)) == []
    assert t.gettext(CONFIRMED_DM_TEXT) in update.params["text"]


@pytest.mark.parametrize("tag", list(LANGUAGES))
def test_no_then_confirm_escalates_in_her_language(
    fs: FakeSlack, make_bot: MakeBot, tag: str
) -> None:
    bot, t = _alice_speaks(fs, make_bot, tag)
    _, no, confirm = LANGUAGES[tag]
    alert = bot.post_alert(dedup_key=f"lang-no-{tag}")
    alert_id = int(alert["id"])
    bot.wait_status(alert_id, "awaiting_ack")

    bot.say("UALICE", no)
    ask = bot.wait_reply("UALICE")[0].params["text"]
    assert ask.endswith(t.gettext(CONFIRM_DENIAL_TEXT))
    assert bot.alert(alert_id)["status"] == "awaiting_ack"  # a "no" alone pages nobody
    assert bot.security_posts() == []

    bot.say("UALICE", confirm)
    a = bot.wait_status(alert_id, "escalated")
    assert a["escalation_reason"] == "not_me"
    update = wait_until(lambda: _updates(bot, alert_id), 10, "the DM's update")[-1]
    assert t.gettext(DM_TEXTS[EscalationReason.NOT_ME]) in update.params["text"]
    assert limits.problems(_blocks(update)) == []
    post = bot.wait_security_post()
    assert "(not_me)" in post.params["text"] and "Escalated alert" in post.params["text"]


def test_the_config_and_the_team_choose_over_slack(fs: FakeSlack, make_bot: MakeBot) -> None:
    """Alice's Slack says German, the config says French: French. Bob's Slack says English,
    the security team chose Japanese (`/securitybot locale`): Japanese."""
    bot, _ = _alice_speaks(fs, make_bot, "de-DE", i18n={"locales": {"alice@example.com": "fr"}})
    with bot.db.write() as session:
        slack_people.put_locale(session, "UBOB", "ja")
    alice = int(bot.post_alert(dedup_key="lang-config")["id"])
    bob = int(bot.post_alert(dedup_key="lang-team", user="bob@example.com")["id"])
    bot.wait_status(alice, "awaiting_ack")
    bot.wait_status(bob, "awaiting_ack")
    assert translator("fr").gettext("Yes, this was me") in str(_blocks(bot.dms("UALICE")[0]))
    assert translator("ja").gettext("Yes, this was me") in str(_blocks(bot.dms("UBOB")[0]))


def test_the_security_channel_speaks_the_team_locale(fs: FakeSlack, make_bot: MakeBot) -> None:
    """Alice is asked in English; the security team set ``i18n.team_locale: de``: the
    escalation post, its timeline and its buttons are German; the alert's own text is not."""
    bot, _ = _alice_speaks(fs, make_bot, "en-US", i18n={"team_locale": "de"})
    alert_id = int(bot.post_alert(dedup_key="lang-team-locale")["id"])
    bot.wait_status(alert_id, "awaiting_ack")
    bot.say("UALICE", "no")
    bot.wait_reply("UALICE")
    bot.say("UALICE", "confirm")
    bot.wait_status(alert_id, "escalated")
    assert "Yes, this was me" in str(_blocks(bot.dms("UALICE")[0]))  # Alice's DM: English
    post = bot.wait_security_post()
    blocks = _blocks(post)
    assert limits.problems(blocks) == []
    shown = json.dumps(blocks, ensure_ascii=False)
    assert f"Eskalierter Alarm #{alert_id}" in post.params["text"]
    assert "*Eskaliert:* die Person sagt, sie war es nicht" in shown
    assert "*Zeitverlauf*" in shown and "DM an die Person gesendet" in shown
    assert "Übernehmen" in shown and "Als harmlos schließen" in shown
    assert "Escalated" not in shown and "Claim" not in shown
    assert "flurb -export" in shown  # the alert's own text stays as the tool wrote it


def test_the_team_chooses_her_language_over_the_api(fs: FakeSlack, make_bot: MakeBot) -> None:
    """Alice's Slack says English and she was just DMed in English; a responder chooses
    Japanese for her by email over the admin API: her next DM is in Japanese."""
    bot, _ = _alice_speaks(fs, make_bot, "en-US", escalation={"responders": ["ULEAD"]})
    first = int(bot.post_alert(dedup_key="lang-api-before")["id"])
    bot.wait_status(first, "awaiting_ack")
    assert "Yes, this was me" in str(_blocks(bot.dms("UALICE")[0]))
    bot.say("UALICE", "yes")  # answered, so the next alert is a new conversation
    bot.fd.answer_push(bot.fd.wait_for_push(timeout=10).txid, "allow")
    bot.wait_status(first, "resolved")
    resp = bot.http.put(
        "/api/v1/people/locale",
        json={"user": "alice@example.com", "locale": "ja", "requested_by": "ULEAD"},
        headers={"Authorization": f"Bearer {READ_TOKEN}"},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"user": "UALICE", "locale": "ja", "before": None}
    second = int(bot.post_alert(dedup_key="lang-api-after")["id"])
    bot.wait_status(second, "awaiting_ack")
    dms = wait_until(lambda: (d := bot.dms("UALICE"))[1:] and d, 10, "the second DM")
    assert translator("ja").gettext("Yes, this was me") in str(_blocks(dms[-1]))


def test_a_language_by_email_while_slack_cannot_answer_is_a_503(
    fs: FakeSlack, make_bot: MakeBot
) -> None:
    """Finding the person by email needs Slack: while Slack answers a transient error the API
    says so (503, retry), not a bare 500."""
    bot, _ = _alice_speaks(fs, make_bot, "en-US", escalation={"responders": ["ULEAD"]})
    fs.add_user("UBORIS", "boris@example.com", real_name="Boris")
    for _ in range(8):  # every try of the lookup, Slack's documented transient error
        fs.fail_next("users.lookupByEmail", error="internal_error")
    resp = bot.http.put(
        "/api/v1/people/locale",
        json={"user": "boris@example.com", "locale": "de", "requested_by": "ULEAD"},
        headers={"Authorization": f"Bearer {READ_TOKEN}"},
    )
    assert resp.status_code == 503, resp.text
    assert resp.json()["error"] == "slack_unavailable" and "Retry-After" in resp.headers
