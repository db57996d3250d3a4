"""AER's decision reasons in the team's language (docs/i18n.md): the escalation and the notices
show why AER decided as it did in ``i18n.team_locale``, values escaped as before; the reason
AER records (and the API returns, and the log says) stays the English sentence it always was;
a payload or notification row written before the reason was kept as a message shows its
English."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import column, insert, literal_column, table

from securitybot.aer.decide import Action, OrgAerConfig, UserHistory, decide, held
from securitybot.aer.detect import Anomaly
from securitybot.aer.notify import consolidate
from securitybot.aer.respond import escalation_text
from securitybot.i18n import SHIPPED, translator
from securitybot.store.base import UTCDateTime
from securitybot.store.db import Database, migrate
from tests.aer.test_respond_languages import _job, _responder, _Slack

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
FR = translator("fr")
DEFAULTS = OrgAerConfig()


def anomaly(kind: str = "tor", session: str | None = "S2", rule: str = "tor_exit_node") -> Anomaly:
    return Anomaly("T0A", "UALICE", kind, session, NOW, rule, "x", None, "198.51.100.7", None,
                   "US", None, {})  # fmt: skip


def reset_ago(minutes: float, **more: Any) -> UserHistory:
    return UserHistory(last_reset_at=NOW - timedelta(minutes=minutes), **more)


def payload(a: Anomaly, d: Any) -> dict[str, Any]:
    """What the service queues for an escalation (service.handle)."""
    return {"anomaly_id": 1, "org": a.org, "user": a.user, "type": a.type, "rule": a.rule,
            "observed": a.observed, "session": a.session, "reason": d.reason,
            "reason_i18n": d.why.to_json()}  # fmt: skip


# --- the English record: exactly as before ----------------------------------------------------

WHAT = "tor (tor_exit_node) for UALICE"
ENGLISH = [
    (replace(DEFAULTS, enabled=False), UserHistory(), "S2",
     f"{WHAT}: AER is disabled for org T0A"),
    (replace(DEFAULTS, excluded_users=frozenset({"UALICE"})), UserHistory(), "S2",
     f"{WHAT}: the user is excluded from AER"),
    (replace(DEFAULTS, excluded_groups=frozenset({"g2", "g1"})),
     UserHistory(user_groups=frozenset({"g1", "g2"})), "S2",
     f"{WHAT}: the user is in excluded group g1, g2"),
    (DEFAULTS, reset_ago(10, reset_sessions=frozenset({"S2"})), "S2",
     f"{WHAT}: session S2 was already reset at 2024-05-01T11:50:00+00:00"),
    (DEFAULTS, UserHistory(reset_sessions=frozenset({"S2"})), "S2",
     f"{WHAT}: session S2 was already reset at the last reset"),
    (DEFAULTS, UserHistory(escalated_sessions=frozenset({"S2"})), "S2",
     f"{WHAT}: session S2 was already escalated for persistence"),
    (replace(DEFAULTS, responses={"tor": Action.NOTIFY_ONLY}), UserHistory(), "S2",
     f"{WHAT}: the org's response to tor is notify_only"),
    (replace(DEFAULTS, responses={"tor": Action.ASK_USER}), UserHistory(), "S2",
     f"{WHAT}: the org's response to tor is ask_user"),
    (DEFAULTS, reset_ago(10), "S2",
     f"{WHAT}: persistence after reset at 2024-05-01T11:50:00+00:00: new session S2 10 min "
     "after the user's sessions were reset; escalating to humans instead of resetting again"),
    (DEFAULTS, reset_ago(1), None,
     f"{WHAT}: sessions were reset 60s ago at 2024-05-01T11:59:00+00:00, within the 30 min "
     "cool-down; notifying instead of resetting again"),
    (replace(DEFAULTS, cooldown=86400), reset_ago(300), None,
     f"{WHAT}: sessions were reset 5.0 h ago at 2024-05-01T07:00:00+00:00, within the 24.0 h "
     "cool-down; notifying instead of resetting again"),
    (DEFAULTS, UserHistory(), "S2", f"{WHAT}: the org's response to tor is reset_sessions"),
]  # fmt: skip


@pytest.mark.parametrize(("cfg", "history", "session", "english"), ENGLISH)
def test_every_decision_records_the_same_english_reason_as_before(
    cfg: OrgAerConfig, history: UserHistory, session: str | None, english: str
) -> None:
    assert decide(anomaly(session=session), cfg, history, NOW).reason == english


def test_a_held_reset_records_the_same_english_reason_as_before() -> None:
    from securitybot.aer.budget import describe_reason
    from securitybot.config import AerResetBudget

    d = held(decide(anomaly(), DEFAULTS, UserHistory(), NOW), "T0A",
             describe_reason(AerResetBudget(count=3, per=3600)))  # fmt: skip
    assert d.reason == (
        f"{WHAT}: the org's response to tor is reset_sessions; held: org T0A's reset budget "
        "(3 per 1 h) is spent, so a responder must release or discard this reset"
    )


# --- in the team's language ------------------------------------------------------------------


def test_an_escalation_for_persistence_after_a_reset_reads_in_french() -> None:
    a = anomaly(session="S2")
    text = escalation_text(payload(a, decide(a, DEFAULTS, reset_ago(10), NOW)), FR)
    assert text == (
        ":warning: Escalade AER pour <@UALICE> (org `T0A`) : tor (tor_exit_node). tor "
        "(tor_exit_node) pour UALICE : persistance après la réinitialisation du "
        "2024-05-01T11:50:00+00:00 : nouvelle session S2 10 min après la réinitialisation des "
        "sessions de l'utilisateur ; escalade vers des humains au lieu d'une nouvelle "
        "réinitialisation. Un humain doit examiner ce compte."
    )


@pytest.mark.parametrize("lang", [lang for lang in SHIPPED if lang != "en"])
def test_no_decision_reason_reads_in_english_in_another_language(lang: str) -> None:
    t = translator(lang)
    for cfg, history, session, english in ENGLISH:
        a = anomaly(session=session)
        shown = escalation_text(payload(a, decide(a, cfg, history, NOW)), t)
        assert english.removeprefix(WHAT) not in shown, (lang, shown)
        assert " for UALICE" not in shown, (lang, shown)


def test_the_values_in_a_translated_reason_stay_escaped() -> None:
    a = anomaly(rule="<!channel> `x` & <https://evil.example|click>", session="<@U0BOSS>")
    text = escalation_text(payload(a, decide(a, DEFAULTS, reset_ago(10), NOW)), FR)
    assert "<!channel>" not in text and "<https" not in text and "<@U0BOSS>" not in text
    assert "&lt;!channel&gt;" in text and "&amp;" in text
    assert text.count("`") % 2 == 0


def test_a_released_reset_that_slack_refused_is_escalated_with_its_reason_in_french() -> None:
    from securitybot.aer.budget import describe_reason, released
    from securitybot.config import AerResetBudget

    a = anomaly(session="S2")
    d = held(decide(a, DEFAULTS, UserHistory(), NOW), a.org,
             describe_reason(AerResetBudget(count=3, per=3600)))  # fmt: skip
    p = released(payload(a, d), "ULEAD")
    assert p["reason"] == f"{d.reason}; released by ULEAD"  # as recorded before
    text = escalation_text({**p, "refused": {"error": "reset_refused:cannot_reset_bot"}}, FR)
    assert text.endswith(
        "ou écarter cette réinitialisation ; libérée par ULEAD; reset_refused:cannot_reset_bot. "
        "Un humain doit examiner ce compte."
    )


def test_an_escalation_queued_before_the_upgrade_shows_its_english_reason() -> None:
    old = {"anomaly_id": 1, "org": "T0A", "user": "UALICE", "type": "tor",
           "rule": "tor_exit_node", "observed": "x", "reason": f"{WHAT}: persistence…"}  # fmt: skip
    assert f"tor (tor_exit_node). {WHAT}: persistence…. Un humain" in escalation_text(old, FR)


def test_a_reason_changed_by_an_older_replica_shows_its_english_not_a_stale_message() -> None:
    a = anomaly(session="S2")
    p = payload(a, decide(a, DEFAULTS, UserHistory(), NOW))
    p["reason"] += "; released by ULEAD"  # the previous release's budget code, reason_i18n kept
    assert "reset_sessions; released by ULEAD" in escalation_text(p, FR)


def test_a_payload_with_a_template_this_version_does_not_know_shows_its_english() -> None:
    a = anomaly(session="S2")
    p = payload(a, decide(a, DEFAULTS, UserHistory(), NOW))
    p["reason_i18n"] = {"template": "*{what}* <!here>", "args": {"what": "x"}}
    assert f"{WHAT}: the org's response to tor is reset_sessions" in escalation_text(p, FR)


# --- notices (a database row) ----------------------------------------------------------------


def _notice(db: Database, history: UserHistory, *, cfg: OrgAerConfig = DEFAULTS,
            budget_spent: bool = False) -> str:  # fmt: skip
    a = anomaly(session="S2")
    d = decide(a, cfg, history, NOW)
    if budget_spent:
        from securitybot.aer.budget import describe_reason
        from securitybot.config import AerResetBudget

        d = held(d, a.org, describe_reason(AerResetBudget(count=3, per=3600)))
    with db.write() as session:
        [job] = consolidate(session, org=a.org, user=a.user, kind=a.type, targets=["CAER"],
                            reason=d.why, now=NOW, window=3600)  # fmt: skip
    slack = _Slack()
    asyncio.run(_responder(db, slack, "fr").notify(_job(job["payload"])))
    [(_, shown)] = slack.posts
    return shown


def test_a_notice_for_notify_only_reads_in_french(db: Database) -> None:
    cfg = replace(DEFAULTS, responses={"tor": Action.NOTIFY_ONLY})
    shown = _notice(db, UserHistory(), cfg=cfg)
    assert shown.endswith(
        "\nDernière anomalie : tor (tor_exit_node) pour UALICE : la réponse de l'org à tor est "
        "notify_only"
    )


def test_a_held_resets_notice_reads_in_french(db: Database) -> None:
    shown = _notice(db, UserHistory(), budget_spent=True)
    assert shown.endswith(
        "\nDernière anomalie : tor (tor_exit_node) pour UALICE : la réponse de l'org à tor est "
        "reset_sessions ; retenue : le budget de réinitialisations de l'org T0A (3 par 1 h) est "
        "épuisé, un intervenant doit donc libérer ou écarter cette réinitialisation"
    )


def test_a_notice_written_before_the_upgrade_shows_its_english_reason(empty_db: Database) -> None:
    """A row the previous release wrote (schema 0024), then the migration, then the notice."""
    migrate(empty_db.engine, "0024_storm_dm_people")
    names = ("org", "user_id", "type", "recipient", "count", "shown_count", "last_reason")
    old = table("aer_notifications", *(column(n) for n in names),
                column("first_at", UTCDateTime()), column("last_at", UTCDateTime()))  # fmt: skip
    with empty_db.engine.begin() as conn:
        nid = conn.execute(insert(old).values(
            org="T0A", user_id="UALICE", type="tor", recipient="CAER", count=1, shown_count=0,
            last_reason=f"{WHAT}: the org's response to tor is notify_only", first_at=NOW,
            last_at=NOW).returning(literal_column("id"))).scalar_one()  # fmt: skip
    migrate(empty_db.engine)
    slack = _Slack()
    asyncio.run(_responder(empty_db, slack, "fr").notify(_job({"notification_id": nid})))
    [(_, shown)] = slack.posts
    assert shown.endswith(
        "\nDernière anomalie : tor (tor_exit_node) for UALICE: the org's response to tor is "
        "notify_only"
    )
