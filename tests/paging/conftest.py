"""Paging tests: the real bot (tests.e2e's harness) wired to fakes of PagerDuty and Opsgenie
that answer with the vendors' documented examples."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from securitybot.demo.fake_opsgenie import FakeOpsgenie
from securitybot.demo.fake_pagerduty import FakePagerDuty
from securitybot.demo.slack_interaction_bodies import block_action_body, view_submission_body
from securitybot.slack.messages import BENIGN_MODAL, DENY_ACTION
from securitybot.slack.triage import NOTE_ACTION, NOTE_BLOCK
from tests.e2e.conftest import fd, fs, make_bot, verifier  # noqa: F401 (fixtures)
from tests.e2e.harness import SECURITY_CHANNEL, Bot

RESPONDER = "USAM"  # on the team, and in PagerDuty as PSAM001 with the same email
PD_RESPONDER = "PSAM001"


@pytest.fixture
def pd() -> Iterator[FakePagerDuty]:
    with FakePagerDuty() as fake:
        fake.add_user(PD_RESPONDER, "Sam Spade", "sam@example.com")
        fake.add_user("PNOBODY", "Nora Nobody", "nora@elsewhere.example")
        yield fake


@pytest.fixture
def og() -> Iterator[FakeOpsgenie]:
    with FakeOpsgenie() as fake:
        yield fake


def team(slack: Any) -> dict[str, Any]:
    """The escalation settings every paging story shares: Sam is the responder."""
    slack.add_user(RESPONDER, "sam@example.com", real_name="Sam Spade", first_name="Sam")
    return {"escalation": {"responders": [RESPONDER]}}


def escalate_by_denial(bot: Bot, **fields: Any) -> int:
    """Alice says "not me": the alert escalates (reason not_me)."""
    alert = bot.post_alert(**fields)
    bot.wait_status(alert["id"], "awaiting_ack")
    bot.click("UALICE", DENY_ACTION, alert["id"])
    bot.wait_status(alert["id"], "escalated")
    return int(alert["id"])


def triage(bot: Bot, user: str, action: str, alert_id: int) -> None:
    body = block_action_body(user=user, action_id=action, value=str(alert_id),
                             channel=SECURITY_CHANNEL, message_ts="1.0",
                             response_url=bot.fs.response_url())  # fmt: skip
    assert bot.slack_post(body).status_code == 200


def resolve_benign(bot: Bot, user: str, alert_id: int, note: str = "expected export") -> None:
    body = view_submission_body(user=user, callback_id=BENIGN_MODAL,
                                private_metadata=str(alert_id),
                                values={NOTE_BLOCK: {NOTE_ACTION: {"type": "plain_text_input",
                                                                   "value": note}}})  # fmt: skip
    assert bot.slack_post(body).status_code == 200
