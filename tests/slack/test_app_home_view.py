"""The App Home view fits Slack's limits (100 blocks, text sizes) and stays inert, whatever the
alerts, exemptions, snoozes and rules hold."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st
from slack_sdk.models.views import View

from securitybot.ingest.schema import SLACK_ID_RE
from securitybot.slack import limits
from securitybot.slack.app_home import MAX_BLOCKS, TeamView, home_view
from securitybot.store.models import Exemption, Snooze
from securitybot.store.storm_models import Storm
from securitybot.store.suppression_models import SuppressionRule
from tests.slack.helpers import assert_inert, mrkdwn_of
from tests.slack.test_block_limits_properties import AT, SETTINGS, alerts, untrusted

# Alert ids are unique in the database, so each answer block's block_id is unique in the view.
many = st.lists(alerts(), max_size=12, unique_by=lambda a: a.id)


@st.composite
def teams(draw: st.DrawFn) -> TeamView:
    n = draw(st.integers(0, 12))
    text = draw(untrusted)
    return TeamView(
        queue=draw(many),
        exemptions=[Exemption(id=i, user=text[:254] or "x", reason=text, created_by="USECLEAD",
                              created_at=AT, expires_at=AT + timedelta(days=1))
                    for i in range(n)],
        snoozes=[Snooze(id=i, user_id="UALICE", kind=text[:64], scope={text[:50]: text[:50]},
                        expires_at=AT) for i in range(n)],
        rules=[SuppressionRule(id=i, kind="sensitive_command", matchers={"host": text[:200]},
                               reason=text, created_by="USECLEAD", expires_at=AT)
               for i in range(n)],
        storms=[(Storm(id=i, kind=text[:64], source=text[:64], status="open", people=25, held=9,
                       max_people=25, window=600.0, version=1, shown_version=0, opened_at=AT,
                       last_at=AT), ["UPERSON1"] * 12) for i in range(n)],
    )  # fmt: skip


@SETTINGS
@given(many, many, st.one_of(st.none(), teams()))
def test_the_home_tab_fits_and_is_inert(
    open_alerts: list, history: list, team: TeamView | None
) -> None:  # type: ignore[type-arg]
    view = home_view(open_alerts, history, team)
    assert view["type"] == "home" and 0 < len(view["blocks"]) <= MAX_BLOCKS
    assert limits.view_problems(view) == []  # a Home tab may hold 100 blocks, a message 50
    View(**view).validate_json()
    # A claim by someone whose id is a real Slack id is shown as a mention of them; the
    # generated text may happen to be one (U00).
    claimers = [a.claimed_by for a in [*open_alerts, *history, *(team.queue if team else [])]]
    mentioned = tuple(f"<@{c}>" for c in claimers if c and SLACK_ID_RE.match(c))
    allowed = ("<@USECLEAD>", "<@UALICE>", "<@W0123ABC>", "<@UPERSON1>", *mentioned)
    assert_inert(mrkdwn_of("", view["blocks"]), allowed=allowed)


def test_responders_see_open_storms_with_their_buttons() -> None:
    storm = Storm(id=7, kind="mass_download", source="siem", status="open", people=25, held=40,
                  max_people=25, window=600.0, version=1, shown_version=0, opened_at=AT,
                  last_at=AT)  # fmt: skip
    view = home_view([], [], TeamView(storms=[(storm, ["UPERSON1", "UPERSON2"])]))
    actions = [e for b in view["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [(e["action_id"], e["value"]) for e in actions] == [
        ("storm_release", "7:40"), ("storm_discard", "7:40"), ("storm_escalate", "7:40")
    ]  # fmt: skip
    assert "27 people so far" in str(view["blocks"])
