"""AER speaks each reader's language (docs/i18n.md): the person signed out reads the DM in
their own language, found as for their alert DMs; the security channel reads escalations and
notices in ``i18n.team_locale``; a notice sent to a person (an org's primary owner, a security
admin) is in that person's language."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from securitybot.aer import respond
from securitybot.aer.respond import Responder
from securitybot.config import Settings
from securitybot.i18n import Translator, translator
from securitybot.kinds import load_kinds
from securitybot.outbox.jobs import Done, Job
from securitybot.slack.session_reset import NOT_GRID, SessionResetUnavailable
from securitybot.store.aer_models import AerNotification
from securitybot.store.db import Database
from securitybot.store.models import Outbox

AT = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
LANGUAGE = {"UHANS": "de", "UYUKI": "ja"}  # everyone else: English
ANOMALY = {
    "org": "E0ACME", "user": "UHANS", "anomaly_id": 1, "type": "session_fingerprint",
    "rule": "new_country", "observed": 1, "reason": "sign-in from a new country",
    "ip": "203.0.113.9",
}  # fmt: skip


class _Slack:
    """Remembers what was posted where; a person's DM channel is ``D`` + their id."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, str]] = []
        self.updates: list[tuple[str, str]] = []

    async def open_dm(self, user: str) -> str:
        return f"D{user}"

    async def post(self, channel: str, text: str, *_: Any, **__: Any) -> str:
        self.posts.append((channel, text))
        return f"1767323040.{len(self.posts):06d}"

    async def update(self, channel: str, ts: str, text: str, *_: Any, **__: Any) -> None:
        self.updates.append((channel, text))


async def _locale_of(user_id: str) -> Translator:
    return translator(LANGUAGE.get(user_id))


def _responder(db: Database | None, slack: _Slack, team_locale: str = "en") -> Responder:
    settings = Settings.model_validate(
        {"slack": {"security_channel": "CSECURITY"}, "i18n": {"team_locale": team_locale}}
    )
    kinds = load_kinds(settings.alerts.dir)
    return Responder(db, settings, kinds, slack, locale_of=_locale_of)  # type: ignore[arg-type]


def _job(payload: dict[str, Any]) -> Job:
    return Job(7, "aer", None, payload, attempts=0, created_at=AT)


def test_a_person_whose_language_is_german_is_told_in_german_they_were_signed_out() -> None:
    slack = _Slack()
    responder = _responder(None, slack, team_locale="fr")
    assert isinstance(asyncio.run(responder.dm_user(_job(ANOMALY))), Done)
    [(channel, text)] = slack.posts
    assert channel == "DUHANS"
    assert "hat Securitybot Sie auf allen Ihren Geräten von Slack abgemeldet" in text
    assert "session_fingerprint (new_country, von `203.0.113.9`)" in text
    assert "signed you out" not in text


def test_someone_without_a_language_of_their_own_is_told_in_english() -> None:
    slack = _Slack()
    responder = _responder(None, slack, team_locale="fr")
    asyncio.run(responder.dm_user(_job({**ANOMALY, "user": "UALICE"})))
    [(_, text)] = slack.posts
    assert text.startswith("For your security, Securitybot signed you out of Slack")


def test_the_escalation_is_in_the_teams_language() -> None:
    slack = _Slack()
    responder = _responder(None, slack, team_locale="fr")
    asyncio.run(responder.escalate(_job(ANOMALY)))
    [(channel, text)] = slack.posts
    assert channel == "CSECURITY"
    assert text.startswith(":warning: Escalade AER pour <@UHANS> (org `E0ACME`)")
    assert "sign-in from a new country" in text  # the anomaly's own reason, as written
    assert "A human needs" not in text


def _notify(db: Database, team_locale: str, recipient: str, count: int) -> list[str]:
    with db.write() as session:
        row = AerNotification(org="E0ACME", user_id="UHANS", type="session_fingerprint",
                              recipient=recipient, count=count, shown_count=0,
                              last_reason="sign-in from a new country", first_at=AT,
                              last_at=AT)  # fmt: skip
        session.add(row)
        session.flush()
        nid = row.id
    slack = _Slack()
    responder = _responder(db, slack, team_locale)
    asyncio.run(responder.notify(_job({"notification_id": nid})))
    return [text for _, text in slack.posts]


def test_a_notice_to_the_aer_channel_is_in_the_teams_language(db: Database) -> None:
    [text] = _notify(db, "fr", "CAER", count=3)
    assert text.startswith(
        ":rotating_light: Réponse aux événements anormaux : *session_fingerprint* pour <@UHANS> "
        "dans l'org `E0ACME` (x3 depuis 03:04 UTC).\nDernière anomalie : sign-in from a new country"
    )


def test_a_notice_to_a_person_is_in_their_language(db: Database) -> None:
    [text] = _notify(db, "fr", "UYUKI", count=1)
    assert "異常イベント対応" in text and "最新" in text
    assert "Réponse" not in text and "Anomaly Event Response" not in text


def test_a_reset_no_token_can_do_escalates_with_the_reason_in_the_teams_language(
    db: Database,
) -> None:
    responder = _responder(db, _Slack(), team_locale="fr")
    unavailable = SessionResetUnavailable.because("TBLUE", "Blue Co", NOT_GRID)
    responder._escalate_now(ANOMALY, "reset_refused:session_reset_unavailable", unavailable)
    with db.read() as session:
        [job] = session.query(Outbox).filter(Outbox.effect == respond.ESCALATE_EFFECT).all()
        payload = job.payload
    slack = _Slack()
    asyncio.run(_responder(db, slack, team_locale="fr").escalate(_job(payload)))
    [(_, text)] = slack.posts
    assert (
        "sign-in from a new country ; reset_refused:session_reset_unavailable dans l'espace de "
        "travail Blue Co (TBLUE) : l'espace de travail n'est pas sur Enterprise Grid"
    ) in text
    assert "not on Enterprise Grid" not in text


def test_an_escalation_queued_before_the_upgrade_still_reads_as_queued() -> None:
    # Older rows carry the whole reason in English, already composed.
    slack = _Slack()
    old = {**ANOMALY, "reason": "sign-in from a new country; reset_refused:cannot_reset_bot"}
    asyncio.run(_responder(None, slack, team_locale="de").escalate(_job(old)))
    [(_, text)] = slack.posts
    assert "sign-in from a new country; reset_refused:cannot_reset_bot" in text
    assert text.startswith(":warning: AER-Eskalation")
