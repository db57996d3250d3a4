"""``/securitybot locale @user <language>``: the security team chooses a person's language."""

from __future__ import annotations

from securitybot.demo import FakeSlack
from securitybot.i18n import translator
from securitybot.slack.commands import NOT_RESPONDER
from securitybot.store import slack_people
from tests.e2e.conftest import MakeBot
from tests.e2e.test_commands import LEAD, TEAM, audit, command
from tests.e2e.test_commands import team_fs as team_fs  # the fixture


def _bob_locale(bot: object) -> str | None:
    with bot.db.read() as session:  # type: ignore[attr-defined]
        return slack_people.locale(session, "UBOB")


def test_a_responder_chooses_bobs_language_and_clears_it(
    team_fs: FakeSlack, make_bot: MakeBot
) -> None:
    bot = make_bot(**TEAM)
    assert command(bot, LEAD, "locale <@UBOB|bob> de-AT") == "<@UBOB> is now asked in `de`."
    assert _bob_locale(bot) == "de"
    [chosen] = audit(bot, "person.locale_set")
    assert (chosen.actor, chosen.subject_user) == (LEAD, "UBOB")
    assert chosen.details == {"locale": "de", "before": None, "via": "slack_command"}

    alert = bot.post_alert(user="bob@example.com", dedup_key="bob-de")
    bot.wait_status(alert["id"], "awaiting_ack")
    assert "Ja, das war ich" in str(bot.dms("UBOB")[0].params["blocks"])
    # What Bob asks about himself is answered in his language too.
    status = command(bot, "UBOB", "status")
    assert status.startswith(translator("de").gettext("*Your open alerts*"))

    assert "Slack language again" in command(bot, LEAD, "locale <@UBOB> default")
    assert _bob_locale(bot) is None
    assert command(bot, "UBOB", "status").startswith("*Your open alerts*")  # Slack: en-US


def test_only_the_team_chooses_and_mistakes_are_explained(
    team_fs: FakeSlack, make_bot: MakeBot
) -> None:
    bot = make_bot(**TEAM)
    assert command(bot, "UALICE", "locale <@UBOB> ja") == NOT_RESPONDER
    [refused] = audit(bot, "command.refused")
    assert (refused.subject_user, refused.details["command"]) == ("UBOB", "locale")
    assert "no catalog for `it`" in command(bot, LEAD, "locale <@UBOB> it").lower()
    assert "Usage:" in command(bot, LEAD, "locale <@UBOB>")
    assert "not a Slack user mention" in command(bot, LEAD, "locale bob de")
    assert _bob_locale(bot) is None
    assert audit(bot, "person.locale_set") == []


def test_responders_are_answered_in_the_team_locale(team_fs: FakeSlack, make_bot: MakeBot) -> None:
    """``i18n.team_locale: fr``: the team's answers are French; what anyone may ask (help's
    first part, status) stays in the asker's own language (here Slack's English)."""
    bot = make_bot(**TEAM, i18n={"team_locale": "fr"})
    said = command(bot, LEAD, "locale <@UBOB|bob> ja")
    assert said == "<@UBOB> est maintenant interrogé en `ja`."
    assert command(bot, LEAD, "exemptions") == "Aucune exemption active."
    assert command(bot, LEAD, "revoke S9") == "Il n'y a pas de suspension active S9."
    assert command(bot, LEAD, "frobnicate").startswith("Commande inconnue `frobnicate`.")
    helped = command(bot, LEAD, "help")
    assert "*/securitybot* for everyone:" in helped and "Pour l'équipe de sécurité :" in helped
    # Someone not on the team is refused in their own language, not the team's.
    assert command(bot, "UALICE", "exemptions") == NOT_RESPONDER
