"""The DM lifecycle in every shipped language, through real sockets (issue 33): the person's
Slack locale picks the catalog; typed answers in that language work; what Slack is sent stays
within Block Kit's limits; the security team's post stays in English."""

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
from tests.e2e.harness import Bot, wait_until

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
