"""The right token for each call, checked at start: ``auth.test`` with each token, and one
line naming any scope Slack does not list for it (the ``x-oauth-scopes`` header, which the
fake sends like Slack on every Web API answer)."""

from __future__ import annotations

import logging

import pytest

from securitybot.demo import FakeSlack
from securitybot.slack.tokens import BOT_SCOPES
from tests.e2e.conftest import MakeBot
from tests.e2e.harness import wait_until

LOGGER = "securitybot.slack.tokens"


def _lines(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and name in r.getMessage()]


def test_an_admin_token_without_its_scope_is_one_line_naming_it(
    fs: FakeSlack, make_bot: MakeBot, caplog: pytest.LogCaptureFixture
) -> None:
    fs.token_scopes["xoxp-admin"] = ["auditlogs:read"]
    caplog.set_level(logging.INFO, logger=LOGGER)
    make_bot()
    [line] = wait_until(lambda: _lines(caplog, "slack.admin_token"), 10, "the admin token line")
    assert line.levelno == logging.ERROR
    assert "missing scope admin.users:write" in line.getMessage()
    assert "admin.users.session.reset" in line.getMessage()
    assert "xoxp-admin" not in caplog.text  # the token itself is never logged
    assert not _lines(caplog, "slack.bot_token")  # the bot token has what it needs: no line
    # One auth.test per token, each with its own token.
    tokens = {c.headers.get("Authorization") for c in fs.calls_to("auth.test")}
    assert {"Bearer xoxb-e2e", "Bearer xoxp-admin"} <= tokens


def test_a_bot_token_without_a_scope_is_named(
    fs: FakeSlack, make_bot: MakeBot, caplog: pytest.LogCaptureFixture
) -> None:
    fs.token_scopes["xoxb-e2e"] = [s for s in BOT_SCOPES if s != "users:read.email"]
    caplog.set_level(logging.INFO, logger=LOGGER)
    make_bot()
    [line] = wait_until(lambda: _lines(caplog, "slack.bot_token"), 10, "the bot token line")
    assert line.levelno == logging.ERROR
    assert "missing scope users:read.email (users:read.email: users.lookupByEmail" in (
        line.getMessage()
    )
    assert not _lines(caplog, "slack.admin_token")  # nothing wrong with it: no line


def test_an_admin_token_slack_refuses_says_so(
    make_bot: MakeBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    make_bot(slack={"admin_token": "xoxb-invalid"})  # the fake answers invalid_auth for it
    [line] = wait_until(lambda: _lines(caplog, "slack.admin_token"), 10, "the admin token line")
    assert line.getMessage() == "Slack: slack.admin_token does not work: invalid_auth"


def test_with_aer_on_the_admin_token_also_needs_the_audit_logs_scope(
    fs: FakeSlack, make_bot: MakeBot, caplog: pytest.LogCaptureFixture
) -> None:
    """Without aer.audit_logs.token, the admin token reads the Audit Logs too."""
    fs.token_scopes["xoxp-admin"] = ["admin.users:write"]
    caplog.set_level(logging.INFO, logger=LOGGER)
    make_bot(aer={"enabled": True})
    [line] = wait_until(lambda: _lines(caplog, "slack.admin_token"), 10, "the admin token line")
    assert "missing scope auditlogs:read" in line.getMessage()
