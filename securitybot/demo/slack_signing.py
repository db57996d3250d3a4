"""Build Slack-signed Events API and interactivity requests for the real Bolt endpoint.

The shapes follow what Slack actually POSTs to /slack/events, so Bolt's own signature
verification, body parsing and listener matching run unmodified in tests and the demo.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode

_FORM = "application/x-www-form-urlencoded"
_JSON = "application/json"


def sign(signing_secret: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    """Headers for POSTing `body`; the content type is inferred from the body's shape."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    base = f"v0:{ts}:{body}".encode()
    digest = hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": _JSON if body.lstrip().startswith("{") else _FORM,
    }


def retry_headers(num: int, reason: str = "http_timeout") -> dict[str, str]:
    """The headers Slack adds when it re-sends an event it thinks failed (same body, same
    ``event_id``, a fresh signature). Reasons per Slack's Events API docs: http_timeout (no
    answer within 3 s), http_error, connection_failed, ssl_error, too_many_redirects,
    unknown_error. Slack retries up to three times: at once, after 1 and after 5 minutes."""
    return {"X-Slack-Retry-Num": str(num), "X-Slack-Retry-Reason": reason}


def _new_ts() -> str:
    return f"{time.time():.6f}"


def _new_trigger_id() -> str:
    # Slack mints a fresh trigger_id for every interaction (click, submission).
    return f"{int(time.time())}.{uuid.uuid4().int % 10**10}.{uuid.uuid4().hex}"


def _event_callback(
    event: dict[str, Any],
    team: str,
    event_id: str | None,
    bot_user_id: str,
    api_app_id: str,
    enterprise: str | None = None,
) -> str:
    """The Events API wrapper around one event, as Slack POSTs it. ``enterprise``: delivered
    to an org-wide install, whose ``authorizations`` entry names the org and says
    ``is_enterprise_install: true`` (api.slack.com/enterprise/apps/reference, "Sample event
    payload")."""
    body: dict[str, Any] = {
        "token": "legacy-verification-token",
        "team_id": team,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or "Ev" + uuid.uuid4().hex[:10].upper(),
        "event_time": int(float(event["event_ts"])),
        "authorizations": [
            {
                "enterprise_id": enterprise,
                "team_id": team,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": enterprise is not None,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-" + uuid.uuid4().hex,
    }
    return json.dumps(body)


def message_event_body(
    user: str,
    text: str,
    channel: str,
    team: str = "T1",
    event_id: str | None = None,
    ts: str | None = None,
    bot_user_id: str = "UBOT",
    api_app_id: str = "A1",
    enterprise: str | None = None,
) -> str:
    """An event_callback for a DM ("im") message from `user`; ``enterprise``: to an org-wide
    install in that Enterprise Grid org."""
    ts = ts or _new_ts()
    event: dict[str, Any] = {
        "type": "message",
        "client_msg_id": str(uuid.uuid4()),
        "user": user,
        "text": text,
        "ts": ts,
        "team": team,
        "channel": channel,
        "event_ts": ts,
        "channel_type": "im",
    }
    return _event_callback(event, team, event_id, bot_user_id, api_app_id, enterprise)


def message_deleted_body(
    channel: str,
    deleted_ts: str,
    previous_message: dict[str, Any] | None = None,
    team: str = "T1",
    event_id: str | None = None,
    bot_user_id: str = "UBOT",
    api_app_id: str = "A1",
) -> str:
    """A message in the DM was deleted. Shape from Slack's reference for the message_deleted
    subtype (docs.slack.dev/reference/events/message/message_deleted): hidden, no top-level
    user, ``deleted_ts`` naming the deleted message and ``previous_message`` holding it."""
    ts = _new_ts()
    event: dict[str, Any] = {
        "type": "message",
        "subtype": "message_deleted",
        "hidden": True,
        "channel": channel,
        "ts": ts,
        "deleted_ts": deleted_ts,
        "event_ts": ts,
        "channel_type": "im",
    }
    if previous_message is not None:
        event["previous_message"] = previous_message
    return _event_callback(event, team, event_id, bot_user_id, api_app_id)


def message_changed_body(
    user: str,
    channel: str,
    message_ts: str,
    text: str,
    previous_text: str,
    team: str = "T1",
    event_id: str | None = None,
    bot_user_id: str = "UBOT",
    api_app_id: str = "A1",
    bot_id: str | None = None,
) -> str:
    """`user` edited their DM message `message_ts`. Shape from Slack's reference for the
    message_changed subtype (docs.slack.dev/reference/events/message/message_changed): the new
    message under ``message`` (with ``edited``), the old one under ``previous_message``."""
    ts = _new_ts()
    old = {"type": "message", "user": user, "text": previous_text, "ts": message_ts,
           "team": team, **({"bot_id": bot_id} if bot_id else {})}  # fmt: skip
    event: dict[str, Any] = {
        "type": "message",
        "subtype": "message_changed",
        "hidden": True,
        "channel": channel,
        "ts": ts,
        "event_ts": ts,
        "channel_type": "im",
        "message": {**old, "text": text, "edited": {"user": user, "ts": ts}},
        "previous_message": old,
    }
    return _event_callback(event, team, event_id, bot_user_id, api_app_id)


def _user(user: str, team: str) -> dict[str, str]:
    return {"id": user, "username": user.lower(), "name": user.lower(), "team_id": team}


def app_home_opened_body(
    user: str,
    tab: str = "home",
    team: str = "T1",
    event_id: str | None = None,
    bot_user_id: str = "UBOT",
    api_app_id: str = "A1",
    enterprise: str | None = None,
) -> str:
    """The user opened the app's Home tab. Shape from Slack's reference for app_home_opened
    (api.slack.com/events/app_home_opened); ``view`` appears once a Home was published, and
    is left out here as on a first visit."""
    ts = _new_ts()
    event: dict[str, Any] = {
        "type": "app_home_opened", "user": user, "channel": "D" + user, "tab": tab,
        "event_ts": ts,
    }  # fmt: skip
    return _event_callback(event, team, event_id, bot_user_id, api_app_id, enterprise)


def user_change_body(user: dict[str, Any], team: str = "T1", event_id: str | None = None,
                     bot_user_id: str = "UBOT", api_app_id: str = "A1") -> str:  # fmt: skip
    """A member's data changed: the whole user object as users.list has it (shape from
    docs.slack.dev/reference/events/user_change, "Example payload": user, cache_ts, event_ts)."""
    ts = _new_ts()
    event = {"type": "user_change", "user": user, "cache_ts": int(float(ts)), "event_ts": ts}
    return _event_callback(event, team, event_id, bot_user_id, api_app_id)


def team_join_body(user: dict[str, Any], team: str = "T1", event_id: str | None = None,
                   bot_user_id: str = "UBOT", api_app_id: str = "A1") -> str:  # fmt: skip
    """A new member joined (docs.slack.dev/reference/events/team_join: type, user, the user
    object)."""
    event = {"type": "team_join", "user": user, "event_ts": _new_ts()}
    return _event_callback(event, team, event_id, bot_user_id, api_app_id)


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
                "action_ts": _new_ts(),
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


def _revocation(event: dict[str, Any], team: str, api_app_id: str) -> str:
    return json.dumps({
        "token": "legacy-verification-token", "team_id": team, "api_app_id": api_app_id,
        "event": event, "type": "event_callback",
        "event_id": "Ev" + uuid.uuid4().hex[:10].upper(), "event_time": int(time.time()),
    })  # fmt: skip


def app_uninstalled_body(team: str, api_app_id: str = "A1") -> str:
    """The app was uninstalled from ``team`` (docs.slack.dev/reference/events/app_uninstalled,
    "Example": an event_callback whose event is just ``{"type": "app_uninstalled"}``)."""
    return _revocation({"type": "app_uninstalled"}, team, api_app_id)


def tokens_revoked_body(team: str, bot: list[str], oauth: list[str] | None = None,
                        api_app_id: str = "A1") -> str:  # fmt: skip
    """Tokens of ``team`` were revoked (docs.slack.dev/reference/events/tokens_revoked,
    "Example": ``tokens`` lists the user ids whose ``oauth`` (user) and ``bot`` tokens went)."""
    event = {"type": "tokens_revoked", "tokens": {"oauth": oauth or [], "bot": bot}}
    return _revocation(event, team, api_app_id)
