"""AER in each reader's language, through the running service (docs/i18n.md): the person it
signed out reads the DM in their Slack language; the channel reads notices in the team's
language (``i18n.team_locale``); a contact it DMs reads the notice in their own language."""

from __future__ import annotations

from securitybot.demo import FakeSlack
from tests.aer_e2e.conftest import AER_CHANNEL, QUIET, TOR_IP, MakeBot, post_events
from tests.e2e.harness import ok_calls, wait_until

TEAM_FR = {"i18n": {"team_locale": "fr", "locales": {"USECADM": "ja"}}}


def _texts(fs: FakeSlack, channel: str) -> list[str]:
    return [c.params["text"] for c in ok_calls(fs, "chat.postMessage", channel)]


def test_a_person_whose_slack_speaks_german_is_told_in_german_they_were_signed_out(
    make_bot: MakeBot, fs: FakeSlack
) -> None:
    fs.add_user("UALICE", "alice@example.com", real_name="Alice Liddell", locale="de-DE")
    bot = make_bot(TEAM_FR)
    post_events(bot, [{"org": QUIET, "user": "UALICE", "action": "login", "ip": TOR_IP,
                       "session": "S1"}])  # fmt: skip
    wait_until(lambda: fs.session_resets == ["UALICE"], what="the reset")
    [dm] = wait_until(lambda: _texts(fs, "DUALICE"), what="the DM after the reset")
    assert dm.startswith("Zu Ihrer Sicherheit hat Securitybot Sie auf allen Ihren Geräten")
    assert f"`{TOR_IP}`" in dm


def test_notices_are_in_the_teams_language_and_a_contacts_own(
    make_bot: MakeBot, fs: FakeSlack
) -> None:
    bot = make_bot(TEAM_FR)
    base = {"org": QUIET, "user": "UBOB", "action": "login", "country": "US"}
    events = [{**base, "asn": asn, "session": f"S{asn}"} for asn in (7922, 3320)]
    assert post_events(bot, events)["decisions"] == {"notify": 1}
    [channel] = wait_until(lambda: _texts(fs, AER_CHANNEL), what="the channel's notice")
    assert channel.startswith(":rotating_light: Réponse aux événements anormaux : *")
    assert "Dernière anomalie : " in channel
    [secadm] = wait_until(lambda: _texts(fs, "DUSECADM"), what="the security admin's DM")
    assert "異常イベント対応" in secadm
    [owner] = wait_until(lambda: _texts(fs, "DUOWNER"), what="the primary owner's DM")
    assert owner.startswith(":rotating_light: Anomaly Event Response: *")  # no language set
