"""Local fakes of Slack, Duo and Okta for the demo and tests; production code never imports them."""

from securitybot.demo.fake_duo import DuoRequest, FakeDuo, Push
from securitybot.demo.fake_okta import FakeOkta
from securitybot.demo.fake_okta_records import OktaRequest
from securitybot.demo.fake_slack import Call, FakeSlack
from securitybot.demo.fake_slack_http import AUDIT_LOGS, RESPONSE_URL
from securitybot.demo.slack_event_bodies import (
    app_home_opened_body,
    app_uninstalled_body,
    message_event_body,
    tokens_revoked_body,
)
from securitybot.demo.slack_interaction_bodies import (
    block_action_body,
    home_action_body,
    slash_command_body,
    view_submission_body,
)
from securitybot.demo.slack_signing import sign

__all__ = [
    "AUDIT_LOGS",
    "RESPONSE_URL",
    "Call",
    "DuoRequest",
    "FakeDuo",
    "FakeOkta",
    "FakeSlack",
    "OktaRequest",
    "Push",
    "app_home_opened_body",
    "app_uninstalled_body",
    "block_action_body",
    "home_action_body",
    "message_event_body",
    "sign",
    "slash_command_body",
    "tokens_revoked_body",
    "view_submission_body",
]
