"""The operations files stay true to the code: metric names, Slack scopes, adapters."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from securitybot.slack.commands import COMMAND

REPO_ROOT = Path(__file__).resolve().parents[2]

METRICS = {
    "securitybot_alerts_ingested_total",
    "securitybot_alert_outcomes_total",
    "securitybot_time_to_first_dm_seconds",
    "securitybot_time_to_answer_seconds",
    "securitybot_escalations_total",
    "securitybot_duo_results_total",
    "securitybot_duo_latency_seconds",
    "securitybot_verify_results_total",
    "securitybot_verify_latency_seconds",
    "securitybot_outbox_depth",
    "securitybot_outbox_oldest_age_seconds",
    "securitybot_sweep_duration_seconds",
    "securitybot_slack_api_errors_total",
}


def _metric_names(text: str) -> set[str]:
    return {
        re.sub(r"_(bucket|sum|count)$", "", m) for m in re.findall(r"securitybot_[a-z_]+", text)
    }


def test_the_dashboard_uses_exactly_the_documented_metrics() -> None:
    dashboard = json.loads((REPO_ROOT / "docs" / "grafana-dashboard.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p.get("targets", []))
    assert _metric_names(exprs) == METRICS


def test_the_runbook_has_a_section_for_every_metric() -> None:
    runbook = (REPO_ROOT / "docs" / "runbook.md").read_text()
    headings = " ".join(line for line in runbook.splitlines() if line.startswith("## "))
    assert _metric_names(headings) >= METRICS


def test_the_slack_manifest_asks_for_exactly_the_scopes_the_bot_uses() -> None:
    manifest = yaml.safe_load((REPO_ROOT / "slack-manifest.yaml").read_text())
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == {
        "chat:write", "im:write", "im:history", "users:read", "users:read.email", "usergroups:read",
        "commands",
        "channels:history", "groups:history",  # a retried escalation looks for its earlier post
    }  # fmt: skip
    settings = manifest["settings"]
    assert settings["event_subscriptions"]["bot_events"] == ["message.im", "app_home_opened"]
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
