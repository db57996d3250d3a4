"""Local fakes of Slack and Duo for the demo and the tests; production code never imports this."""

from securitybot.demo.fake_duo import DuoRequest, FakeDuo, Push
from securitybot.demo.fake_slack import AUDIT_LOGS, RESPONSE_URL, Call, FakeSlack
from securitybot.demo.slack_signing import (
    app_home_opened_body,
    block_action_body,
    home_action_body,
    message_event_body,
    sign,
    slash_command_body,
    view_submission_body,
)

__all__ = [
    "AUDIT_LOGS",
    "RESPONSE_URL",
    "Call",
    "DuoRequest",
    "FakeDuo",
    "FakeSlack",
    "Push",
    "app_home_opened_body",
    "block_action_body",
    "home_action_body",
    "message_event_body",
    "sign",
    "slash_command_body",
    "view_submission_body",
]
