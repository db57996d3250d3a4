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
