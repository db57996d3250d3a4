"""Text from outside is inert in every message: no pings, no disguised links, no broken spans.

Each injection vector goes into every field that came from outside; every mrkdwn string the
message would send (its ``text`` included, which Slack parses too) must then hold markup only
where the product put it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from securitybot.aer.notify import render as aer_notice
from securitybot.aer.respond import escalation_text, signed_out_text
from securitybot.flows.timeline import timeline_text
from securitybot.kinds import load_kinds
from securitybot.shipped import ALERTS_DIR
from securitybot.slack import messages
from securitybot.store.aer_models import AerNotification
from securitybot.store.models import Alert, AuditLog
from tests.slack.helpers import VECTORS, assert_inert, make_alert, mrkdwn_of

KINDS = load_kinds(ALERTS_DIR)
AT = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)


def evil_alert(vector: str, **fields: object) -> Alert:
    values: dict[str, object] = {
        "title": f"Login {vector}", "description": f"Please {vector} now",
        "user_given": f"{vector}@example.com",
        "details": {"host": f"h{vector}", "command": vector, vector: vector},
    }  # fmt: skip
    return make_alert(**(values | fields))


@pytest.mark.parametrize("vector", VECTORS)
@pytest.mark.parametrize("kind", ["sensitive_command", "default"])
def test_the_dm_shows_alert_fields_as_text(vector: str, kind: str) -> None:
    alert = evil_alert(vector, kind=kind)
    grouped = [make_alert(id=43, title=vector)]
    text, blocks = messages.dm_message(
        alert, KINDS.get(kind), first_name=vector, greet=True, grouped=grouped
    )
    assert_inert(mrkdwn_of(text, blocks))


@pytest.mark.parametrize("vector", VECTORS)
def test_the_answered_dm_shows_alert_fields_as_text(vector: str) -> None:
    text, blocks = messages.answered_message(
        evil_alert(vector, kind="default"), KINDS.get("default"), "Thanks.", offer_snooze=True
    )
    assert_inert(mrkdwn_of(text, blocks))


@pytest.mark.parametrize("vector", VECTORS)
def test_the_escalation_shows_alert_fields_and_comments_as_text(vector: str) -> None:
    alert = evil_alert(vector, user_id=None, status="closed", outcome=vector, claimed_by=vector)
    row = AuditLog(action="alert.user_denied", actor="UALICE", details={"comment": vector})
    timeline = [(AT, timeline_text(row))]
    text, blocks = messages.escalation_message(
        alert, KINDS.get("sensitive_command"), timeline, mention="<!subteam^SSEC>",
        grouped=[make_alert(id=43, title=vector)],
    )  # fmt: skip
    assert_inert(mrkdwn_of(text, blocks), allowed=("<!subteam^SSEC>", "<@UALICE>"))
    shown = str(blocks)
    assert "<!subteam^SSEC> *Escalated:*" in shown  # the product's own mention still pings
    assert "User said it was *not* them by <@UALICE>" in shown


@pytest.mark.parametrize("vector", VECTORS)
def test_a_timeline_comment_is_text_and_only_known_actors_are_mentioned(vector: str) -> None:
    by_user = AuditLog(action="alert.resolved_benign", actor="UBOB", details={"comment": vector})
    assert_inert([timeline_text(by_user)], allowed=("<@UBOB>",))
    by_forged = AuditLog(action="alert.claimed", actor=f"U1>{vector}", details={})
    assert_inert([timeline_text(by_forged)])


def test_a_backtick_in_a_value_cannot_break_out_of_its_code_span() -> None:
    alert = evil_alert("x", details={"host": "web` <!channel> `01", "command": "ls"})
    _, blocks = messages.dm_message(
        alert, KINDS.get("sensitive_command"), first_name="Alice", greet=False
    )
    assert "`webˋ &lt;!channel&gt; ˋ01`" in str(blocks)


def test_escaped_text_from_a_tool_is_shown_as_typed_not_unescaped() -> None:
    text, _ = messages.escalation_message(
        make_alert(title="&lt;!channel&gt;"), KINDS.get("default"), []
    )
    assert "&amp;lt;!channel&amp;gt;" in text


@pytest.mark.parametrize("vector", VECTORS)
def test_aer_notices_show_anomaly_fields_as_text(vector: str) -> None:
    row = AerNotification(
        org=vector, user_id=vector, type=vector, recipient="CAER", count=3,
        last_reason=vector, first_at=AT,
    )  # fmt: skip
    p = {"user": vector, "org": vector, "type": vector, "rule": vector, "ip": vector,
         "reason": vector}  # fmt: skip
    assert_inert([aer_notice(row), signed_out_text(p), escalation_text(p)])


def test_aer_notices_still_mention_a_real_user() -> None:
    row = AerNotification(org="T1", user_id="UBOB", type="x", recipient="C", count=1,
                          last_reason="r", first_at=AT)  # fmt: skip
    assert "<@UBOB>" in aer_notice(row)
