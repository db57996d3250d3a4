"""Every message kind fits Slack's Block Kit limits and stays inert, whatever the alert holds.

Checked two ways: our validator written from Slack's documented limits (``slack/limits.py``, the
same one the fake Slack uses to answer ``invalid_blocks``) and slack_sdk's own Block Kit models.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from securitybot.aer.notify import render as aer_notice
from securitybot.aer.respond import escalation_text, signed_out_text
from securitybot.domain import DM_TEXTS
from securitybot.flows.timeline import _TIMELINE, timeline_text
from securitybot.ingest.schema import SLACK_ID_RE
from securitybot.kinds import load_kinds
from securitybot.shipped import ALERTS_DIR
from securitybot.slack import limits, messages
from securitybot.slack.triage import benign_modal
from securitybot.store.aer_models import AerNotification
from securitybot.store.models import Alert, AuditLog
from tests.slack.helpers import VECTORS, assert_inert, make_alert, mrkdwn_of

KINDS = load_kinds(ALERTS_DIR)
AT = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Random text, injection vectors, and long runs of the characters that grow or break things.
untrusted = st.one_of(
    st.text(max_size=40),
    st.sampled_from(VECTORS),
    st.builds(
        lambda unit, n: unit * n,
        st.sampled_from(["&", "<", ">", "`", "h", "\n", "😀", " ", "<!here>", "&lt;"]),
        st.integers(0, 5000),
    ),
)
titles = untrusted.map(lambda t: t[:300])  # alerts.title is VARCHAR(300)
# Real ids are mentioned (<@UALICE>) by design; other text must never become a mention, so the
# untrusted side leaves out strings that happen to be valid ids ("U00").
user_ids = st.one_of(
    st.sampled_from(["UALICE", "W0123ABC", None]),
    untrusted.filter(lambda s: not SLACK_ID_RE.match(s)),
)


@st.composite
def alerts(draw: st.DrawFn, **fixed: Any) -> Alert:
    details = draw(st.dictionaries(untrusted, untrusted, max_size=15))
    if draw(st.booleans()):
        details |= {"host": draw(untrusted), "command": draw(untrusted)}
    return make_alert(
        id=draw(st.integers(1, 2**62)), kind=draw(st.sampled_from(KINDS.names())),
        title=draw(titles), description=draw(untrusted), details=details,
        user_given=draw(untrusted), user_id=draw(user_ids), source=draw(untrusted)[:64],
        status=draw(st.sampled_from(["new", "awaiting_ack", "escalated", "triaging", "closed"])),
        outcome=draw(st.sampled_from([None, "benign", "compromised"])),
        claimed_by=draw(user_ids),
        escalation_reason=draw(st.sampled_from([None, "not_me", "dm_failed"])),
        **fixed,
    )  # fmt: skip


grouped = st.lists(alerts(), max_size=14)


def check(
    text: str, blocks: list[dict[str, Any]] | None = None, allowed: tuple[str, ...] = ()
) -> None:
    assert 0 < len(text) <= limits.FALLBACK_TEXT
    if blocks is not None:
        assert limits.problems(blocks) == []
        for block in blocks:
            Block.parse(block).validate_json()  # type: ignore[union-attr]
    assert_inert(mrkdwn_of(text, blocks), allowed=allowed)


@SETTINGS
@given(alerts(), grouped, untrusted, st.booleans())
def test_the_dm_and_its_refresh_fit(
    alert: Alert, group: list[Alert], name: str, greet: bool
) -> None:
    text, blocks = messages.dm_message(
        alert, KINDS.get(alert.kind), first_name=name, greet=greet, grouped=group
    )
    check(text, blocks)


@SETTINGS
@given(alerts(), st.sampled_from(sorted(DM_TEXTS.values())), st.booleans())
def test_the_answered_dm_fits(alert: Alert, outcome: str, snooze: bool) -> None:
    text, blocks = messages.answered_message(
        alert, KINDS.get(alert.kind), outcome, offer_snooze=snooze
    )
    check(text, blocks)


@SETTINGS
@given(alerts(), st.one_of(st.none(), st.integers(1, 10**6)))
def test_the_reminder_fits(alert: Alert, minutes: int | None) -> None:
    check(messages.reminder_text(alert, minutes))
    check(messages.reminder_text(alert, minutes, kind=KINDS.get(alert.kind)))


@st.composite
def timelines(draw: st.DrawFn) -> list[tuple[datetime, str]]:
    rows = draw(st.lists(st.tuples(
        st.sampled_from(sorted(_TIMELINE)), st.one_of(st.just("system"), user_ids.map(str)),
        untrusted,
    ), max_size=25))  # fmt: skip
    rendered = (timeline_text(AuditLog(action=a, actor=who, details={"comment": c}))
                for a, who, c in rows)  # fmt: skip
    lines = list(rendered)
    return [(AT, line) for line in lines if line]


@SETTINGS
@given(alerts(), timelines(), grouped, st.sampled_from([None, "<!here>", "<!subteam^S1>"]))
def test_the_escalation_timeline_and_tier_reposts_fit(
    alert: Alert, timeline: list[tuple[datetime, str]], group: list[Alert], mention: str | None
) -> None:
    text, blocks = messages.escalation_message(
        alert, KINDS.get(alert.kind), timeline, mention=mention, grouped=group
    )
    actors = tuple(f"<@{a}>" for a in ("UALICE", "W0123ABC"))
    check(text, blocks, allowed=(*actors, *([mention] if mention else [])))


@SETTINGS
@given(untrusted, untrusted, untrusted, untrusted, st.integers(1, 10**9))
def test_aer_notices_fit(org: str, user: str, kind: str, reason: str, count: int) -> None:
    row = AerNotification(org=org, user_id=user, type=kind, recipient="CAER", count=count,
                          last_reason=reason, first_at=AT)  # fmt: skip
    p = {"user": user, "org": org, "type": kind, "rule": reason, "ip": org, "reason": reason}
    allowed = (f"<@{user}>",) if SLACK_ID_RE.match(user) else ()
    for text in (aer_notice(row), signed_out_text(p), escalation_text(p)):
        check(text, allowed=allowed)


@SETTINGS
@given(alerts())
def test_the_benign_modal_fits(alert: Alert) -> None:
    view = benign_modal(alert)
    assert limits.view_problems(view) == []
    View(**view).validate_json()
