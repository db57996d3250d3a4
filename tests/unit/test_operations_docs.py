"""The operations files stay true to the code: metric names, Slack scopes, adapters."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from securitybot.slack.commands import COMMAND

REPO_ROOT = Path(__file__).resolve().parents[2]

# The dashboard and runbook against the exported metrics: tests/deploy/test_monitoring.py.


def test_the_slack_manifest_asks_for_exactly_the_scopes_the_bot_uses() -> None:
    manifest = yaml.safe_load((REPO_ROOT / "slack-manifest.yaml").read_text())
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == {
        "chat:write", "im:write", "im:history", "users:read", "users:read.email", "usergroups:read",
        "commands",
        "channels:history", "groups:history",  # a retried escalation looks for its earlier post
        "channels:read", "groups:read",  # start-up: is the bot in its channels?
    }  # fmt: skip
    settings = manifest["settings"]
    # user_change / team_join keep the directory of people (users.list) current;
    # team_access_granted / _revoked the workspaces of an org-wide install; app_uninstalled /
    # tokens_revoked the workspaces installed through OAuth.
    assert settings["event_subscriptions"]["bot_events"] == [
        "message.im", "app_home_opened", "user_change", "team_join",
        "team_access_granted", "team_access_revoked", "app_uninstalled", "tokens_revoked",
    ]  # fmt: skip
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True  # App Home
    assert settings["interactivity"]["request_url"].endswith("/slack/events")
    assert settings["event_subscriptions"]["request_url"].endswith("/slack/events")


def test_the_slack_manifest_declares_the_slash_command_with_escaped_mentions() -> None:
    manifest = yaml.safe_load((REPO_ROOT / "slack-manifest.yaml").read_text())
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == COMMAND
    assert command["url"].endswith("/slack/events")
    # The command reads "@bob" as <@U…|bob>, which Slack only sends with escaping on.
    assert command["should_escape"] is True


def test_the_systemd_unit_migrates_then_serves() -> None:
    unit = (REPO_ROOT / "docs" / "securitybot.service").read_text()
    assert "ExecStartPre=/opt/securitybot/.venv/bin/securitybot migrate" in unit
    assert re.search(r"^ExecStart=.*securitybot serve", unit, re.M)
