"""What the security team reads, in every shipped language (``i18n.team_locale``): the
escalation post with its timeline, the triage buttons and modal, storms, held resets and App
Home's team part fit Block Kit's limits with the longest translation and the worst alert, and
untrusted values stay inert; the alert's own text is shown as the tool wrote it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from slack_sdk.models.views import View

from securitybot.aer.held_message import held_message
from securitybot.flows.timeline import _TIMELINE, timeline_text
from securitybot.i18n import LANGUAGES, translator
from securitybot.ingest.schema import SLACK_ID_RE
from securitybot.slack import limits, messages
from securitybot.slack.app_home import TeamView, home_view
from securitybot.slack.triage import benign_modal
from securitybot.store.aer_budget_models import AerHeldBatch
from securitybot.store.models import Alert, AuditLog
from securitybot.store.storm_models import Storm
from securitybot.storms.message import storm_message
from tests.slack.helpers import assert_inert, make_alert, mrkdwn_of
from tests.slack.test_app_home_view import teams
from tests.slack.test_block_limits_properties import (
    KINDS,
    alerts,
    check,
    grouped,
    untrusted,
    user_ids,
)
from tests.slack.test_block_limits_properties import SETTINGS as SETTINGS_EN

AT = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
SETTINGS = settings(parent=SETTINGS_EN, max_examples=8)
# The timeline's other phrases: DM deletions and edits, and what the pager did.
OTHER_ROWS = [
    ("alert.dm_deleted", {"deleted": "question", "deleted_ts": "1767323040.000100",
                          "deleted_at": "2026-01-02T03:05:00+00:00"}),
    ("alert.dm_deleted_late", {"deleted": "reply"}),
    ("alert.reply_edited", {}),
    ("paging.triggered", {"provider": "pagerduty"}),
    ("paging.triggered", {}),
    ("paging.pagerduty_acknowledged", {"claimed_for": "UALICE"}),
    ("paging.pagerduty_resolved", {}),
]  # fmt: skip


def _timeline(lang: str, rows: list[tuple[str, str, str]]) -> list[tuple[datetime, str]]:
    t = translator(lang)
    audit = [AuditLog(action=a, actor=who, details={"comment": c, "text": c,
                                                     "pagerduty_user": c})
             for a, who, c in rows]  # fmt: skip
    audit += [AuditLog(action=a, actor="system", details=d) for a, d in OTHER_ROWS]
    return [(AT, line) for row in audit if (line := timeline_text(row, t))]


rows = st.lists(st.tuples(
    st.sampled_from(sorted(_TIMELINE)), st.one_of(st.just("system"), user_ids.map(str)),
    untrusted,
), max_size=10)  # fmt: skip


@pytest.mark.parametrize("lang", LANGUAGES)
@SETTINGS
@given(alert=alerts(), timeline=rows, group=grouped,
       mention=st.sampled_from([None, "<!here>", "<!subteam^S1>"]))  # fmt: skip
def test_the_escalation_post_fits_and_stays_inert(
    lang: str, alert: Alert, timeline: list[tuple[str, str, str]], group: list[Alert],
    mention: str | None,
) -> None:  # fmt: skip
    text, blocks = messages.escalation_message(
        alert, KINDS.get(alert.kind), _timeline(lang, timeline), mention=mention,
        grouped=group, provider="Okta Verify", t=translator(lang),
    )  # fmt: skip
    actors = tuple(f"<@{a}>" for a in ("UALICE", "W0123ABC"))
    check(text, blocks, allowed=(*actors, *([mention] if mention else [])))


@pytest.mark.parametrize("lang", LANGUAGES)
@SETTINGS
@given(alert=alerts())
def test_the_benign_modal_fits(lang: str, alert: Alert) -> None:
    view = benign_modal(alert, translator(lang))
    assert limits.view_problems(view) == []
    View(**view).validate_json()


@st.composite
def storms(draw: st.DrawFn) -> Storm:
    text = draw(untrusted)
    status = draw(st.sampled_from(["open", "released", "discarded", "escalated"]))
    return Storm(id=draw(st.integers(1, 2**62)), kind=text[:64], source=text[:64],
                 status=status, people=draw(st.integers(0, 10**6)),
                 held=draw(st.integers(0, 10**6)), max_people=25,
                 window=draw(st.sampled_from([45.0, 600.0, 7200.0])), version=1,
                 shown_version=0, opened_at=AT, last_at=AT,
                 resolved_by=None if status == "open" else draw(user_ids),
                 resolved_at=None if status == "open" else AT,
                 escalated_alert_id=7 if status == "escalated" else None)  # fmt: skip


@st.composite
def batches(draw: st.DrawFn) -> AerHeldBatch:
    status = draw(st.sampled_from(["open", "released", "discarded"]))
    return AerHeldBatch(id=draw(st.integers(1, 2**62)), org=draw(untrusted)[:64],
                        status=status, resets=draw(st.integers(0, 10**6)),
                        anomalies=draw(st.integers(0, 10**6)),
                        budget_count=draw(st.integers(1, 1000)),
                        budget_per=draw(st.sampled_from([60.0, 3600.0, 86400.0])), version=1,
                        shown_version=0, opened_at=AT, last_at=AT,
                        resolved_by=None if status == "open" else draw(user_ids),
                        resolved_at=None if status == "open" else AT)  # fmt: skip


people = st.lists(st.sampled_from(["UPERSON1", "UPERSON2", "W0123ABC"]), max_size=40)
ALLOWED = ("<@UPERSON1>", "<@UPERSON2>", "<@W0123ABC>", "<@UALICE>", "<!here>")


def _allowed(who: str | None) -> tuple[str, ...]:
    return (*ALLOWED, *((f"<@{who}>",) if who and SLACK_ID_RE.match(who) else ()))


@pytest.mark.parametrize("lang", LANGUAGES)
@SETTINGS
@given(storm=storms(), users=people, mention=st.sampled_from([None, "<!here>"]))
def test_the_storm_message_fits(
    lang: str, storm: Storm, users: list[str], mention: str | None
) -> None:
    text, blocks = storm_message(storm, users, mention, translator(lang))
    check(text, blocks, allowed=_allowed(storm.resolved_by))


@pytest.mark.parametrize("lang", LANGUAGES)
@SETTINGS
@given(batch=batches(), users=people, mention=st.sampled_from([None, "<!here>"]))
def test_the_held_resets_message_fits(
    lang: str, batch: AerHeldBatch, users: list[str], mention: str | None
) -> None:
    text, blocks = held_message(batch, users, mention, translator(lang))
    check(text, blocks, allowed=_allowed(batch.resolved_by))


@pytest.mark.parametrize("lang", LANGUAGES)
@SETTINGS
@given(team=teams())
def test_app_homes_team_part_fits(lang: str, team: TeamView) -> None:
    view = home_view([], [], team, translator("en"), translator(lang))
    assert limits.view_problems(view) == []
    View(**view).validate_json()
    claimers = [a.claimed_by for a in team.queue]
    mentioned = tuple(f"<@{c}>" for c in claimers if c and SLACK_ID_RE.match(c))
    allowed = ("<@USECLEAD>", "<@UALICE>", "<@W0123ABC>", "<@UPERSON1>", *mentioned)
    assert_inert(mrkdwn_of("", view["blocks"]), allowed=allowed)


def _shown(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def test_the_team_reads_its_own_language_and_the_alert_as_written() -> None:
    alert = make_alert(status="escalated", escalation_reason="duo_denied",
                       title="flurb -export on accountingserver01")  # fmt: skip
    timeline = _timeline("ja", [("alert.duo_denied", "okta", ""), ("alert.claimed", "ULEAD", "")])
    text, blocks = messages.escalation_message(
        alert, KINDS.get(alert.kind), timeline, provider="Okta Verify", t=translator("ja")
    )
    shown = _shown(blocks)
    assert text.startswith("[HIGH] エスカレーションされたアラート #")
    assert "Okta Verify のプッシュが拒否されました" in shown  # the provider named in the reason
    assert "Okta Verify のプッシュを *拒否*" in shown  # and in the timeline
    assert "担当者が決定(<@ULEAD>)" in shown
    assert "flurb -export on accountingserver01" in shown  # the tool's own title
    labels: dict[str, list[str]] = {}
    for lang in LANGUAGES:
        actions = messages.triage_actions(alert, translator(lang))
        labels[lang] = [e["text"]["text"] for e in actions["elements"]]
    assert labels["en"] == ["Claim", "Resolve as benign", "Confirm compromise"]
    assert labels["de"] == ["Übernehmen", "Als harmlos schließen", "Kompromittierung bestätigen"]
    assert len({tuple(v) for v in labels.values()}) == len(LANGUAGES)


def test_storms_and_held_resets_count_in_the_teams_language() -> None:
    storm = Storm(id=3, kind="mass_download", source="siem", status="open", people=25, held=1,
                  max_people=25, window=600.0, version=1, shown_version=0, opened_at=AT,
                  last_at=AT)  # fmt: skip
    text, blocks = storm_message(storm, ["UPERSON1"], None, translator("fr"))
    assert "1 DM retenu" in text and "Libérer 1" in _shown(blocks)
    storm.held = 2
    text, _ = storm_message(storm, ["UPERSON1"], None, translator("fr"))
    assert "2 DM retenus" in text
    batch = AerHeldBatch(id=4, org="acme", status="open", resets=3, anomalies=3, budget_count=3,
                         budget_per=3600.0, version=1, shown_version=0, opened_at=AT,
                         last_at=AT - timedelta(minutes=1))  # fmt: skip
    text, blocks = held_message(batch, ["UPERSON1"], None, translator("pt_BR"))
    assert "3 redefinições automáticas de sessão retidas" in text
    assert "Liberar 3 redefinições" in _shown(blocks)
