"""The team's reports in ``i18n.team_locale`` (docs/i18n.md): the daily suppression summary,
with the language's plural forms, and the timeline's "Sessions not reset" line, whose reason
is read from its code (``why_code``) in the team's language; AER's notices, escalations and
sign-out DM fit Slack's limits and keep untrusted values inert in every language."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securitybot.aer.notify import render as aer_notice
from securitybot.aer.respond import escalation_text, signed_out_text
from securitybot.flows.suppression_summary import MAX_LINES, summary_text
from securitybot.flows.timeline import timeline_text
from securitybot.i18n import LANGUAGES, translator
from securitybot.ingest.schema import SLACK_ID_RE
from securitybot.slack.session_reset import WHY, SessionResetUnavailable
from securitybot.store.aer_models import AerNotification
from securitybot.store.models import AuditLog
from securitybot.store.suppression_models import SuppressionRule
from tests.slack.helpers import assert_inert, make_alert
from tests.slack.test_block_limits_properties import SETTINGS as SETTINGS_EN
from tests.slack.test_block_limits_properties import check, untrusted

AT = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
SETTINGS = settings(parent=SETTINGS_EN, max_examples=8)
RULE = SuppressionRule(id=1, kind="sensitive_command", matchers={"host": "build-*"},
                       reason="CI image rebuild", created_by="USECLEAD",
                       expires_at=AT)  # fmt: skip


def _summary(lang: str, n: int) -> str:
    alerts = [make_alert(id=i, suppression_id=1, title="flurb -export") for i in range(1, n + 1)]
    text = summary_text(alerts, {1: RULE}, AT - timedelta(days=1), AT, translator(lang))
    assert text is not None
    return text


def test_the_suppression_summary_is_in_french_with_french_plurals() -> None:
    one, two = _summary("fr", 1), _summary("fr", 2)
    assert one.startswith("*🔕 1 alerte mise en sourdine* entre <!date^")
    assert two.startswith("*🔕 2 alertes mises en sourdine* entre <!date^")
    assert "`R1 sensitive_command host=build-*` ×2 par <@USECLEAD> : CI image rebuild" in two
    many = _summary("fr", MAX_LINES + 2)
    assert many.endswith("   …et 2 autres (tableau de bord : Suppressions)")
    assert "suppressed" not in many and "more" not in many and " by " not in many


def test_the_suppression_summary_in_english_reads_as_before() -> None:
    text = _summary("en", MAX_LINES + 1)
    assert text.startswith(f"*🔕 {MAX_LINES + 1} alerts suppressed* between <!date^")
    assert "`R1 sensitive_command host=build-*` ×31 by <@USECLEAD>: CI image rebuild" in text
    assert text.endswith("   …and 1 more (dashboard: Suppressions)")
    assert _summary("en", 1).startswith("*🔕 1 alert suppressed* between")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_suppression_summary_keeps_a_rules_text_inert(lang: str) -> None:
    rule = SuppressionRule(id=1, kind="sensitive_command", matchers={"host": "<!channel>"},
                           reason="<!here> `x` *y*", created_by="<!everyone>",
                           expires_at=AT)  # fmt: skip
    alert = make_alert(suppression_id=1, title="<https://evil|click>", user_id=None,
                       user_given="<@U0BOSS>")  # fmt: skip
    text = summary_text([alert], {1: rule}, AT, AT, translator(lang))
    assert text is not None
    assert_inert([text])


def _failed(details: dict[str, str], lang: str) -> str:
    row = AuditLog(action="user.sessions_reset_failed", actor="system", details=details)
    return timeline_text(row, translator(lang))


@pytest.mark.parametrize("code", sorted(WHY))
def test_sessions_not_reset_reads_fully_in_the_teams_language(code: str) -> None:
    details = SessionResetUnavailable.because("TBLUE", "Blue Co", code).details()
    assert details["why_code"] == code and details["why"] == WHY[code]  # English kept
    line = _failed(details, "fr")
    assert line.startswith(
        "Sessions *non* réinitialisées pour l'espace de travail Blue Co : "
        "`session_reset_unavailable`, "
    )
    assert translator("fr").gettext(WHY[code]) in line
    assert WHY[code] not in line


def test_sessions_not_reset_before_reasons_had_codes_shows_the_stored_reason() -> None:
    details = {"error": "session_reset_unavailable", "team": "TBLUE", "workspace": "Blue Co",
               "why": "not on <!here> Grid"}  # fmt: skip
    line = _failed(details, "de")
    assert "not on &lt;!here&gt; Grid" in line and line.startswith("Sitzungen *nicht*")


@pytest.mark.parametrize("lang", LANGUAGES)
@SETTINGS
@given(untrusted, untrusted, untrusted, untrusted, st.integers(1, 10**9),
       st.sampled_from([None, *sorted(WHY)]))  # fmt: skip
def test_aer_notices_fit_and_stay_inert_in_every_language(
    lang: str, org: str, user: str, kind: str, reason: str, count: int, why_code: str | None
) -> None:
    t = translator(lang)
    row = AerNotification(org=org, user_id=user, type=kind, recipient="CAER", count=count,
                          last_reason=reason, first_at=AT)  # fmt: skip
    refused = {"error": reason, "workspace": org, "team": kind, "why": reason}
    if why_code is not None:
        refused["why_code"] = why_code
    p = {"user": user, "org": org, "type": kind, "rule": reason, "ip": org, "reason": reason,
         "refused": refused}  # fmt: skip
    allowed = (f"<@{user}>",) if SLACK_ID_RE.match(user) else ()
    for text in (aer_notice(row, t), signed_out_text(p, t), escalation_text(p, t),
                 escalation_text({**p, "refused": {"error": reason}}, t)):  # fmt: skip
        check(text, allowed=allowed)


@pytest.mark.parametrize("lang", LANGUAGES)
@SETTINGS
@given(untrusted, untrusted, untrusted, untrusted, untrusted, st.booleans())
def test_aer_decision_reasons_fit_and_stay_inert_in_every_language(
    lang: str, org: str, user: str, kind: str, rule: str, session: str, budget_spent: bool
) -> None:
    """The reason as a message (template translated, values escaped): persistence after a reset
    (the longest), held past the budget, in the escalation and the notice."""
    from securitybot.aer.budget import describe_reason
    from securitybot.aer.decide import Action, OrgAerConfig, UserHistory, decide, held
    from securitybot.aer.detect import Anomaly
    from securitybot.config import AerResetBudget

    t = translator(lang)
    a = Anomaly(org, user, kind, session, AT, rule, "x", None, None, None, None, None, {})
    history = UserHistory(last_reset_at=AT - timedelta(minutes=5))
    d = decide(a, OrgAerConfig(responses={kind: Action.RESET_SESSIONS}), history, AT)
    if budget_spent:
        d = held(d, org, describe_reason(AerResetBudget(count=3, per=3600)))
    row = AerNotification(org=org, user_id=user, type=kind, recipient="CAER", count=2,
                          last_reason=d.reason, last_reason_i18n=d.why.to_json(),
                          first_at=AT)  # fmt: skip
    p = {"user": user, "org": org, "type": kind, "rule": rule, "reason": d.reason,
         "reason_i18n": d.why.to_json()}  # fmt: skip
    allowed = (f"<@{user}>",) if SLACK_ID_RE.match(user) else ()
    for text in (aer_notice(row, t), escalation_text(p, t)):
        check(text, allowed=allowed)
