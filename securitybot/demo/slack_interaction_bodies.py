"""Interactivity requests as Slack POSTs them to /slack/events (button clicks in a message or
the Home tab, modal submissions, slash commands), form-encoded the way Slack sends them. Sign
them with ``slack_signing.sign``."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode

from securitybot.demo.slack_event_bodies import new_ts


def _new_trigger_id() -> str:
    # Slack mints a fresh trigger_id for every interaction (click, submission).
    return f"{int(time.time())}.{uuid.uuid4().int % 10**10}.{uuid.uuid4().hex}"


def _user(user: str, team: str) -> dict[str, str]:
    return {"id": user, "username": user.lower(), "name": user.lower(), "team_id": team}


def home_action_body(
    user: str,
    action_id: str,
    value: str,
    view_id: str = "V_HOME",
    team: str = "T1",
    block_id: str = "home",
    api_app_id: str = "A1",
) -> str:
    """A button click in the Home tab: block_actions whose container is the view (no channel,
    no message), as in Slack's block_actions payload reference
    (docs.slack.dev/reference/interaction-payloads/block_actions-payload)."""
    container = {"type": "view", "view_id": view_id}
    view = {
        "id": view_id,
        "team_id": team,
        "type": "home",
        "blocks": [],
        "private_metadata": "",
        "callback_id": "",
        "state": {"values": {}},
        "hash": "1.2",
        "app_id": api_app_id,
    }
    return _button_click_body(
        user, team, api_app_id, container, _new_trigger_id(), {"view": view},
        action_id, block_id, value,
    )  # fmt: skip


def block_action_body(
    user: str,
    action_id: str,
    value: str,
    channel: str,
    message_ts: str,
    team: str = "T1",
    trigger_id: str | None = None,
    block_id: str = "actions",
    response_url: str = "https://hooks.slack.com/actions/T1/1/fake",
    message: dict[str, Any] | None = None,
    api_app_id: str = "A1",
    enterprise: str | None = None,
) -> str:
    """A button click on a bot message, form-encoded as Slack sends it ("payload=<json>");
    ``enterprise``: in that Enterprise Grid org, to an org-wide install."""
    container = {
        "type": "message",
        "message_ts": message_ts,
        "channel_id": channel,
        "is_ephemeral": False,
    }
    where = {
        "channel": {"id": channel, "name": "directmessage"},
        "message": message or {"type": "message", "ts": message_ts, "text": "", "blocks": []},
        "state": {"values": {}},
        "response_url": response_url,
    }
    return _button_click_body(
        user, team, api_app_id, container, trigger_id or _new_trigger_id(), where,
        action_id, block_id, value, enterprise,
    )  # fmt: skip


def _button_click_body(
    user: str,
    team: str,
    api_app_id: str,
    container: dict[str, Any],
    trigger_id: str,
    where: dict[str, Any],
    action_id: str,
    block_id: str,
    value: str,
    enterprise: str | None = None,
) -> str:
    """A block_actions payload for one button click, form-encoded as Slack sends it
    ("payload=<json>"): the fields every click carries, then `where` (what was clicked in:
    the Home view, or the channel and message), then the button's action."""
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": _user(user, team),
        "api_app_id": api_app_id,
        "token": "legacy-verification-token",
        "container": container,
        "trigger_id": trigger_id,
        "team": {"id": team, "domain": "fake"},
        "enterprise": {"id": enterprise, "name": "Fake Org"} if enterprise else None,
        "is_enterprise_install": enterprise is not None,
        **where,
        "actions": [
            {
                "action_id": action_id,
                "block_id": block_id,
                "text": {"type": "plain_text", "text": value, "emoji": True},
                "value": value,
                "type": "button",
                "action_ts": new_ts(),
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)})


def view_submission_body(
    user: str,
    callback_id: str,
    private_metadata: str,
    values: dict[str, Any],
    team: str = "T1",
    view_id: str = "V00000001",
    trigger_id: str | None = None,
    api_app_id: str = "A1",
    enterprise: str | None = None,
) -> str:
    """A modal submission; `values` is view.state.values ({block_id: {action_id: {...}}});
    ``enterprise``: in that Enterprise Grid org, to an org-wide install."""
    payload: dict[str, Any] = {
        "type": "view_submission",
        "team": {"id": team, "domain": "fake"},
        "user": _user(user, team),
        "api_app_id": api_app_id,
        "token": "legacy-verification-token",
        "trigger_id": trigger_id or _new_trigger_id(),
        "view": {
            "id": view_id,
            "team_id": team,
            "type": "modal",
            "blocks": [],
            "private_metadata": private_metadata,
            "callback_id": callback_id,
            "state": {"values": values},
            "hash": "156772938.1827394",
            "title": {"type": "plain_text", "text": "Securitybot"},
            "root_view_id": view_id,
            "previous_view_id": None,
            "app_id": api_app_id,
            "external_id": "",
            "bot_id": "BBOT",
        },
        "response_urls": [],
        "is_enterprise_install": enterprise is not None,
        "enterprise": {"id": enterprise, "name": "Fake Org"} if enterprise else None,
    }
    return urlencode({"payload": json.dumps(payload)})


def slash_command_body(
    user: str,
    text: str,
    command: str = "/securitybot",
    channel: str = "CGENERAL",
    team: str = "T1",
    trigger_id: str | None = None,
    response_url: str = "https://hooks.slack.com/commands/T1/1/fake",
    api_app_id: str = "A1",
    enterprise: str | None = None,
    org_wide: bool = False,
) -> str:
    """A slash command, form-encoded field by field as Slack POSTs it (no "payload" wrapper).

    Fields as in Slack's "Slash commands" reference (api.slack.com/interactivity/slash-commands);
    ``enterprise``: the ``enterprise_id`` Slack adds on an Enterprise Grid workspace;
    ``org_wide``: to the app's org-wide install there (``is_enterprise_install=true``).
    """
    grid = {"enterprise_id": enterprise, "enterprise_name": "Fake Org"} if enterprise else {}
    return urlencode(
        {
            **grid,
            "token": "legacy-verification-token",
            "team_id": team,
            "team_domain": "fake",
            "channel_id": channel,
            "channel_name": "general",
            "user_id": user,
            "user_name": user.lower(),
            "command": command,
            "text": text,
            "api_app_id": api_app_id,
            "is_enterprise_install": "true" if org_wide else "false",
            "response_url": response_url,
            "trigger_id": trigger_id or _new_trigger_id(),
        }
    )
