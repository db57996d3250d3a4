"""AER in each reader's language, through the running service (docs/i18n.md): the person it
signed out reads the DM in their Slack language; the channel reads notices in the team's
language (``i18n.team_locale``); a contact it DMs reads the notice in their own language."""

from __future__ import annotations

from securitybot.demo import FakeSlack
from tests.aer_e2e.conftest import AER_CHANNEL, QUIET, TOR_IP, MakeBot, get, post_events
from tests.e2e.harness import SECURITY_CHANNEL, Bot, ok_calls, wait_until

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


def _bob_noticed(make_bot: MakeBot, fs: FakeSlack) -> tuple[Bot, str]:
    """Bob logs in from two networks of a French team's org whose response is notify_only:
    the bot and the notice in the AER channel."""
    bot = make_bot(TEAM_FR)
    base = {"org": QUIET, "user": "UBOB", "action": "login", "country": "US"}
    events = [{**base, "asn": asn, "session": f"S{asn}"} for asn in (7922, 3320)]
    assert post_events(bot, events)["decisions"] == {"notify": 1}
    [notice] = wait_until(lambda: _texts(fs, AER_CHANNEL), what="the channel's notice")
    return bot, notice


def test_notices_are_in_the_teams_language_and_a_contacts_own(
    make_bot: MakeBot, fs: FakeSlack
) -> None:
    _bot, channel = _bob_noticed(make_bot, fs)
    assert channel.startswith(":rotating_light: Réponse aux événements anormaux : *")
    assert "Dernière anomalie : " in channel
    [secadm] = wait_until(lambda: _texts(fs, "DUSECADM"), what="the security admin's DM")
    assert "異常イベント対応" in secadm
    [owner] = wait_until(lambda: _texts(fs, "DUOWNER"), what="the primary owner's DM")
    assert owner.startswith(":rotating_light: Anomaly Event Response: *")  # no language set


# --- why AER decided: in the team's language in Slack, in English in the API ------------------


def _reasons(bot: Bot, verdict: str) -> list[str]:
    rows = get(bot, "/api/v1/anomalies", org=QUIET, verdict=verdict)["anomalies"]
    return [r["decision"]["reason"] for r in rows]


def test_an_escalation_for_persistence_after_a_reset_gives_its_reason_in_french(
    make_bot: MakeBot, fs: FakeSlack
) -> None:
    bot = make_bot(TEAM_FR)
    tor = {"org": QUIET, "user": "UALICE", "action": "login", "ip": TOR_IP}
    post_events(bot, [{**tor, "session": "S1"}])
    wait_until(lambda: fs.session_resets == ["UALICE"], what="the reset")
    assert post_events(bot, [{**tor, "session": "S2"}])["decisions"] == {"escalate_persistence": 1}
    [post] = wait_until(lambda: _texts(fs, SECURITY_CHANNEL), what="the escalation")
    assert post.startswith(":warning: Escalade AER pour <@UALICE> (org `TQUIET`) : tor (")
    assert " pour UALICE : persistance après la réinitialisation du " in post
    assert " ; escalade vers des humains au lieu d'une nouvelle réinitialisation." in post
    assert "persistence" not in post and "escalating" not in post and " for UALICE" not in post
    # The recorded reason, as the API returns it, is the English sentence it always was.
    [reason] = _reasons(bot, "escalate_persistence")
    assert reason.startswith("tor (tor_exit_node) for UALICE: persistence after reset at ")
    assert reason.endswith(
        " after the user's sessions were reset; escalating to humans instead of resetting again"
    )


def test_a_notice_for_notify_only_gives_its_reason_in_french(
    make_bot: MakeBot, fs: FakeSlack
) -> None:
    bot, notice = _bob_noticed(make_bot, fs)
    [reason] = _reasons(bot, "notify")
    kind = reason.split(" ", 1)[0]
    assert reason.endswith(f" for UBOB: the org's response to {kind} is notify_only")
    assert notice.endswith(f" pour UBOB : la réponse de l'org à {kind} est notify_only")
    assert "response" not in notice


def test_a_held_reset_gives_its_reason_in_french(make_bot: MakeBot, fs: FakeSlack) -> None:
    bot = make_bot(TEAM_FR, reset_budget={"count": 1, "per": "1h"})
    tor = [{"org": QUIET, "user": u, "action": "login", "ip": TOR_IP, "session": f"S{u}"}
           for u in ("UALICE", "UBOB")]  # fmt: skip
    assert post_events(bot, tor)["decisions"] == {"reset": 1, "held": 1}
    [reason] = _reasons(bot, "held")
    assert reason.endswith(
        "is reset_sessions; held: org TQUIET's reset budget (1 per 1 h) is spent, so a responder "
        "must release or discard this reset"
    )
    held_user = reason.split(" for ", 1)[1].split(":", 1)[0]
    notices = wait_until(
        lambda: [t for t in _texts(fs, AER_CHANNEL) if f"<@{held_user}>" in t],
        what="the held reset's notice",
    )
    assert notices[0].endswith(
        f" pour {held_user} : la réponse de l'org à tor est reset_sessions ; retenue : le budget "
        "de réinitialisations de l'org TQUIET (1 par 1 h) est épuisé, un intervenant doit donc "
        "libérer ou écarter cette réinitialisation"
    )
